"""Search benchmark on digits: the grid, random search and successive halving through hpcjobs' own code path
(submit and promote, each task run in this process as a compute node would run it), and KerasTuner's
Hyperband on the same space and epoch budget. Per method: the best configuration (by the mean over seeds of
its best validation accuracy), its test accuracy (mean over seeds), the epochs trained in all, wall time.

    python bench/search.py [--seeds 2] [--epochs 27] [--configurations 4]

Needs keras-tuner (pip install 'hpcjobs[bench]'). Everything runs one training at a time in one process, so
the wall times compare the methods, not the machine's parallelism.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from hpcjobs import backends, layout, manifest, search
from hpcjobs import sweep as sweeps
from hpcjobs.promote import promote

HIDDEN = [[32], [128], [64, 32]]
RATES = [1e-3, 3e-3]
PENALTIES = [0.0, 1e-3]
BASE = """\
name = "{name}"
[data]
source = "digits"
[train]
epochs = {epochs}
batch_size = 128
metrics = ["categorical_accuracy"]
[slurm]
trials_per_gpu = 1
runs_per_task = 1000
"""
GRID = """\
[sweep]
"model.hidden" = {hidden}
"train.learning_rate" = {rates}
"model.l2" = {penalties}
seeds = {seeds}
"""
SPACE = """\
[space]
"model.hidden" = {{ choice = {hidden} }}
"train.learning_rate" = {{ choice = {rates} }}
"model.l2" = {{ choice = {penalties} }}
[sweep]
seeds = {seeds}
"""


def sweep_text(name: str, method: str, epochs: int, seeds: list[int], configurations: int) -> str:
    values = {"hidden": HIDDEN, "rates": RATES, "penalties": PENALTIES, "seeds": seeds}
    text = BASE.format(name=name, epochs=epochs)
    if method == "grid":
        return text + GRID.format(**values)
    if method == "random":
        return (
            text
            + f'[search]\nmethod = "random"\nconfigurations = {configurations}\n'
            + SPACE.format(**values)
        )
    # Halving over the grid's own configurations: the same candidates, a fraction of the epochs.
    return text + '[search]\nmethod = "halving"\nmin_epochs = 3\neta = 3\n' + GRID.format(**values)


def run_hpcjobs(root: Path, name: str, text: str) -> dict[str, Any]:
    path = root / f"{name}.toml"
    path.write_text(text)
    fake = backends.FakeBackend(run=True)
    clock = time.perf_counter()
    outcome = sweeps.submit(path, root / "results", fake, lambda _: fake)
    sweep = outcome.sweep
    while (state := search.read(sweep)) is not None and not state.ended:
        promote(sweep, lambda _: fake)
    wall = time.perf_counter() - clock
    man = manifest.read(sweep)
    results = {r: layout.read_json(sweep.result(r)) for r in man.run_ids}
    config_of = {r.run_id: r.config_id for r in man.runs}
    finalists = state.rungs[-1].runs if state else man.run_ids  # halving: only its last rung's are final
    by_config: dict[str, list[str]] = {}
    for run_id in finalists:
        by_config.setdefault(config_of[run_id], []).append(run_id)
    scores = {c: search.score([results[r] for r in runs]) for c, runs in by_config.items()}
    best = search.rank(scores)[0]
    tests = [results[r]["test"]["categorical_accuracy"] for r in by_config[best]]
    return {
        "method": name,
        "configurations": len(set(config_of.values())),
        "best": best,
        "val": scores[best],
        "test": sum(tests) / len(tests),
        "epochs": sum(r["epochs_done"] for r in results.values()),
        "wall": wall,
    }


EPOCHS_SEEN = [0]  # KerasTuner deep-copies callbacks per trial: the count lives outside them


def run_keras_tuner(root: Path, epochs: int) -> dict[str, Any]:
    import keras
    import keras_tuner as kt

    from hpcjobs import data, models

    x, y = data.load("digits")
    parts = data.split(x, y, 0.2, 0.1, seed=0)
    y_train, y_val, y_test = (models.one_hot(v, 10) for v in (parts.y_train, parts.y_val, parts.y_test))
    labels = ["x".join(map(str, h)) for h in HIDDEN]

    def build(hp: Any) -> Any:
        hidden = [int(u) for u in hp.Choice("hidden", labels).split("x")]
        model = models.build_model(64, 10, hidden, "relu", 0.0, l2=hp.Choice("l2", PENALTIES))
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", RATES)),
            loss="categorical_crossentropy",
            metrics=["categorical_accuracy"],
        )
        return model

    class Count(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            EPOCHS_SEEN[0] += 1

    # Without a TensorBoard callback this hook only imports tensorboard, which tensorflow-cpu does not bring.
    kt.Tuner._configure_tensorboard_dir = lambda self, callbacks, trial, execution=0: None
    tuner = kt.Hyperband(
        build,
        objective=kt.Objective("val_categorical_accuracy", "max"),
        max_epochs=epochs,
        factor=3,
        hyperband_iterations=1,
        seed=0,
        directory=str(root / "kt"),
        project_name="digits",
    )
    clock = time.perf_counter()
    tuner.search(
        parts.x_train,
        y_train,
        validation_data=(parts.x_val, y_val),
        batch_size=128,
        callbacks=[Count()],
        verbose=0,
    )
    wall = time.perf_counter() - clock
    best_hp = tuner.get_best_hyperparameters(1)[0]
    model = tuner.get_best_models(1)[0]
    test = model.evaluate(parts.x_test, y_test, verbose=0, return_dict=True)["categorical_accuracy"]
    trials = tuner.oracle.get_best_trials(1)
    return {
        "method": "keras-tuner hyperband",
        "configurations": len(tuner.oracle.trials),
        "best": f"hidden-{best_hp['hidden']}__learning_rate-{best_hp['learning_rate']}__l2-{best_hp['l2']}",
        "val": trials[0].score,
        "test": float(test),
        "epochs": EPOCHS_SEEN[0],
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--configurations", type=int, default=4, help="random search draws")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for method in ("grid", "random", "halving"):
            text = sweep_text(method, method, args.epochs, seeds, args.configurations)
            rows.append(run_hpcjobs(root, method, text))
            print(rows[-1], flush=True)
        rows.append(run_keras_tuner(root, args.epochs))
        print(rows[-1], flush=True)
    grid = rows[0]
    print(f"\n{platform.node()}, {os.cpu_count()} CPUs; seeds {seeds}, up to {args.epochs} epochs, digits\n")
    print(
        "| method | configurations | best configuration | its val acc | its test acc "
        "| Δ test vs grid (points) | epochs trained | epochs / grid's | wall s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['method']} | {r['configurations']} | {r['best']} | {r['val']:.4f} | {r['test']:.4f} "
            f"| {100 * (r['test'] - grid['test']):+.2f} | {r['epochs']:,} "
            f"| {r['epochs'] / grid['epochs']:.2f} | {r['wall']:.0f} |"
        )


if __name__ == "__main__":
    main()
