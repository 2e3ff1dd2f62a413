#!/usr/bin/env bash
# The demo from a fresh clone on Debian 12: installs what is missing, builds moe-dist, runs the
# bundled 3-expert mixture under `mpirun -np 3`, prints the accuracy report and writes out/demo.h5.
#   scripts/demo.sh [extra moe-dist options, e.g. --mode geometric]
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target moe-dist

mkdir -p out
mpirun --oversubscribe -np 3 build/moe-dist --config configs/demo.yaml --overwrite "$@"
echo
echo "results: out/demo.h5 (schema: docs/results-format.md); again: build/moe-dist report out/demo.h5"
