#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine for the tests: munged, slurmctld and slurmd,
# every file (config, state, logs, sockets, PIDs) under DIR, on ports of their own, so nothing
# in /etc is touched and a cluster the machine may already run is left alone.
# Needs root and Debian's slurm-wlm + munge (apt-get install -y slurm-wlm munge).
# Usage: start_slurm.sh DIR   then   export SLURM_CONF=DIR/slurm.conf
# Stop:  tests/slurm/stop_slurm.sh DIR
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
port=${SLURM_TEST_PORT:-$((16817 + RANDOM % 2000))}
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$dir"/{state,spool,log,munge}
chmod 700 "$dir/munge"
# a key of the cluster's own (munge refuses keys others can read)
dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" status=none
chmod 400 "$dir/munge/munge.key"
munged --force --key-file "$dir/munge/munge.key" --socket "$dir/munge/munge.socket" \
  --pid-file "$dir/munge/munged.pid" --seed-file "$dir/munge/munge.seed" \
  --log-file "$dir/log/munged.log"
cat > "$dir/slurm.conf" <<CONF
ClusterName=rsbench-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do  # up when the node takes jobs
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "start_slurm.sh: the node did not come up; see $dir/log/" >&2
exit 1
