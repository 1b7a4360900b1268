#!/usr/bin/env bash
# Install hpcjobs with TensorFlow and run the moons demo sweep on this machine (no cluster needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e ".[$(bash scripts/tf-extra.sh tf)]"
hpcjobs submit examples/moons.toml --executor local --wait
hpcjobs status moons
hpcjobs collect moons
