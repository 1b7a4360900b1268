"""README's transcripts are what the current code prints: each marked block is run again here and compared
with README, times and job ids aside (tests/readme.py; `python -m tests.readme --write` rewrites them). The
same config and seed give the same history on this machine's CPU whatever the process, its other runs and
its threads (README, "Reproducible"), so a number that differs means README is stale."""

from __future__ import annotations

import pytest

from tests import readme

BLOCKS = readme.parse(readme.README.read_text())

LITERAL = """intro
<!-- transcript columns=100 setup="hpcjobs submit x.toml" slurm -->
```
$ hpcjobs status x \\
    --all
x: 1 run  COMPLETED 1
run  state      elapsed  job

$ hpcjobs collect x
table
```
after"""


def test_a_marked_block_is_parsed_into_commands_and_outputs_and_rewritten_as_it_was():
    (block,) = readme.parse(LITERAL)
    assert (block.columns, block.setup, block.slurm, block.slow) == (
        100,
        "hpcjobs submit x.toml",
        True,
        False,
    )
    assert [s.command for s in block.steps] == ["hpcjobs status x \\\n    --all", "hpcjobs collect x"]
    assert block.steps[0].output == ["x: 1 run  COMPLETED 1", "run  state      elapsed  job"]
    assert readme.rewrite(LITERAL, [block]) == LITERAL
    block.steps[1].output = ["new table"]
    assert readme.rewrite(LITERAL, [block]).split("\n")[-3:] == ["new table", "```", "after"]


def test_times_job_ids_and_widths_are_all_that_may_differ():
    """...and how long the sweep took, with its ratio to the estimate; the estimate itself is compared."""
    shown = [
        "moons: submitted 6 runs as 2 local tasks × 3 runs (jobs 7658, 7668) into results/moons",
        "hidden-3x5__seed-0    COMPLETED   30/30   0.8400  00:00:56  7658",
        "──────────",
        "runs finished ━━━━ 6/6     0:03:34",
        "moons: took 12 s (submit to end), estimated ~29 s: 0.42× the estimate",
    ]
    again = [
        "moons: submitted 6 runs as 2 local tasks × 3 runs (jobs 11482, 11484) into results/moons",
        "hidden-3x5__seed-0    COMPLETED   30/30   0.8400  00:00:07  11482",
        "───────────────",
        "runs finished ━━━━━━ 6/6   0:00:30",
        "moons: took 13 s (submit to end), estimated ~29 s: 0.45× the estimate",
        "",
    ]
    assert readme.normalized(shown) == readme.normalized(again)
    assert readme.normalized(["3x5 2/2 0.905±0.078"]) != readme.normalized(["3x5 2/2 0.910±0.085"])
    assert readme.normalized(["estimated ~29 s"]) != readme.normalized(["estimated ~37 s"])  # the plan


def test_every_transcript_of_readme_is_marked_and_the_quick_start_is_checked():
    assert any("examples/moons.toml --executor local" in s.command for b in BLOCKS for s in b.steps)
    unmarked = readme.README.read_text().count("\n$ hpcjobs") - sum(
        1 for b in BLOCKS for s in b.steps if s.command.startswith("hpcjobs")
    )
    assert unmarked == 0, "a README shell session with `$ hpcjobs` lacks its <!-- transcript --> marker"


@pytest.mark.keras
@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=f"line-{b.first_line + 1}", marks=[pytest.mark.slurm] if b.slurm else [])
        for b in BLOCKS
        if not b.slow
    ],
)
def test_a_readme_transcript_is_what_a_fresh_run_prints(block, tmp_path, request):
    if block.slurm:
        request.getfixturevalue("lab_slurm")
    steps = readme.run(block, tmp_path)
    for shown, fresh in zip(block.steps, steps, strict=True):
        assert readme.normalized(fresh.output) == readme.normalized(shown.output), (
            f"README line {block.first_line + 1}: `{shown.command}` now prints:\n"
            + "\n".join(fresh.output)
            + "\n(rewrite README's transcripts with: python -m tests.readme --write)"
        )
