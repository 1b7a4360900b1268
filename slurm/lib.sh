# shellcheck shell=bash
# Shared helpers for the lab cluster scripts (sourced, not run).
# shellcheck disable=SC2034  # variables are used by the sourcing scripts

LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
CONF_DIR=/etc/slurm
# Order matters: start goes left to right, stop right to left.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

die() { echo "lab-slurm: $*" >&2; exit 1; }
say() { echo "lab-slurm: $*"; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo $0)"
}

# Exact process-name match, so our own scripts never count.
running() { pgrep -x "$1" >/dev/null; }

logfile_of() {
  case $1 in
    munged) echo /var/log/munge/munged.log ;;
    mariadbd) echo /var/log/mysql/error.log ;;
    *) echo "$LOG_DIR/$1.log" ;;
  esac
}

# wait_for SECONDS WHAT LOGFILE CMD...: poll CMD until it succeeds, else die
# showing the log tail, so a failed start explains itself.
wait_for() {
  local secs=$1 what=$2 log=$3
  shift 3
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then
      echo "lab-slurm: timed out after ${secs}s waiting for $what; tail of $log:" >&2
      tail -n 20 "$log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 1
  done
}

# stop_daemon NAME [GRACE_S]: SIGTERM, grace period, then SIGKILL leftovers.
# Killed processes can linger briefly as zombies until init reaps them.
stop_daemon() {
  local name=$1 grace=${2:-15} i
  running "$name" || return 0
  pkill -TERM -x "$name" || true
  for ((i = 0; i < grace * 2; i++)); do
    running "$name" || { say "stopped $name"; return 0; }
    sleep 0.5
  done
  say "$name ignored SIGTERM for ${grace}s; sending SIGKILL"
  pkill -KILL -x "$name" || true
  for ((i = 0; i < 20; i++)); do running "$name" || return 0; sleep 0.5; done
}
