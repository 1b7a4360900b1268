"""hpcjobs against scikit-learn's MLPClassifier on digits, matched: adam, learning rate 1e-3, batch 200,
200 epochs, the same train/validation/test split per seed (hpcjobs' splits.split), test accuracy at the end.

    [KERAS_BACKEND=jax] python bench/mlp_match.py [--seeds 3] [--epochs 200]

MLPClassifier's defaults: alpha = 1e-4 and no scaling of its input. Its penalty per batch is
0.5 × alpha × sum(W²) / batch size, on every layer's weights (sklearn/neural_network/
_multilayer_perceptron.py: _backprop, _compute_loss_grad). Keras' L2(l2) adds l2 × sum(W²) to each batch's
loss, so alpha is model.l2 = alpha / (2 × batch size) = 2.5e-7 here (hpcjobs penalizes the hidden kernels
only, not the output layer's). hpcjobs trains through its own submit, each task in this process as a
compute node would run it, with data.scale none and model.l2 0 (neither), data.scale standard (its default),
and standard with model.l2 2.5e-7 (alpha matched) or 1e-4 (alpha read literally). MLPClassifier runs on the
same split unscaled (its default use) and standardized with the training split's mean/std. It also stops
before max_iter once its training loss improves by less than tol = 1e-4 for 10 epochs (n_iter_no_change):
its mean epochs are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from hpcjobs import backends, data, layout, manifest, splits
from hpcjobs import sweep as sweeps

HIDDEN = {"Grp10": [20, 50, 70, 100, 70, 50, 20], "64-32": [64, 32], "128": [128]}
ALPHA, BATCH = 1e-4, 200
VARIANTS = [("none", 0.0), ("standard", 0.0), ("standard", ALPHA / (2 * BATCH)), ("standard", ALPHA)]
SWEEP = """\
name = "mlp-match-{index}"
backend = "{backend}"
[data]
scale = "{scale}"
source = "digits"
test_fraction = 0.2
validation_fraction = 0.1
[model]
l2 = {l2}
[train]
epochs = {epochs}
batch_size = {batch}
learning_rate = 1e-3
optimizer = "adam"
metrics = ["categorical_accuracy"]
[slurm]
trials_per_gpu = 1
runs_per_task = 1000
[sweep]
"model.hidden" = {hidden}
seeds = {seeds}
"""


def run_hpcjobs(
    root: Path, epochs: int, seeds: list[int], backend: str
) -> dict[tuple[str, str, float], list[float]]:
    """Test accuracy per seed for each (architecture, data.scale, model.l2): a sweep per variant."""
    fake = backends.FakeBackend(run=True)
    name_of = {tuple(h): name for name, h in HIDDEN.items()}
    out: dict[tuple[str, str, float], list[float]] = {}
    for index, (scale, l2) in enumerate(VARIANTS):
        path = root / f"mlp-match-{index}.toml"
        text = SWEEP.format(
            index=index,
            backend=backend,
            scale=scale,
            l2=l2,
            epochs=epochs,
            batch=BATCH,
            hidden=list(HIDDEN.values()),
            seeds=seeds,
        )
        path.write_text(text)
        sweep = sweeps.submit(path, root / "results", fake, lambda _: fake).sweep
        for run in manifest.read(sweep).runs:
            result = layout.read_json(sweep.result(run.run_id))
            key = (name_of[tuple(run.settings.model.hidden)], scale, l2)
            out.setdefault(key, []).append(result["test"]["categorical_accuracy"])
    return out


def run_sklearn(epochs: int, seeds: list[int]) -> dict[tuple[str, str], list[tuple[float, int]]]:
    """(test accuracy, epochs run) per seed for each (architecture, scale)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = data.load("digits")
    out: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for seed in seeds:
        for scale in ("none", "standard"):
            parts = splits.split(x, y, 0.2, 0.1, seed=seed, scale=scale)
            for name, hidden in HIDDEN.items():
                model = MLPClassifier(
                    tuple(hidden),
                    solver="adam",
                    alpha=ALPHA,
                    batch_size=BATCH,
                    learning_rate_init=1e-3,
                    max_iter=epochs,
                    random_state=seed,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(parts.x_train, parts.y_train)
                accuracy = float(model.score(parts.x_test, parts.y_test))
                out.setdefault((name, scale), []).append((accuracy, model.n_iter_))
    return out


def mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    clock = time.perf_counter()
    learn = run_sklearn(args.epochs, seeds)
    sk_wall = time.perf_counter() - clock
    with tempfile.TemporaryDirectory() as tmp:
        clock = time.perf_counter()
        ours = run_hpcjobs(Path(tmp), args.epochs, seeds, os.environ["KERAS_BACKEND"])
        our_wall = time.perf_counter() - clock
    print(
        f"\nseeds {seeds}, test accuracy mean ± std over seeds (per seed in brackets); "
        "digits, 360 test images\n"
    )
    print("| who | data | penalty | " + " | ".join(HIDDEN) + " |")
    print("|---|---|---|" + "---:|" * len(HIDDEN))
    for scale in ("none", "standard"):
        cells = []
        for name in HIDDEN:
            runs = learn[(name, scale)]
            accuracy = [a for a, _ in runs]
            cells.append(
                f"{mean_sd(accuracy)} ({', '.join(f'{a:.3f}' for a in accuracy)}; "
                f"{statistics.fmean(n for _, n in runs):.0f} epochs)"
            )
        print(f"| MLPClassifier | {scale} | alpha {ALPHA:g} | " + " | ".join(cells) + " |")
    for scale, l2 in VARIANTS:
        cells = [
            f"{mean_sd(ours[(n, scale, l2)])} ({', '.join(f'{a:.3f}' for a in ours[(n, scale, l2)])})"
            for n in HIDDEN
        ]
        print(f"| hpcjobs | {scale} | model.l2 {l2:g} | " + " | ".join(cells) + " |")
    print(
        f"\nhpcjobs on {os.environ['KERAS_BACKEND']}; wall: MLPClassifier {sk_wall:.0f} s, "
        f"hpcjobs {our_wall:.0f} s ({len(ours) * len(seeds)} runs)"
    )


if __name__ == "__main__":
    main()
