"""Files hpcjobs reads are checked by shape: a bad manifest is one line naming it (exit 2); a bad
result.json or history.csv is one warning line naming the file while every other run is still shown;
inf and NaN are never a best; a finished run without usable epochs is counted as such."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from hpcjobs import backends, collect, histories, layout, manifest, results
from hpcjobs.cli import cli
from hpcjobs.spec import expand, load_spec
from hpcjobs.vocab import Objective, Submission

from .conftest import EXAMPLES, PACKED

HISTORY = "epoch,loss,val_categorical_accuracy,val_loss\n0,0.9,0.6,0.8\n1,0.5,0.7,0.4\n"


def make_sweep(tmp_path: Path) -> tuple[layout.SweepDir, list[str]]:
    """The moons example (3 configs × 2 seeds) submitted to the fake scheduler, every run COMPLETED."""
    runs = expand(load_spec(EXAMPLES / "moons.toml"))
    ids = [r.run_id for r in runs]
    sweep = layout.SweepDir(tmp_path / "results" / "moons")
    layout.make_private_dir(sweep.root)
    man = manifest.Manifest.new("moons", "tensorflow", runs, PACKED)
    man.submissions.append(Submission("fake", "1000", [[i] for i in ids]))
    manifest.write(sweep, man)
    for run_id in ids:
        layout.write_text(sweep.history(run_id), HISTORY)
        layout.write_json(sweep.result(run_id), {"status": "COMPLETED", "test": {"accuracy": 0.9}})
    return sweep, ids


def hpcjobs(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _edit_manifest(sweep: layout.SweepDir, edit: Any) -> None:
    data = json.loads(sweep.manifest.read_text())
    sweep.manifest.write_text(json.dumps(edit(data)))


MANIFESTS = {
    "a list": (lambda d: [1, 2, 3], "the manifest is a JSON list: expected an object"),
    "runs null": (lambda d: {**d, "runs": None}, "the manifest has 'runs' = None: expected list"),
    "run without settings": (
        lambda d: {**d, "runs": [{k: v for k, v in r.items() if k != "settings"} for r in d["runs"]]},
        "run 0 has 'settings' = None: expected dict",
    ),
    "run id leaving the sweep": (
        lambda d: {**d, "runs": [{**r, "run_id": "../../evil"} for r in d["runs"]]},
        "run 0's run_id '../../evil' is not a folder name",
    ),
    "tasks not lists": (
        lambda d: {**d, "submissions": [{**d["submissions"][0], "tasks": "oops"}]},
        "submission 0 has 'tasks' = 'oops'",
    ),
    "epochs as text": (
        lambda d: {
            **d,
            "runs": [{**r, "settings": {**r["settings"], "train": {"epochs": "2"}}} for r in d["runs"]],
        },
        "run 0's settings.train has 'epochs' = '2': expected int",
    ),
}


@pytest.mark.parametrize("case", MANIFESTS)
@pytest.mark.parametrize("command", ["status", "collect", "resubmit", "cancel"])
def test_a_manifest_of_the_wrong_shape_is_one_line_naming_it(
    tmp_path: Path, case: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "for_executor", lambda executor: backends.FakeBackend())
    sweep, _ = make_sweep(tmp_path)
    edit, expected = MANIFESTS[case]
    _edit_manifest(sweep, edit)
    code, out, err = hpcjobs(command, "moons", "--results", str(sweep.root.parent))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"hpcjobs: error: {sweep.manifest}: "), err
    assert expected in err


RESULTS = {
    "finished is not a date": ({"status": "COMPLETED", "finished": "today", "started": "today"}, "'started'"),
    "test is not an object": ({"status": "COMPLETED", "test": "oops"}, "'test' is 'oops'"),
    "unknown status": ({"status": "DONE"}, "'status' is 'DONE'"),
    "params as text": ({"status": "COMPLETED", "params": "many"}, "'params' is 'many'"),
    "a list": ([1, 2], "expected a JSON object, found list"),
}


@pytest.mark.parametrize("case", RESULTS)
def test_a_result_of_the_wrong_shape_is_one_warning_and_the_rest_still_shows(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "for_executor", lambda executor: backends.FakeBackend())
    sweep, ids = make_sweep(tmp_path)
    data, expected = RESULTS[case]
    layout.write_json(sweep.result(ids[0]), data)
    results_dir = str(sweep.root.parent)

    code, out, err = hpcjobs("status", "moons", "--results", results_dir, "--wide")
    assert code == 0
    assert err.count("\n") == 1 and err.startswith(f"hpcjobs: warning: {sweep.result(ids[0])}: unreadable")
    assert expected in err
    assert "COMPLETED 5" in out

    code, out, err = hpcjobs("collect", "moons", "--results", results_dir)
    assert code == 0
    assert err.strip() == f"hpcjobs: warning: {ids[0]}: result.json unreadable ({results.problem(data)})"
    assert "1 COMPLETED, 1 UNFINISHED" in out


def test_a_history_with_an_infinite_epoch_is_one_warning(tmp_path: Path) -> None:
    sweep, ids = make_sweep(tmp_path)
    layout.write_text(sweep.history(ids[1]), HISTORY + "inf,0.4,0.8,0.3\n")
    code, out, err = hpcjobs("status", "moons", "--results", str(sweep.root.parent))
    assert code == 0 and "COMPLETED 6" in out
    assert (
        err.strip() == f"hpcjobs: warning: {sweep.history(ids[1])}: unreadable (line 4 has no epoch number)"
    )
    col = collect.collect(sweep)
    assert col.problems == [f"{ids[1]}: history.csv unreadable (line 4 has no epoch number)"]


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_an_infinite_or_nan_value_is_never_the_best(bad: float) -> None:
    assert Objective("val_accuracy", "max").best_epoch([0.5, bad, 0.6]) == 2
    assert Objective("val_loss", "min").best_epoch([0.5, bad, 0.6]) == 0
    assert Objective("val_accuracy", "max").best_epoch([bad, bad]) is None
    text = f"epoch,loss,val_categorical_accuracy,val_loss\n0,1,0.5,1\n1,1,{bad},1\n2,1,0.6,1\n"
    blocks, problems = histories.parse_histories({"r": text.encode()})
    assert problems == {}
    stats = histories.history_stats(blocks[0])["r"]
    assert (stats["best_epoch"], stats["best_val_categorical_accuracy"]) == (3, 0.6)


EMPTY = {
    "empty": "",
    "header only": "epoch,loss,val_categorical_accuracy,val_loss\n",
    "all NaN": "epoch,loss,val_categorical_accuracy,val_loss\n0,nan,nan,nan\n1,nan,nan,nan\n",
    "all inf": "epoch,loss,val_categorical_accuracy,val_loss\n0,1,inf,1\n1,1,inf,1\n",
}


@pytest.mark.parametrize("case", EMPTY)
def test_a_completed_run_without_usable_epochs_is_counted_as_such(tmp_path: Path, case: str) -> None:
    sweep, ids = make_sweep(tmp_path)
    layout.write_text(sweep.history(ids[1]), EMPTY[case])  # ids[0], ids[1]: the two seeds of config 1
    summary = collect.collect(sweep).summary
    first = summary.iloc[0]
    assert (first["runs_finished"], first["runs_total"]) == (1, 2)
    assert first["outcomes"] == "1 COMPLETED, 1 COMPLETED without usable epochs"
    assert first["best_val_categorical_accuracy_mean"] == pytest.approx(0.7)
    assert np.isnan(first["best_val_categorical_accuracy_std"])  # one seed: no spread


def test_run_refuses_a_run_id_outside_the_sweep(tmp_path: Path) -> None:
    sweep, _ = make_sweep(tmp_path)
    code, out, err = hpcjobs("run", str(sweep.root), "../../evil")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "hpcjobs: error: no run '../../evil' in sweep moons: expected a run id that "
        "`hpcjobs status moons --all` lists"
    )
    assert not (tmp_path / "evil").exists() and not (sweep.root.parent / "evil").exists()
