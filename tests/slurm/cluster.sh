#!/usr/bin/env bash
# Set-up and clean-up of the ctest fixture for the `slurm` tests: a local Slurm cluster
# (scripts/slurm-local.sh) in its own folder and ports, so a developer's own test cluster is left alone.
#   tests/slurm/cluster.sh start   installs Slurm and munge when missing (scripts/install-deps.sh
#                                  --with-slurm), then starts the daemons. Without root it does
#                                  nothing (and the cases report themselves skipped)
#   tests/slurm/cluster.sh stop    cancels the jobs and stops the daemons
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export MOE_SLURM_DIR="${MOE_SLURM_DIR:-/tmp/moe-slurm-ctest}"
export MOE_SLURM_PORT="${MOE_SLURM_PORT:-16917}"
export MOE_SLURM_NODES="${MOE_SLURM_NODES:-2}"

case "${1:-}" in
  start)
    if [[ $(id -u) -ne 0 ]]; then
      echo "the local Slurm cluster needs root (slurmd starts job steps as the submitting user): not started"
      exit 0
    fi
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
      echo "Slurm or munge missing: scripts/install-deps.sh --with-slurm"
      timeout 900 bash "$root/scripts/install-deps.sh" --with-slurm
    fi
    timeout 180 bash "$root/scripts/slurm-local.sh" start
    ;;
  stop)
    [[ $(id -u) -eq 0 ]] || exit 0
    timeout 180 bash "$root/scripts/slurm-local.sh" stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
