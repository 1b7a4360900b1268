"""The lesson's own way, the baseline of bench/digits_loop.py and bench/population.py: the runs of a sweep
file as a plain Keras for-loop in one Python process, as a student writes it.

    KERAS_BACKEND=tensorflow python bench/plain_loop.py SWEEP.toml   (or a .json of the same document)

hpcjobs only reads the file and lists its runs (no Keras there). Then, for each run: the source split 70/10/20
by scikit-learn and standardized, keras.utils.set_random_seed(seed), a Sequential of Dense layers,
compile(Adam(lr), categorical cross-entropy, the sweep's metrics), fit(validation_data=..., verbose=0), and
evaluate on the test part. Sources: "digits" (scikit-learn) or an .npz file with x and y.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tomllib

from hpcjobs.spec import expand, parse_spec


def main() -> None:
    path = Path(sys.argv[1])
    text = path.read_text()
    runs = expand(parse_spec(tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)))

    import keras
    import numpy as np
    from sklearn.model_selection import train_test_split

    source = runs[0].settings.data.source
    if source == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
    else:
        with np.load(source) as saved:
            x, y = saved["x"], saved["y"]
    n_classes = int(y.max()) + 1
    for run in runs:
        model_cfg, train = run.settings.model, run.settings.train
        keras.utils.set_random_seed(run.seed)
        x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=run.seed)
        x_tr, x_val, y_tr, y_val = train_test_split(x_rest, y_rest, test_size=0.125, random_state=run.seed)
        mean, std = x_tr.mean(0), x_tr.std(0) + 1e-7
        x_tr, x_val, x_test = ((a - mean) / std for a in (x_tr, x_val, x_test))
        model = keras.Sequential(
            [
                keras.Input((x.shape[1],)),
                *(keras.layers.Dense(units, activation=model_cfg.activation) for units in model_cfg.hidden),
                keras.layers.Dense(n_classes, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(train.learning_rate),
            loss="categorical_crossentropy",
            metrics=list(train.metrics),
        )
        model.fit(
            x_tr,
            keras.utils.to_categorical(y_tr, n_classes),
            epochs=train.epochs,
            batch_size=train.batch_size,
            validation_data=(x_val, keras.utils.to_categorical(y_val, n_classes)),
            verbose=0,
        )
        model.evaluate(x_test, keras.utils.to_categorical(y_test, n_classes), verbose=0)


if __name__ == "__main__":
    main()
