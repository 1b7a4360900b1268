#!/usr/bin/env bash
# Stop only slurmctld (tests use this to simulate a dead controller).
# `slurm/start.sh` brings it back; other daemons keep running.
set -euo pipefail
# shellcheck source=slurm/lib.sh
source "$(dirname "$0")/lib.sh"
need_root

if ! running slurmctld; then
  say "slurmctld already stopped"
  exit 0
fi
stop_daemon slurmctld
