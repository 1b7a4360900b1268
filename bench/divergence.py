"""Training losses per epoch of the lesson's MLP at learning rates that diverge and at ones that train, on
the Keras backend in KERAS_BACKEND: the figures behind plan.DIVERGED_LOSS_FACTOR (the DIVERGED bound).

Not a timing benchmark: it prints losses, which do not depend on the machine's load.

    KERAS_BACKEND=jax python bench/divergence.py
    KERAS_BACKEND=tensorflow python bench/divergence.py
"""

from __future__ import annotations

import os

import keras
import numpy as np
from sklearn.datasets import load_digits, make_moons

CASES = [  # data, feature scale, hidden layers, learning rates
    ("moons", "standard", [64, 32], (1e10, 1.0, 0.1, 0.03)),
    ("digits", "standard", [64, 32], (1e10, 1.0, 0.1, 0.03)),
    # raw pixels 0..16, as data.scale = "none" leaves them: a wider net starts far above the bound
    ("digits", "none", [256, 128], (1e-3, 1e-2)),
]


def losses(x: np.ndarray, y: np.ndarray, hidden: list[int], lr: float, epochs: int = 8) -> list[float]:
    keras.utils.set_random_seed(0)
    n = int(y.max()) + 1
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            *(keras.layers.Dense(units, activation="relu") for units in hidden),
            keras.layers.Dense(n, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy")
    fit = model.fit(x, keras.utils.to_categorical(y, n), epochs=epochs, batch_size=128, verbose=0)
    return [round(float(v), 3) for v in fit.history["loss"]]


def main() -> None:
    for name, scale, hidden, rates in CASES:
        x, y = make_moons(512, noise=0.2, random_state=0) if name == "moons" else load_digits(return_X_y=True)
        x = x.astype(np.float32)
        if scale == "standard":
            x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
        bound = 2.0 * np.log(int(y.max()) + 1)
        for lr in rates:
            backend = os.environ.get("KERAS_BACKEND")
            print(
                f"{backend} {name} {scale} {hidden} lr={lr:g} bound={bound:.2f}: {losses(x, y, hidden, lr)}"
            )


if __name__ == "__main__":
    main()
