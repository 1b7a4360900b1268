#!/usr/bin/env bash
# Start the single-node "lab" Slurm cluster. Idempotent: writes the configs,
# starts only the daemons that are missing (restarting Slurm's own daemons if
# a config changed), then waits until the node is usable.
set -euo pipefail
# shellcheck source=slurm/lib.sh
source "$(dirname "$0")/lib.sh"
need_root

CLUSTER=lab
NODE=$(hostname -s)
MAX_ARRAY_SIZE=${MAX_ARRAY_SIZE:-1001}
LAB_CPUS=${LAB_CPUS:-$(($(nproc) * 2))} # oversubscribed on purpose, see README
LAB_GPUS=${LAB_GPUS:-2}
DB_PASS=${LAB_DB_PASS:-lab-slurmdbd}
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
READY_TIMEOUT=${READY_TIMEOUT:-60}

mkdir -p "$RUN_DIR" "$LOG_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd \
  /run/munge /run/mysqld /var/log/mysql
chown slurm:slurm "$RUN_DIR" "$LOG_DIR" /var/lib/slurm/slurmctld
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld /var/log/mysql

# Fake GPUs: /dev/null-like char devices that gres.conf can hand out.
for ((i = 0; i < LAB_GPUS; i++)); do
  [[ -e /dev/fakegpu$i ]] || mknod "/dev/fakegpu$i" c 1 3
done

# put_conf FILE MODE OWNER < content: replace FILE only if content differs.
changed=()
put_conf() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $1 ]] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return
  fi
  install -m "$2" -o "$3" -g "$3" "$tmp" "$1"
  rm -f "$tmp"
  changed+=("$(basename "$1")")
}

put_conf "$CONF_DIR/slurm.conf" 644 root <<EOF
# Written by slurm/start.sh -- edits are overwritten.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
# Credential lifetime; also how long a requeued job waits (default 120 s).
AuthInfo=cred_expire=10
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# cgroups do not work in the VMs/containers this targets.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, one job would be given the whole node's memory.
DefMemPerCPU=1000
SchedulerType=sched/backfill
# Re-test pending jobs every few seconds (e.g. requeued ones) instead of 60/30 s.
SchedulerParameters=sched_interval=5,bf_interval=5
# Trust CPUs= below even if the machine has fewer cores.
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
JobRequeue=1
KillWait=5
# Clients retry a dead controller for ~MessageTimeout-1 s (default 10).
MessageTimeout=5
SlurmdTimeout=60
# Finished jobs leave squeue after ~1 min, so callers must fall back to sacct.
MinJobAge=60
MaxArraySize=$MAX_ARRAY_SIZE
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
NodeName=$NODE CPUs=$LAB_CPUS RealMemory=$MEM_MB Gres=gpu:$LAB_GPUS State=UNKNOWN
PartitionName=gpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF

put_conf "$CONF_DIR/gres.conf" 644 root <<EOF
Name=gpu File=/dev/fakegpu[0-$((LAB_GPUS - 1))]
EOF

# slurmdbd refuses a config that is not 600 and owned by SlurmUser.
put_conf "$CONF_DIR/slurmdbd.conf" 600 slurm <<EOF
AuthType=auth/munge
DbdHost=$NODE
SlurmUser=slurm
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF

munge_ok() { munge -n | unmunge; }
db_sql() {
  mysql <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}
cluster_known() { sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; }
node_ready() {
  local st
  st=$(sinfo -h -n "$NODE" -o %t) || return 1
  case $st in
    idle | mix | alloc | comp) return 0 ;;
    # Drained/down without '*' = slurmd answers; a lab node should just resume.
    drain | drng | down) scontrol update nodename="$NODE" state=resume ;;
  esac
  return 1
}

missing=()
for d in "${DAEMONS[@]}"; do running "$d" || missing+=("$d"); done
if ((${#missing[@]} == 0 && ${#changed[@]} == 0)); then
  wait_for "$READY_TIMEOUT" "node $NODE" "$LOG_DIR/slurmd.log" node_ready
  say "lab cluster already up"
  exit 0
fi
# Apply config changes by restarting: in 22.05 `scontrol reconfigure` updates
# `scontrol show config` but submissions still see the old MaxArraySize.
# Job state survives (StateSaveLocation), running jobs keep running.
if ((${#changed[@]})); then
  say "config changed (${changed[*]}): restarting Slurm daemons"
  [[ " ${changed[*]} " == *" slurmdbd.conf "* ]] && stop_daemon slurmdbd
  stop_daemon slurmd
  stop_daemon slurmctld
fi

# Daemons get /dev/null as stdio so a caller capturing our output never hangs.
if ! running munged; then
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  runuser -u munge -- munged --force </dev/null >/dev/null 2>&1
  say "started munged"
fi
wait_for 15 munged "$(logfile_of munged)" munge_ok

if ! running mariadbd; then
  [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
  setsid mariadbd --user=mysql --log-error="$(logfile_of mariadbd)" \
    --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  say "started mariadbd"
fi
wait_for 30 MariaDB "$(logfile_of mariadbd)" mysqladmin ping

if ! running slurmdbd; then
  db_sql
  slurmdbd </dev/null >/dev/null 2>&1
  say "started slurmdbd"
fi
wait_for 30 slurmdbd "$LOG_DIR/slurmdbd.log" sacctmgr -n show cluster
# The cluster must exist in the DB before slurmctld registers with it.
cluster_known || sacctmgr -i add cluster "$CLUSTER" >/dev/null

for d in slurmctld slurmd; do
  if ! running "$d"; then
    "$d" </dev/null >/dev/null 2>&1
    say "started $d"
  fi
done
wait_for 30 slurmctld "$LOG_DIR/slurmctld.log" scontrol ping
wait_for "$READY_TIMEOUT" "node $NODE to be idle" "$LOG_DIR/slurmd.log" node_ready
wait_for 15 "cluster $CLUSTER in accounting" "$LOG_DIR/slurmdbd.log" cluster_known
say "lab cluster up: partitions gpu (default), cpu; node $NODE CPUs=$LAB_CPUS gpus=$LAB_GPUS MaxArraySize=$MAX_ARRAY_SIZE"
