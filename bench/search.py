"""Search benchmark on digits over a continuous space: random search and successive halving through hpcjobs'
own code path (submit and promote, each task run in this process as a compute node would run it), and
KerasTuner's Hyperband on the same space, the same most epochs per configuration (27) and the same factor
(eta 3). Per method and search seed: the best configuration (by its best validation accuracy), its test
accuracy, the epochs trained in all, wall time.

    python bench/search.py [--seeds 2] [--epochs 27] [--random 9] [--halving 27 81]

The space: depth 1-3 with widths 16-256 (log-uniform), learning rate log-uniform 1e-4..1e-2, model.l2
log-uniform 1e-6..1e-2. A grid does not apply to it (see the discrete-space table in bench/RESULTS.md).
Search seed s: hpcjobs draws with [search] seed = s and trains with [sweep] seeds = [s] (which also splits
the data); KerasTuner's oracle is seeded with s, Keras with keras.utils.set_random_seed(s), and it gets
the same split of seed s. Needs keras-tuner (pip install 'hpcjobs[bench]'). Everything runs one training at
a time in one process, so the wall times compare the methods, not the machine's parallelism.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from hpcjobs import backends, layout, manifest, search
from hpcjobs import sweep as sweeps
from hpcjobs.promote import promote

LAYERS, UNITS, RATES, PENALTIES = (1, 3), (16, 256), (1e-4, 1e-2), (1e-6, 1e-2)
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
[space]
"model.hidden" = {{ layers = [{layers[0]}, {layers[1]}], units = [{units[0]}, {units[1]}] }}
"train.learning_rate" = {{ log_uniform = [{rates[0]}, {rates[1]}] }}
"model.l2" = {{ log_uniform = [{penalties[0]}, {penalties[1]}] }}
[sweep]
seeds = [{seed}]
[search]
seed = {seed}
configurations = {configurations}
"""


def sweep_text(name: str, method: str, epochs: int, seed: int, configurations: int) -> str:
    text = BASE.format(
        name=name,
        epochs=epochs,
        seed=seed,
        configurations=configurations,
        layers=LAYERS,
        units=UNITS,
        rates=RATES,
        penalties=PENALTIES,
    )
    if method == "random":
        return text + 'method = "random"\n'
    # Hyperband's most aggressive bracket for 27 epochs and factor 3 when configurations = 27: 1, 3, 9, 27.
    return text + 'method = "halving"\nmin_epochs = 1\neta = 3\n'


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


def run_keras_tuner(root: Path, epochs: int, seed: int) -> dict[str, Any]:
    import keras
    import keras_tuner as kt

    from hpcjobs import data, models, splits

    x, y = data.load("digits")
    parts = splits.split(x, y, 0.2, 0.1, seed=seed)
    y_train, y_val, y_test = (models.one_hot(v, 10) for v in (parts.y_train, parts.y_val, parts.y_test))

    def build(hp: Any) -> Any:
        depth = hp.Int("layers", *LAYERS)
        hidden = [hp.Int(f"units_{i}", *UNITS, sampling="log") for i in range(depth)]
        model = models.build_model(64, 10, hidden, "relu", 0.0, l2=hp.Float("l2", *PENALTIES, sampling="log"))
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("learning_rate", *RATES, sampling="log")),
            loss="categorical_crossentropy",
            metrics=["categorical_accuracy"],
        )
        return model

    class Count(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            EPOCHS_SEEN[0] += 1

    # Without a TensorBoard callback this hook only imports tensorboard, which tensorflow-cpu does not bring.
    kt.Tuner._configure_tensorboard_dir = lambda self, callbacks, trial, execution=0: None
    keras.utils.set_random_seed(seed)
    tuner = kt.Hyperband(
        build,
        objective=kt.Objective("val_categorical_accuracy", "max"),
        max_epochs=epochs,
        factor=3,
        hyperband_iterations=1,
        seed=seed,
        directory=str(root / "kt"),
        project_name=f"digits-{seed}",
    )
    EPOCHS_SEEN[0] = 0
    clock = time.perf_counter()
    # A trial promoted to the next round of a bracket loads its predecessor's best-epoch checkpoint and
    # fits from tuner/initial_epoch to tuner/epochs: Count sees only the epochs it trains.
    tuner.search(
        parts.x_train,
        y_train,
        validation_data=(parts.x_val, y_val),
        batch_size=128,
        callbacks=[Count()],
        verbose=0,
    )
    wall = time.perf_counter() - clock
    best_trial = tuner.oracle.get_best_trials(1)[0]
    hp = best_trial.hyperparameters.values
    hidden = "x".join(str(hp[f"units_{i}"]) for i in range(hp["layers"]))
    model = tuner.get_best_models(1)[0]  # the weights of its best epoch
    test = model.evaluate(parts.x_test, y_test, verbose=0, return_dict=True)["categorical_accuracy"]
    trials = tuner.oracle.trials.values()
    drawn = {
        tuple(sorted((k, v) for k, v in t.hyperparameters.values.items() if not k.startswith("tuner/")))
        for t in trials
    }
    return {
        "method": "keras-tuner hyperband",
        "configurations": len(drawn),
        "trials": len(trials),
        "best": f"hidden-{hidden}__learning_rate-{hp['learning_rate']:.3g}__l2-{hp['l2']:.3g}"
        f" (epochs {hp['tuner/epochs']})",
        "val": best_trial.score,
        "test": float(test),
        "epochs": EPOCHS_SEEN[0],
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="search seeds: each method runs once per seed")
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--random", type=int, default=9, help="random search draws")
    parser.add_argument("--halving", type=int, nargs="*", default=[27, 81], help="halving configurations")
    parser.add_argument("--no-keras-tuner", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seed in range(args.seeds):
            methods = [("random", args.random)] + [("halving", n) for n in args.halving]
            for method, n in methods:
                name = f"{method}-{n}-s{seed}"
                text = sweep_text(name, method, args.epochs, seed, n)
                rows.append({"seed": seed, **run_hpcjobs(root, f"{method} {n}", text)})
                rows[-1]["method"] = f"{method} ({n})"
                print(rows[-1], flush=True)
            if not args.no_keras_tuner:
                rows.append({"seed": seed, **run_keras_tuner(root, args.epochs, seed)})
                print(rows[-1], flush=True)
    print(
        f"\n{platform.node()}, {os.cpu_count()} CPUs; up to {args.epochs} epochs per configuration, digits\n"
    )
    print(
        "| method | seed | configurations | best configuration | its val acc | its test acc "
        "| epochs trained | wall s |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['method']} | {r['seed']} | {r['configurations']} | {r['best']} | {r['val']:.4f} "
            f"| {r['test']:.4f} | {r['epochs']:,} | {r['wall']:.0f} |"
        )
    print("\nmean over seeds:\n\n| method | its test acc | epochs trained | wall s |")
    print("|---|---:|---:|---:|")
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        test = statistics.fmean(r["test"] for r in mine)
        epochs = statistics.fmean(r["epochs"] for r in mine)
        wall = statistics.fmean(r["wall"] for r in mine)
        print(f"| {method} | {test:.4f} | {epochs:,.0f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
