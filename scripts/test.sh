#!/usr/bin/env bash
# Install the test dependencies, start the lab Slurm cluster where we are root, and run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slurm").
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e ".[$(bash scripts/tf-extra.sh cpu),dev]"
if [[ $(id -u) -eq 0 ]]; then
  bash scripts/apt-install.sh tmux # the terminal tests (tests/test_terminal.py)
  bash slurm/install.sh
  bash slurm/start.sh
else
  echo "test.sh: not root, so the lab Slurm cluster is not started; tests marked 'slurm' will be skipped" >&2
fi
python3 -m pytest "$@"
