"""The sweep file: examples load, defaults, one-line errors for bad input, and properties of `expand`."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs.schema import ACTIVATIONS
from hpcjobs.settings import Run
from hpcjobs.spec import Spec, SpecError, expand, load_spec, parse_spec

from .conftest import EXAMPLES

ISSUE_EXAMPLE = """\
name = "digits-depth"
backend = "tensorflow"

[data]
source = "digits"
test_fraction = 0.2
validation_fraction = 0.1

[model]
hidden = [64, 32]
activation = "relu"

[train]
epochs = 20
batch_size = 128
optimizer = "adam"
learning_rate = 1e-3
metrics = ["categorical_accuracy", "mean_squared_error", "mean_absolute_error"]
precision = "auto"

[sweep]
"model.hidden" = [[20, 50, 70, 100, 70, 50, 20], [64, 32], [128]]
"train.learning_rate" = [1e-3, 3e-4]
seeds = [0, 1, 2]

[slurm]
partition = "gpu"
time = "00:20:00"
gpus_per_task = 1
cpus_per_task = 2
mem_gb = 8
array_parallelism = 16
"""


def _write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the examples -----------------------------------------------------------------------------------


def test_moons_example_expands_to_6_runs() -> None:
    runs = expand(load_spec(EXAMPLES / "moons.toml"))
    assert len(runs) == 6
    assert [r.run_id for r in runs[:2]] == ["hidden-3x5__seed-0", "hidden-3x5__seed-1"]


def test_digits_depth_example_expands_to_24_runs() -> None:
    spec = load_spec(EXAMPLES / "digits_depth.toml")
    assert spec.run_count == 24
    assert len(expand(spec)) == 24


def test_issue_example_gives_18_runs_with_readable_ids(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, ISSUE_EXAMPLE))
    runs = expand(spec)
    assert len(runs) == 18 == spec.run_count
    assert runs[0].run_id == "hidden-20x50x70x100x70x50x20__learning_rate-0.001__seed-0"
    assert runs[0].config_id == "hidden-20x50x70x100x70x50x20__learning_rate-0.001"
    assert [r.run_id for r in runs[3:6]] == [
        "hidden-20x50x70x100x70x50x20__learning_rate-0.0003__seed-0",
        "hidden-20x50x70x100x70x50x20__learning_rate-0.0003__seed-1",
        "hidden-20x50x70x100x70x50x20__learning_rate-0.0003__seed-2",
    ]
    assert runs[-1].run_id == "hidden-128__learning_rate-0.0003__seed-2"
    assert len({r.run_id for r in runs}) == 18
    assert runs[-1].settings.model.hidden == (128,)
    assert runs[-1].settings.train.learning_rate == 3e-4
    assert spec.slurm.partition == "gpu"
    assert spec.slurm.array_parallelism == 16


# --- defaults and paths -----------------------------------------------------------------------------


def test_defaults_fill_everything_but_name_and_data_source(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, 'name = "tiny"\n\n[data]\nsource = "moons"\n'))
    assert spec.name == "tiny"
    assert spec.backend == "tensorflow"
    assert spec.max_runs == 10_000
    assert spec.settings.to_dict() == {
        "data": {"source": "moons", "test_fraction": 0.2, "validation_fraction": 0.1, "scale": "standard"},
        "model": {"hidden": [64, 32], "activation": "relu", "dropout": 0.0, "l2": 0.0},
        "train": {
            "epochs": 20,
            "batch_size": 128,
            "optimizer": "adam",
            "learning_rate": 1e-3,
            "metrics": ["categorical_accuracy", "mean_squared_error", "mean_absolute_error"],
            "precision": "auto",
            "early_stopping_patience": 0,
            "steps_per_execution": "auto",
            "population": "auto",
        },
    }
    assert spec.slurm.to_dict() == {
        "partition": "",
        "time": "00:20:00",
        "gpus_per_task": 1,
        "gpu_request": "gpus-per-node",
        "cpus_per_task": 2,
        "mem_gb": 8,
        "array_parallelism": 16,
        "trials_per_gpu": "auto",
        "runs_per_task": "auto",
        "account": "",
        "qos": "",
        "constraint": "",
        "additional": [],
    }
    assert spec.axes == {}
    assert spec.seeds == [0]
    assert [r.run_id for r in expand(spec)] == ["base__seed-0"]


def test_settings_are_frozen_so_no_spec_or_run_changes_another(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, 'name = "a"\n[data]\nsource = "moons"\n[model]\nhidden = [8, 4]\n'))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.settings.model.hidden = (999,)  # type: ignore[misc]
    assert spec.settings.model.hidden == (8, 4)  # a tuple: not even its items can change


def test_relative_data_path_is_resolved_against_the_sweep_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sweeps"
    folder.mkdir()
    spec = load_spec(_write(folder, 'name = "mine"\n[data]\nsource = "data/points.npz"\n'))
    assert spec.settings.data.source == str((folder / "data" / "points.npz").resolve())


def test_absolute_data_path_and_dataset_names_are_kept(tmp_path: Path) -> None:
    absolute = str((tmp_path / "x.csv").resolve())
    spec = load_spec(_write(tmp_path, f'name = "mine"\n[data]\nsource = "{absolute}"\n'))
    assert spec.settings.data.source == absolute
    spec = load_spec(_write(tmp_path, 'name = "mine"\n[data]\nsource = "digits"\n'))
    assert spec.settings.data.source == "digits"


def test_integer_learning_rate_is_read_as_a_float(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, 'name = "t"\n[data]\nsource = "moons"\n[train]\nlearning_rate = 1\n'))
    assert spec.settings.train.learning_rate == 1.0
    assert isinstance(spec.settings.train.learning_rate, float)


def test_missing_sweep_file_is_a_one_line_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(SpecError, match="no such sweep file") as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ")


# --- bad input: one line, the file, the key, and what was expected ----------------------------------

OK = 'name = "t"\n\n[data]\nsource = "digits"\n'  # a valid head; cases append to it


def _huge_sweep(max_runs: int | None = None) -> str:
    """5 axes of 25 choices: 9,765,625 runs (never expanded)."""
    head = f"max_runs = {max_runs}\n" if max_runs else ""
    return (
        head
        + OK
        + (
            "[sweep]\n"
            f'"model.hidden" = {[[n] for n in range(1, 26)]}\n'
            f'"model.dropout" = {[n / 100 for n in range(25)]}\n'
            f'"train.epochs" = {list(range(1, 26))}\n'
            f'"train.batch_size" = {list(range(1, 26))}\n'
            f'"train.learning_rate" = {[n / 1000 for n in range(1, 26)]}\n'
        )
    )


def _bad(name: str, text: str, *expected: str) -> Any:
    """A bad sweep file and the substrings its error message must contain."""
    return pytest.param(text, list(expected), id=name)


BAD = [
    # malformed TOML
    _bad("unterminated-string", 'name = "t\n', "not valid TOML"),
    _bad("no-equals-sign", 'name "t"\n', "not valid TOML"),
    _bad("duplicate-key", OK + 'source = "moons"\n', "not valid TOML"),
    _bad("byte-order-mark", "\ufeff" + OK, "starts with a UTF-8 byte-order mark: save it without one"),
    # unknown and misspelled keys
    _bad("stray-key-in-data", OK + 'nmae = "t"\n', "'data.nmae'", "data.source"),
    _bad("unknown-top-level-key", 'nam = "t"\n' + OK, "unknown key 'nam'", "name, backend"),
    _bad("misspelled-table", OK + "[modle]\nhidden = [8]\n", "'modle'", "model"),
    _bad("data.sorce", 'name = "t"\n[data]\nsorce = "digits"\n', "'data.sorce'", "data.source"),
    _bad("model.hiden", OK + "[model]\nhiden = [8]\n", "'model.hiden'", "model.hidden"),
    _bad("train.epoch", OK + "[train]\nepoch = 5\n", "'train.epoch'", "train.epochs"),
    _bad("slurm.partion", OK + '[slurm]\npartion = "gpu"\n', "'slurm.partion'", "slurm.partition"),
    _bad("sweep.seed", OK + "[sweep]\nseed = [0, 1]\n", 'sweep."seed"', "seeds"),
    # wrong types
    _bad(
        "hidden-string", OK + '[model]\nhidden = "64"\n', 'model.hidden = "64"', "list of positive integers"
    ),
    _bad("epochs-string", OK + '[train]\nepochs = "20"\n', 'train.epochs = "20"', "integer"),
    _bad("epochs-float", OK + "[train]\nepochs = 2.5\n", "train.epochs = 2.5", "integer"),
    _bad("batch-bool", OK + "[train]\nbatch_size = true\n", "train.batch_size = true", "integer"),
    _bad(
        "learning-rate-string",
        OK + '[train]\nlearning_rate = "fast"\n',
        'train.learning_rate = "fast"',
        "number > 0",
    ),
    _bad("lr-nan", OK + "[train]\nlearning_rate = nan\n", "train.learning_rate", "number > 0"),
    _bad("model-not-a-table", "model = 3\n" + OK, "model = 3", "a table [model]"),
    _bad("sweep-not-a-table", 'sweep = "all"\n' + OK, 'sweep = "all"', "a table [sweep]"),
    # out of range
    _bad("zero-units", OK + "[model]\nhidden = [64, 0]\n", "model.hidden = [64, 0]", "positive integers"),
    _bad("negative-units", OK + "[model]\nhidden = [-8]\n", "model.hidden = [-8]", "positive integers"),
    _bad("no-layers", OK + "[model]\nhidden = []\n", "model.hidden = []", "non-empty list"),
    _bad("zero-epochs", OK + "[train]\nepochs = 0\n", "train.epochs = 0", "integer ≥ 1"),
    _bad("negative-epochs", OK + "[train]\nepochs = -5\n", "train.epochs = -5", "integer ≥ 1"),
    _bad("zero-batch", OK + "[train]\nbatch_size = 0\n", "train.batch_size = 0", "integer ≥ 1"),
    _bad("zero-lr", OK + "[train]\nlearning_rate = 0\n", "train.learning_rate = 0", "number > 0"),
    _bad("negative-lr", OK + "[train]\nlearning_rate = -0.01\n", "train.learning_rate = -0.01", "number > 0"),
    _bad("dropout-1", OK + "[model]\ndropout = 1.0\n", "model.dropout = 1.0", "[0, 1)"),
    _bad("test-fraction-0", OK + "test_fraction = 0\n", "data.test_fraction = 0", "(0, 1)"),
    _bad(
        "fractions-sum-0.9",
        OK + "test_fraction = 0.8\nvalidation_fraction = 0.1\n",
        "data.test_fraction + data.validation_fraction",
        "less than 0.9",
    ),
    _bad("max-runs-0", "max_runs = 0\n" + OK, "max_runs = 0", "integer ≥ 1"),
    # the sweep table
    _bad(
        "empty-axis",
        OK + '[sweep]\n"model.hidden" = []\n',
        'sweep."model.hidden" = []',
        "non-empty list of choices",
    ),
    _bad(
        "axis-naming-no-setting",
        OK + '[sweep]\n"model.width" = [1, 2]\n',
        'sweep."model.width"',
        "model.hidden",
    ),
    _bad(
        "axis-not-sweepable",
        OK + '[sweep]\n"slurm.time" = ["00:10:00", "00:20:00"]\n',
        'sweep."slurm.time"',
        "one of seeds",
    ),
    _bad(
        "axis-of-ints-not-lists",
        OK + '[sweep]\n"model.hidden" = [64, 32]\n',
        'sweep."model.hidden" = 64',
        "each choice",
    ),
    _bad(
        "axis-duplicate-choices",
        OK + '[sweep]\n"train.learning_rate" = [0.001, 1e-3]\n',
        "learning_rate",
        "distinct choices",
    ),
    _bad(
        "axis-not-a-list",
        OK + '[sweep]\n"model.activation" = "relu"\n',
        'sweep."model.activation" = "relu"',
        "list",
    ),
    _bad("duplicate-seeds", OK + "[sweep]\nseeds = [0, 1, 0]\n", "sweep.seeds = [0, 1, 0]", "distinct seeds"),
    _bad("negative-seed", OK + "[sweep]\nseeds = [-1]\n", "sweep.seeds = [-1]", "integers 0 ≤ seed < 2**32"),
    _bad("no-seeds", OK + "[sweep]\nseeds = []\n", "sweep.seeds = []", "non-empty list"),
    _bad("seeds-not-a-list", OK + "[sweep]\nseeds = 3\n", "sweep.seeds = 3", "list of integers"),
    _bad("ten-million-runs", _huge_sweep(), "9,765,625 runs", "at most 10,000", "max_runs"),
    # unknown choices
    _bad(
        "unknown-activation",
        OK + '[model]\nactivation = "relu6"\n',
        'model.activation = "relu6"',
        "one of relu, tanh",
    ),
    _bad(
        "unknown-optimizer",
        OK + '[train]\noptimizer = "adamm"\n',
        'train.optimizer = "adamm"',
        "one of adam, adamw",
    ),
    _bad("unknown-metric", OK + '[train]\nmetrics = ["f1"]\n', 'train.metrics = ["f1"]', "a list drawn from"),
    _bad(
        "unknown-precision",
        OK + '[train]\nprecision = "fp16"\n',
        'train.precision = "fp16"',
        "one of auto, float32",
    ),
    _bad(
        "unknown-backend",
        'backend = "pytorch"\n' + OK,
        'backend = "pytorch"',
        "one of tensorflow, jax, torch",
    ),
    # combinations that would fail on every node
    _bad(
        "torch-steps-per-execution",
        'backend = "torch"\n' + OK + "[train]\nsteps_per_execution = 8\n",
        "train.steps_per_execution = 8",
        '"auto" or 1 with backend = "torch"',
    ),
    _bad(
        "torch-steps-per-execution-choice",
        'backend = "torch"\n' + OK + '[sweep]\n"train.steps_per_execution" = [1, 4]\n',
        "train.steps_per_execution = 4",
        '"auto" or 1 with backend = "torch"',
    ),
    # names that would make bad folder names or shell words
    _bad("name-slash", 'name = "a/b"\n[data]\nsource = "digits"\n', 'name = "a/b"', "1-64 characters"),
    _bad(
        "name-space", 'name = "my sweep"\n[data]\nsource = "digits"\n', 'name = "my sweep"', "[A-Za-z0-9._-]"
    ),
    _bad("name-quote", 'name = "it\'s"\n[data]\nsource = "digits"\n', 'name = "it\'s"', "1-64"),
    _bad(
        "name-double-quotes",
        'name = "say \\"hi\\""\n[data]\nsource = "digits"\n',
        'name = "say \\"hi\\""',
        "1-64",
    ),
    _bad("name-shell", 'name = "$(rm -rf ~)"\n[data]\nsource = "digits"\n', 'name = "$(rm -rf ~)"', "1-64"),
    _bad("name-empty", 'name = ""\n[data]\nsource = "digits"\n', 'name = ""', "1-64"),
    _bad("name-65", f'name = "{"x" * 65}"\n[data]\nsource = "digits"\n', f'"{"x" * 65}"', "1-64"),
    _bad("name-dotdot", 'name = ".."\n[data]\nsource = "digits"\n', 'name = ".."', "1-64"),
    _bad("name-number", 'name = 7\n[data]\nsource = "digits"\n', "name = 7", "1-64"),
    # required keys
    _bad("missing-name", '[data]\nsource = "digits"\n', "'name' is missing", "1-64 characters"),
    _bad(
        "missing-data-source",
        'name = "t"\n[model]\nhidden = [8]\n',
        "'data.source' is missing",
        "one of moons",
    ),
    _bad("data-source-number", 'name = "t"\n[data]\nsource = 3\n', "data.source = 3", "path to a .npz/.csv"),
    # [slurm]
    _bad(
        "slurm-time-words",
        OK + '[slurm]\ntime = "twenty minutes"\n',
        'slurm.time = "twenty minutes"',
        "00:20:00",
    ),
    _bad(
        "slurm-gpu-request",
        OK + '[slurm]\ngpu_request = "gpu"\n',
        'slurm.gpu_request = "gpu"',
        "gpus-per-node",
    ),
    _bad(
        "slurm-additional-not-a-list",
        OK + '[slurm]\nadditional = "--mail-type=END"\n',
        'slurm.additional = "--mail-type=END"',
        "a list of extra sbatch options",
    ),
    _bad(
        "slurm-negative-gpus", OK + "[slurm]\ngpus_per_task = -1\n", "slurm.gpus_per_task = -1", "integer ≥ 0"
    ),
    _bad("slurm-no-memory", OK + "[slurm]\nmem_gb = 0\n", "slurm.mem_gb = 0", "number > 0"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_sweep_file_gives_one_line_error_naming_file_key_and_expectation(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message


def test_bad_input_corpus_is_large() -> None:
    assert len(BAD) >= 35


def test_huge_sweep_is_accepted_when_max_runs_is_raised(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, _huge_sweep(max_runs=10_000_000)))  # parsed, never expanded
    assert spec.run_count == 9_765_625
    assert spec.max_runs == 10_000_000


def test_run_count_at_max_runs_is_accepted() -> None:
    doc = {
        "name": "t",
        "max_runs": 6,
        "data": {"source": "digits"},
        "sweep": {"train.batch_size": [16, 32, 64], "seeds": [0, 1]},
    }
    assert parse_spec(doc).run_count == 6
    with pytest.raises(SpecError, match="expands to 6 runs: expected at most 5"):
        parse_spec({**doc, "max_runs": 5})


# --- regressions: bugs found and fixed ---------------------------------------------------------------


def test_sweep_choices_equal_after_float_conversion_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, OK + '[sweep]\n"train.learning_rate" = [1, 1.0]\n')
    with pytest.raises(SpecError, match="distinct choices"):
        load_spec(path)


def test_swept_test_fraction_is_checked_against_validation_fraction(tmp_path: Path) -> None:
    path = _write(tmp_path, OK + '[sweep]\n"data.test_fraction" = [0.2, 0.85]\n')
    with pytest.raises(SpecError, match=r"less than 0\.9"):
        load_spec(path)


def test_swept_relative_data_paths_are_resolved(tmp_path: Path) -> None:
    path = _write(
        tmp_path, 'name = "t"\n[data]\nsource = "a.npz"\n[sweep]\n"data.source" = ["a.npz", "b.npz"]\n'
    )
    runs = expand(load_spec(path))
    assert [r.settings.data.source for r in runs] == [
        str((tmp_path / "a.npz").resolve()),
        str((tmp_path / "b.npz").resolve()),
    ]


def test_distinct_choices_never_share_a_run_id(tmp_path: Path) -> None:
    path = _write(tmp_path, OK + '[sweep]\n"data.source" = ["a b.npz", "a_b.npz"]\n')
    try:
        runs = expand(load_spec(path))
    except SpecError:
        return  # refusing the sweep is a fix too
    assert len({r.run_id for r in runs}) == len(runs)


def test_zero_validation_fraction_is_refused_before_submission(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="validation_fraction"):
        load_spec(_write(tmp_path, OK + "validation_fraction = 0\n"))


# --- properties of expand ---------------------------------------------------------------------------

_CHOICES = {
    "model.hidden": st.lists(st.integers(1, 512), min_size=1, max_size=4),
    "train.learning_rate": st.floats(1e-6, 1.0, allow_nan=False),
    "train.batch_size": st.integers(1, 4096),
    "model.activation": st.sampled_from(ACTIVATIONS),
}


@st.composite
def _sweeps(draw: st.DrawFn) -> dict[str, list[object]]:
    keys = draw(st.lists(st.sampled_from(sorted(_CHOICES)), min_size=1, max_size=3, unique=True))
    axes: dict[str, list[object]] = {
        key: draw(st.lists(_CHOICES[key], min_size=1, max_size=4, unique_by=json.dumps)) for key in keys
    }
    axes["seeds"] = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=4, unique=True))
    return axes


def _spec(sweep: dict[str, list[object]]) -> Spec:
    return parse_spec({"name": "prop", "backend": "jax", "data": {"source": "moons"}, "sweep": sweep})


def _axis_values(run: Run, sweep: dict[str, list[object]]) -> tuple[str, ...]:
    """The run's value on each swept key (as JSON, so lists compare), in the sweep's key order."""
    tables = run.settings.to_dict()
    return tuple(json.dumps(tables[k.split(".")[0]][k.split(".")[1]]) for k in sweep if k != "seeds")


@settings(max_examples=60, deadline=None)
@given(sweep=_sweeps())
def test_expand_makes_every_combination_once_per_seed(sweep: dict[str, list[object]]) -> None:
    spec = _spec(sweep)
    runs = expand(spec)
    axes = {k: v for k, v in sweep.items() if k != "seeds"}
    expected = len(sweep["seeds"])
    for choices in axes.values():
        expected *= len(choices)
    assert len(runs) == expected == spec.run_count
    assert len({r.run_id for r in runs}) == len(runs)
    assert len({r.config_id for r in runs}) == expected // len(sweep["seeds"])

    wanted = {tuple(json.dumps(v) for v in values) for values in itertools.product(*axes.values())}
    for seed in sweep["seeds"]:
        assert {_axis_values(r, sweep) for r in runs if r.seed == seed} == wanted
    for run in runs:
        assert run.run_id == f"{run.config_id}__seed-{run.seed}"
        config = run.config("prop", "jax").to_dict()
        assert (config["run_id"], config["seed"], config["backend"], config["sweep"]) == (
            run.run_id,
            run.seed,
            "jax",
            "prop",
        )
        assert config["model"] == run.settings.model.to_dict()


@settings(max_examples=60, deadline=None)
@given(sweep=_sweeps(), data=st.data())
def test_run_ids_are_stable_and_do_not_depend_on_choice_order(
    sweep: dict[str, list[object]], data: st.DataObject
) -> None:
    spec = _spec(sweep)
    first = [r.run_id for r in expand(spec)]
    assert [r.run_id for r in expand(spec)] == first
    reordered = {key: data.draw(st.permutations(choices)) for key, choices in sweep.items()}
    by_config = {r.config_id: _axis_values(r, sweep) for r in expand(spec)}
    by_config_reordered = {r.config_id: _axis_values(r, sweep) for r in expand(_spec(reordered))}
    assert by_config_reordered == by_config
    assert sorted(r.run_id for r in expand(_spec(reordered))) == sorted(first)


@pytest.mark.parametrize("steps", ['"auto"', "1"])
def test_torch_runs_one_step_per_execution(tmp_path: Path, steps: str) -> None:
    text = 'backend = "torch"\n' + OK + f"[train]\nsteps_per_execution = {steps}\n"
    assert load_spec(_write(tmp_path, text)).backend == "torch"
