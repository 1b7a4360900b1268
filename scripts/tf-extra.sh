#!/usr/bin/env bash
# Print the extra (tf or cpu) whose TensorFlow package this Python already has, else $1: installing the
# other one would put tensorflow and tensorflow-cpu into one folder (see pyproject.toml).
set -euo pipefail
python3 - "${1:?usage: tf-extra.sh DEFAULT}" <<'PY'
import importlib.metadata as metadata
import sys

for dist, extra in (("tensorflow", "tf"), ("tensorflow-cpu", "cpu")):
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        continue
    print(extra)
    break
else:
    print(sys.argv[1])
PY
