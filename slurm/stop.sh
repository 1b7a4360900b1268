#!/usr/bin/env bash
# Stop every lab-cluster daemon (idempotent). Jobs are cancelled first.
set -euo pipefail
# shellcheck source=slurm/lib.sh
source "$(dirname "$0")/lib.sh"
need_root

# Cancel jobs while Slurm can still clean up their processes itself.
if running slurmctld && running slurmd && scontrol ping >/dev/null 2>&1; then
  mapfile -t jobs < <(squeue -h -o %A)
  if ((${#jobs[@]})); then
    say "cancelling ${#jobs[@]} job(s)"
    scancel "${jobs[@]}" || true
    for ((i = 0; i < 40; i++)); do
      [[ -z $(squeue -h -o %A) ]] && break
      sleep 0.5
    done
  fi
fi

# Reverse start order, so nothing logs errors about a peer that went first.
for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
  stop_daemon "${DAEMONS[i]}"
done

# Fallback when jobs could not be cancelled: step daemons ignore SIGTERM, and
# job processes are found by the SLURM_JOB_ID in their environment.
stop_daemon slurmstepd 2
mapfile -t orphans < <(grep -lsz '^SLURM_JOB_ID=' /proc/[0-9]*/environ | cut -d/ -f3 \
  | grep -vx -e "$$" -e "$PPID" || true)
if ((${#orphans[@]})); then
  say "killing leftover job processes: ${orphans[*]}"
  kill -KILL "${orphans[@]}" 2>/dev/null || true
  sleep 1
fi
stop_daemon mysqld_safe # only there if someone started MariaDB that way

# Poll a little: killed processes stay visible as zombies until reaped.
for ((i = 0; i < 10; i++)); do
  left=$(pgrep -a 'slurm|munge|mysql|mariadb' 2>/dev/null) || { say "lab cluster stopped"; exit 0; }
  sleep 0.5
done
die "still running after stop:"$'\n'"$left"
