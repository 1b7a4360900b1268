#!/usr/bin/env bash
# bench/train_throughput.py, packing.py, population.py and digits_loop.py on a GPU machine with Python 3.12 + JAX, no TensorFlow,
# Keras, submitit or internet.
#
# Here, with internet, from the repository root:   bench/gpu.sh fetch
#   downloads the wheels the GPU image lacks (Keras and the two of its needs the image lacks) into .whl/,
#   which git ignores; carry .whl to the GPU machine with the working tree.
# There, from the repository root:                 bench/gpu.sh [train_throughput.py options]
#   installs the wheels offline into /tmp/site, runs the benchmark on JAX with the train.precision the task
#   picks ("auto": bfloat16 on Ampere and newer), then again in float32, and prints both tables.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 submitit==1.5.4)
PYTHON=${PYTHON:-python3}

if [[ "${1:-}" == fetch ]]; then
    grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >>.git/info/exclude
    # The GPU image's Python is CPython 3.12 on x86-64 (optree is compiled).
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    exit
fi

"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
# The repository itself on the path: an editable install would need a build backend, offline.
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
"$PYTHON" -c 'import jax, keras; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__)'
"$PYTHON" bench/train_throughput.py "$@" | tee /tmp/train_throughput_auto.txt
"$PYTHON" bench/train_throughput.py --precision float32 "$@" | tee /tmp/train_throughput_float32.txt
# The lesson MLP on 60,000 × 784: every case at 8 runs; at 32 runs reuse in turn (the ratios' base there), K=4,
# the default and populations (one process per run, 32 × ~20 s, would not fit the device time).
"$PYTHON" bench/packing.py --runs 8 | tee /tmp/packing.txt
"$PYTHON" bench/packing.py --runs 32 --only 2,4,6,7 | tee -a /tmp/packing.txt
"$PYTHON" bench/digits_loop.py --backend jax --repeats 1 | tee /tmp/digits_loop.txt
# 32 seeds of the lesson MLP (60,000 × 784) as one population vs in turn vs one process per run (8 timed);
# not the plain Keras loop (32 fits that compile each, ~5 min of device time).
"$PYTHON" bench/population.py --config lesson --epochs 5 --seeds 8 32 --per-process 8 --no-plain | tee /tmp/population.txt
echo; echo "== precision auto =="; tail -n 5 /tmp/train_throughput_auto.txt
echo "== precision float32 =="; tail -n 5 /tmp/train_throughput_float32.txt
echo "== packing =="; grep -v '^  ' /tmp/packing.txt
echo "== digits loop =="; tail -n 3 /tmp/digits_loop.txt
echo "== population =="; tail -n 12 /tmp/population.txt
