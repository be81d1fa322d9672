#!/usr/bin/env bash
# Stop the test cluster that start_slurm.sh started in DIR: cancel its jobs and wait (up to
# 20 s) for them to end, then stop its own daemons, by PID file.
set -uo pipefail
dir=$1
export SLURM_CONF="$dir/slurm.conf"
if [ -f "$SLURM_CONF" ]; then
  scancel --full --user="$(id -un)" 2>/dev/null
  for _ in $(seq 1 40); do
    [ -z "$(squeue -h 2>/dev/null)" ] && break
    sleep 0.5
  done
fi
for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
  [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
exit 0
