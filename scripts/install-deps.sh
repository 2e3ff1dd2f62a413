#!/usr/bin/env bash
# Installs every Debian 12 package that moe-dist's build, tests and demo need.
# Idempotent: when everything is present it only checks (a second or two) and exits.
# Usage: scripts/install-deps.sh [--with-slurm]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools python3-h5py python3-numpy python3-matplotlib
  libyaml-cpp-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libpcre2-dev
  libtorch-dev libopenblas0-pthread
  clang libclang-rt-14-dev
  time python3-pip
)
if [[ "${1:-}" == "--with-slurm" ]]; then
  # A local test cluster (scripts/slurm-local.sh): slurmctld + slurmd + munge; srun --mpi=pmix
  # loads libpmix2 (also pulled in by Open MPI, named here because Slurm's plugin needs it).
  packages+=(slurm-wlm slurm-client munge libpmix2)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
