"""[search] and [space]: one-line errors for bad tables, seeded draws, draws crossed with the grid axes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs.cli import cli
from hpcjobs.plan import mlp_params
from hpcjobs.spec import SpecError, expand, parse_spec

BASE: dict[str, Any] = {"name": "quest", "data": {"source": "digits"}, "train": {"epochs": 27}}
SPACE = {
    "model.hidden": {"layers": [1, 7], "units": [16, 256]},
    "train.learning_rate": {"log_uniform": [1e-4, 1e-2]},
    "model.dropout": {"uniform": [0.0, 0.5]},
    "train.batch_size": {"int_uniform": [32, 256]},
    "model.activation": {"choice": ["relu", "tanh"]},
}


def _doc(search: dict[str, Any], space: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc = {**BASE, "search": search, **extra}
    if space is not None:
        doc["space"] = space
    return doc


def test_grid_is_the_default_and_unchanged():
    spec = parse_spec({**BASE, "sweep": {"model.hidden": [[8], [16]], "seeds": [0, 1]}})
    assert spec.search.method == "grid"
    assert [r.run_id for r in expand(spec)] == [
        "hidden-8__seed-0",
        "hidden-8__seed-1",
        "hidden-16__seed-0",
        "hidden-16__seed-1",
    ]


def test_random_draws_every_kind_within_its_bounds():
    spec = parse_spec(_doc({"method": "random", "configurations": 40}, SPACE))
    runs = expand(spec)
    assert len(runs) == spec.run_count == 40
    for run in runs:
        model, train = run.settings.model, run.settings.train
        assert 1 <= len(model.hidden) <= 7 and all(16 <= u <= 256 for u in model.hidden)
        assert 1e-4 <= train.learning_rate <= 1e-2
        assert 0.0 <= model.dropout <= 0.5
        assert 32 <= train.batch_size <= 256 and isinstance(train.batch_size, int)
        assert model.activation in ("relu", "tanh")
        assert train.epochs == 27  # the budget is never drawn
    depths = {len(r.settings.model.hidden) for r in runs}
    assert len(depths) >= 5  # depth is drawn, not fixed


def test_draws_are_crossed_with_grid_axes_and_seeds():
    doc = _doc(
        {"method": "halving", "configurations": 3, "min_epochs": 3},
        {"train.learning_rate": {"log_uniform": [1e-4, 1e-2]}},
        sweep={"model.hidden": [[8], [16]], "seeds": [0, 1]},
    )
    spec = parse_spec(doc)
    runs = expand(spec)
    assert len(runs) == spec.run_count == 3 * 2 * 2
    assert len({r.config_id for r in runs}) == 6
    assert runs[0].run_id.startswith("hidden-8__learning_rate-")
    per_rate = {r.settings.train.learning_rate for r in runs}
    assert len(per_rate) == 3


def test_halving_over_a_grid_needs_no_space():
    spec = parse_spec(_doc({"method": "halving", "min_epochs": 3}, sweep={"model.hidden": [[8], [16]]}))
    assert (spec.search.eta, spec.search.min_epochs, spec.run_count) == (3, 3, 2)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 12))
def test_same_file_draws_the_same_configurations(seed: int, n: int):
    doc = _doc({"method": "random", "configurations": n, "seed": seed}, SPACE)
    first, second = expand(parse_spec(doc)), expand(parse_spec(doc))
    assert [r.run_id for r in first] == [r.run_id for r in second]
    assert [r.settings for r in first] == [r.settings for r in second]
    assert len({r.config_id for r in first}) == n  # distinct configurations


@settings(max_examples=30, deadline=None)
@given(
    lo=st.floats(1e-6, 1.0),
    ratio=st.floats(1.001, 1e4),
    seed=st.integers(0, 1000),
)
def test_log_uniform_draws_stay_in_their_bounds(lo: float, ratio: float, seed: int):
    hi = lo * ratio
    doc = _doc(
        {"method": "random", "configurations": 1, "seed": seed},
        {"train.learning_rate": {"log_uniform": [lo, hi]}},
    )
    (run,) = expand(parse_spec(doc))
    assert lo <= run.settings.train.learning_rate <= hi


def test_a_different_seed_draws_differently():
    a = expand(parse_spec(_doc({"method": "random", "configurations": 5, "seed": 0}, SPACE)))
    b = expand(parse_spec(_doc({"method": "random", "configurations": 5, "seed": 1}, SPACE)))
    assert [r.run_id for r in a] != [r.run_id for r in b]


def test_a_finite_space_can_be_drawn_whole():
    space = {"model.activation": {"choice": ["relu", "tanh"]}, "train.batch_size": {"int_uniform": [1, 3]}}
    runs = expand(parse_spec(_doc({"method": "random", "configurations": 6}, space)))
    assert len({r.config_id for r in runs}) == 6


RANDOM = {"method": "random", "configurations": 3}
BAD_SEARCH = [
    ({"method": "bayes"}, None, 'search.method = "bayes" is invalid: expected one of grid, random, halving'),
    ({"method": "random", "configurations": 0}, SPACE, "search.configurations = 0 is invalid"),
    ({"method": "random", "configuration": 3}, SPACE, "(did you mean 'configurations'?)"),
    ({"method": "random"}, SPACE, "search.configurations is missing"),
    (RANDOM, None, "needs a [space] to draw from"),
    ({"configurations": 3}, SPACE, 'expected method = "random" or "halving"'),
    ({**RANDOM, "eta": 3}, SPACE, 'applies to method = "halving" only'),
    ({"method": "halving", "min_epochs": 30}, None, "expected at most train.epochs (27)"),
    ({"method": "halving", "eta": 1}, None, "search.eta = 1 is invalid: expected an integer ≥ 2"),
]
# Each [space] drawn by RANDOM, and what its one-line error says.
BAD_SPACE = {
    "log_uniform_zero": ({"train.learning_rate": {"log_uniform": [0, 1e-2]}}, "bounds > 0"),
    "reversed": ({"train.learning_rate": {"uniform": [1e-2, 1e-4]}}, "min < max"),
    "unknown_kind": ({"train.learning_rate": {"normal": [0, 1]}}, "expected one of {"),
    "a_list": ({"train.learning_rate": [1e-3, 1e-2]}, "expected one of {"),
    "float_for_int": ({"train.batch_size": {"uniform": [8, 64]}}, "int_uniform or choice"),
    "int_for_float": ({"train.learning_rate": {"int_uniform": [1, 2]}}, "uniform, log_uniform or choice"),
    "out_of_range": ({"model.dropout": {"uniform": [0.0, 1.0]}}, "expected bounds a number in [0, 1)"),
    "typo": ({"model.hiden": {"choice": [[8]]}}, "(did you mean 'model.hidden'?)"),
    "budget": ({"train.epochs": {"int_uniform": [1, 9]}}, "unknown key 'space.\"train.epochs\"'"),
    "no_layers": ({"model.hidden": {"layers": [0, 3], "units": [8, 9]}}, "two integers ≥ 1"),
    "units_missing": ({"model.hidden": {"layers": [1, 3]}}, "{ layers = [min, max], units = [min, max] }"),
    "hidden_kind": ({"model.hidden": {"log_uniform": [1, 3]}}, "{ layers = [min, max]"),
    "bad_choice": ({"model.activation": {"choice": ["relu", "rleu"]}}, '"rleu" is invalid'),
    "repeated_choice": ({"model.activation": {"choice": ["relu", "relu"]}}, "distinct choices"),
    "too_small": ({"model.activation": {"choice": ["relu", "tanh"]}}, "expected at most 2, the distinct"),
}
BAD = [
    *BAD_SEARCH,
    *((RANDOM, space, message) for space, message in BAD_SPACE.values()),
    ({"method": "grid"}, {"model.activation": {"choice": ["relu", "tanh"]}}, "[space] needs search.method"),
    ({"method": "halving"}, {"train.early_stopping_patience": {"int_uniform": [1, 3]}}, "expected 0 with"),
]


@pytest.mark.parametrize(("search", "space", "message"), BAD)
def test_bad_search_or_space_is_one_line(search: dict[str, Any], space: Any, message: str):
    with pytest.raises(SpecError) as err:
        parse_spec(_doc(search, space), where="q.toml")
    text = str(err.value)
    assert text.startswith("q.toml: ") and "\n" not in text
    assert message in text


def test_a_key_in_both_sweep_and_space_is_refused():
    doc = _doc(
        {"method": "random", "configurations": 2},
        {"train.learning_rate": {"log_uniform": [1e-4, 1e-2]}},
        sweep={"train.learning_rate": [1e-3]},
    )
    with pytest.raises(SpecError, match="is in both \\[sweep\\] and \\[space\\]"):
        parse_spec(doc)


def test_halving_refuses_early_stopping():
    with pytest.raises(SpecError, match="early_stopping_patience: expected 0"):
        parse_spec({**_doc({"method": "halving"}), "train": {"epochs": 9, "early_stopping_patience": 2}})


def test_max_runs_is_checked_before_drawing():
    doc = {**_doc({"method": "random", "configurations": 10**9}, SPACE), "max_runs": 100}
    with pytest.raises(SpecError, match="expands to 1,000,000,000 runs"):
        parse_spec(doc)


def test_submit_of_a_bad_space_exits_2_and_writes_nothing(tmp_path: Path):
    from click.testing import CliRunner

    sweep = tmp_path / "bad.toml"
    sweep.write_text(
        'name = "bad"\n[data]\nsource = "digits"\n[search]\nmethod = "random"\nconfigurations = 4\n'
        '[space]\n"train.learning_rate" = { log_uniform = [0.0, 0.1] }\n'
    )
    result = CliRunner().invoke(cli, ["submit", str(sweep), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "bounds > 0" in result.output
    assert not (tmp_path / "r").exists()


def test_drawn_floats_read_as_their_labels():
    runs = expand(parse_spec(_doc({"method": "random", "configurations": 20}, SPACE)))
    for run in runs:
        rate = run.settings.train.learning_rate
        assert f"learning_rate-{rate!r}" in run.run_id
        assert float(f"{rate:.3g}") == rate and math.isfinite(rate)


def test_random_search_submits_its_draws_and_packs_by_the_largest_drawn_model(tmp_path: Path):
    from hpcjobs import backends, layout
    from hpcjobs import sweep as sweeps

    path = tmp_path / "quest.toml"
    path.write_text(
        'name = "quest"\n[data]\nsource = "digits"\n[search]\nmethod = "random"\nconfigurations = 4\n'
        '[space]\n"model.hidden" = { layers = [1, 3], units = [16, 256] }\n[sweep]\nseeds = [0, 1]\n'
        "[slurm]\nruns_per_task = 1\n"
    )
    fake = backends.FakeBackend()
    outcome = sweeps.submit(path, tmp_path / "r", fake, lambda _: fake)
    spec_runs = expand(parse_spec({"name": "quest", "data": {"source": "digits"}, **_tables(path)}))
    assert outcome.to_submit == [r.run_id for r in spec_runs] and len(spec_runs) == 8
    sweep = layout.SweepDir(tmp_path / "r" / "quest")
    assert all(sweep.config(r.run_id).is_file() for r in spec_runs)
    largest = max(mlp_params(64, r.settings.model.hidden, 10) for r in spec_runs)
    assert sweeps.max_params(spec_runs, [(64, 10)]) == largest


def _tables(path: Path) -> dict[str, Any]:
    import tomllib

    doc = tomllib.loads(path.read_text())
    return {k: doc[k] for k in ("search", "space", "sweep")}


def test_the_mnist_quest_example_is_a_halving_search_of_4_rungs():
    from hpcjobs import search
    from hpcjobs.spec import load_spec

    from .conftest import EXAMPLES

    spec = load_spec(EXAMPLES / "mnist_quest.toml")
    assert (spec.search.method, spec.run_count) == ("halving", 54)
    assert search.rung_epochs(spec.search.min_epochs, spec.search.eta, spec.settings.train.epochs) == [
        2,
        6,
        18,
        54,
    ]
    depths = {len(r.settings.model.hidden) for r in expand(spec)}
    assert depths <= set(range(1, 8)) and len(depths) >= 4
