"""status and collect as people see them: through a real terminal (tmux) of 80×24 and 120×40.

Each command runs in a detached tmux pane of that size; `capture-pane -J` joins lines the terminal wrapped,
so a joined line longer than the pane is a table that did not fit.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hpcjobs import layout

from .conftest import REPO
from .test_cli import submitted_sweep

SIZES = [(80, 24), (120, 40)]
ERROR = "ValueError: Input 0 of layer dense is incompatible with the layer: expected axis -1 to have value 64"


@pytest.fixture(scope="module")
def tmux() -> str:
    """tmux on PATH; CI (HPCJOBS_REQUIRE_TMUX=1, which scripts/test.sh installs it for) fails without."""
    found = shutil.which("tmux")
    if found is None:
        if os.environ.get("HPCJOBS_REQUIRE_TMUX"):
            pytest.fail("HPCJOBS_REQUIRE_TMUX is set but tmux is not installed (scripts/test.sh installs it)")
        pytest.skip("tmux not installed: the terminal tests need it (apt-get install tmux)")
    return found


def finished_sweep(root: Path, toml: str, failed: int | None = None) -> layout.SweepDir:
    """A sweep as the fake executor leaves it: every run trained (made-up numbers), run `failed` failed."""
    sweep, runs = submitted_sweep(root, toml)
    epochs = runs[0].settings.train.epochs
    for i, run in enumerate(runs):
        acc = [0.5 + 0.4 * (e + 1) / epochs - 0.01 * (i % 5) for e in range(epochs)]
        lines = ["epoch,categorical_accuracy,loss,val_categorical_accuracy,val_loss"]
        lines += [f"{e},{a:.4f},{1 - a:.4f},{a - 0.02:.4f},{1.1 - a:.4f}" for e, a in enumerate(acc)]
        layout.write_text(sweep.history(run.run_id), "\n".join(lines) + "\n")
        result: dict[str, object] = {
            "status": "COMPLETED",
            "params": 1000 + 97 * i,
            "final_loss": 1 - acc[-1],
            "seconds_per_epoch": 0.2 + 0.01 * i,
            "samples_per_second": 3000.0 + 17 * i,
            "test": {"accuracy": acc[-1], "f1_macro": acc[-1] - 0.01},
            "started": "2026-01-01T00:00:00+00:00",
            "finished": "2026-01-01T00:00:09+00:00",
        }
        if i == failed:
            result = {"status": "FAILED", "error": ERROR, "traceback": str(sweep.root / "tb.txt")}
        layout.write_json(sweep.result(run.run_id), result)
    return sweep


def in_terminal(tmux: str, width: int, height: int, *args: str, scrolled: bool = True) -> list[str]:
    """What `hpcjobs ARGS` wrote into a width×height terminal, wrapped lines joined: with the lines
    scrolled off the top (scrolled), or only the screen."""
    server = f"hpcjobs-test-{uuid.uuid4().hex[:8]}"
    done = f"done-{server}"
    env = {k: v for k, v in os.environ.items() if k != "TMUX"} | {"PYTHONPATH": str(REPO)}
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "hpcjobs", *args])
    script = f"{command}; {shlex.quote(tmux)} -L {server} wait-for -S {done}; sleep 120"
    base = [tmux, "-L", server, "-f", "/dev/null"]
    try:
        subprocess.run(
            [*base, "new-session", "-d", "-x", str(width), "-y", str(height), script],
            check=True,
            env=env,
            timeout=30,
        )
        subprocess.run([*base, "wait-for", done], check=True, timeout=120)
        screen = subprocess.run(
            [*base, "capture-pane", "-p", "-J", *(["-S", "-"] if scrolled else [])],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=30)
    return screen.rstrip("\n").splitlines()


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_status_fits_the_terminal_and_keeps_state_epochs_and_metric_whole(
    tmux: str, tmp_path: Path, width: int, height: int
) -> None:
    finished_sweep(tmp_path, "digits_depth.toml", failed=3)
    screen = in_terminal(tmux, width, height, "status", "digits-depth", "--results", str(tmp_path))
    assert screen[0].startswith("digits-depth: 24 runs  COMPLETED 23  FAILED 1")
    assert max(map(len, screen)) <= width, "\n".join(screen)
    rows = [line for line in screen if re.search(r"(COMPLETED|FAILED)\s+\d+/20", line)]
    assert len(rows) == 24, "\n".join(screen)
    for row in rows:
        whole = re.search(r"  (COMPLETED|FAILED)\s+20/20\s+0\.\d{4}(  |$)", row)
        assert whole and "…" not in row[: whole.end()], row  # label, state, epochs and the metric whole
    failed = next(r for r in rows if "FAILED" in r)
    assert re.search(r"ValueError: In\S*.*…$", failed), failed  # the note, cut where it must be


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_collect_fits_the_terminal_one_line_per_configuration(
    tmux: str, tmp_path: Path, width: int, height: int
) -> None:
    finished_sweep(tmp_path, "digits_depth.toml")
    screen = in_terminal(tmux, width, height, "collect", "digits-depth", "--results", str(tmp_path))
    assert screen[0] == "digits-depth: 8 of 8 configurations, 24 runs"
    assert max(map(len, screen)) <= width, "\n".join(screen)
    rows = [line for line in screen if re.match(r"^(20x50x70x100x70x50x20|64x32|128|32)\s+0\.00", line)]
    assert len(rows) == 8, "\n".join(screen)
    for row in rows:
        assert "…" not in row, row
        # settings, runs finished and the main metric (mean±std) on one line
        assert re.search(r"0\.00[13]\s+(\S+\s+)?3/3\s+0\.\d{3}±0\.\d{3}", row), row
    header = " ".join(screen[1 : screen.index(next(s for s in screen if s.startswith("──")))])
    assert "acc" in header and "lr" in header and "hidden" in header


def test_wide_shows_whole_run_ids_and_every_column_however_wide(tmux: str, tmp_path: Path) -> None:
    finished_sweep(tmp_path, "digits_depth.toml")
    screen = in_terminal(tmux, 80, 24, "status", "digits-depth", "--results", str(tmp_path), "--wide")
    row = next(line for line in screen if "learning_rate-0.001__seed-0" in line)
    assert row.startswith("hidden-20x50x70x100x70x50x20__learning_rate-0.001__seed-0  COMPLETED")
    assert len(row) > 80 and row.split()[-1] == "1000_0"  # the terminal wrapped it; nothing was cut


def test_collect_at_120_columns_shows_every_column_of_the_moons_demo(tmux: str, tmp_path: Path) -> None:
    finished_sweep(tmp_path, "moons.toml")
    screen = in_terminal(tmux, 120, 40, "collect", "moons", "--results", str(tmp_path))
    assert max(map(len, screen)) <= 120, "\n".join(screen)
    assert not any(line.startswith("--wide adds") for line in screen), "\n".join(screen)
    text = " ".join(screen)
    for header in ("params", "runs", "acc", "loss", "epoch", "F1", "s/epoch", "samples/s"):
        assert header in text, header


def test_watch_keeps_to_the_terminal_height(tmux: str, tmp_path: Path) -> None:
    finished_sweep(tmp_path, "digits_depth.toml", failed=0)
    screen = in_terminal(
        tmux, 80, 24, "status", "digits-depth", "--results", str(tmp_path), "--watch", scrolled=False
    )
    assert screen[0].startswith("digits-depth: 24 runs"), "\n".join(screen)  # nothing scrolled away
    assert len(screen) <= 24
    more = next(line for line in screen if line.startswith("… and "))
    shown = sum(1 for line in screen if re.search(r"\d+/20", line))
    assert more.startswith(f"… and {24 - shown} more (COMPLETED {24 - shown})")
    assert max(map(len, screen)) <= 80


def test_watch_into_a_pipe_writes_a_line_per_change(tmp_path: Path) -> None:
    finished_sweep(tmp_path, "moons.toml")
    proc = subprocess.run(
        [sys.executable, "-m", "hpcjobs", "status", "moons", "--results", str(tmp_path), "--watch"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"\d\d:\d\d:\d\d moons: 6 runs  COMPLETED 6  epochs 180/180\n", proc.stdout)
