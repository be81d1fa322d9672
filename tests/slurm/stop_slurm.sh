#!/usr/bin/env bash
# Stop the test cluster that start_slurm.sh started in DIR (its own daemons only, by PID file).
set -uo pipefail
dir=$1
for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
  [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
exit 0
