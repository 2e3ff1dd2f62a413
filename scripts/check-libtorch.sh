#!/usr/bin/env bash
# Builds moe-dist against the libtorch inside a PyTorch pip wheel and runs its tests on the CPU:
# the check that the engine compiles, links and computes the same numbers with libtorch 2.x (a CUDA
# build, as a GPU node would use) as with Debian's libtorch 1.13, which CI uses.
#
#   scripts/check-libtorch.sh [--torch VERSION] [--dir DIR] [--labels 'unit|mpi']
#
#   --torch   PyTorch version whose wheel to use [2.7.1: CUDA 12.6, C++11 ABI]. Wheels before 2.7
#             use the pre-C++11 ABI and are refused by configure (cmake/MoeTorchChecks.cmake).
#   --dir     where the wheels, the unpacked libtorch and the build go [~/.cache/moe-dist/libtorch-VERSION]
#   --labels  ctest labels to run [unit|mpi] (the slurm cases are left out: they run the same binary)
#
# Downloads with `python3 -m pip download --no-deps` (nothing is installed): the torch wheel
# (~0.8 GB) and the CUDA libraries it pins (~2 GB: cuDNN, cuBLAS, NCCL...), which its libraries
# link against; they are only linked and loaded, never used, as this runs without a GPU. Then
# configures with -DCMAKE_PREFIX_PATH=<libtorch>, builds, runs ctest, and, when build/moe-dist
# (the Debian-libtorch build) exists, runs the fixture mixture with both and compares the results
# (scripts/compare_results.py). Exit status: 0 when everything passed.
# Needs the usual build dependencies (scripts/install-deps.sh) and python3-pip.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
version=2.7.1
dir=""
labels="unit|mpi"
while (($#)); do
  case "$1" in
    --torch) version=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "check-libtorch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
dir="${dir:-$HOME/.cache/moe-dist/libtorch-$version}"
log() { printf '[check-libtorch] %s\n' "$*"; }
die() { printf '[check-libtorch] error: %s\n' "$*" >&2; exit 1; }

[[ "$(uname -m)" == x86_64 ]] || die "the PyTorch CUDA wheels used here are x86_64 only"
python3 -m pip --version > /dev/null 2>&1 || die "python3 -m pip is missing: apt-get install python3-pip"
pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
mkdir -p "$dir/wheels"
fetch() {  # fetch SPEC: one wheel for this Python on manylinux x86_64, into $dir/wheels
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$pyver" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir/wheels" "$1" || die "pip could not download $1"
}

log "torch $version for Python $pyver into $dir"
fetch "torch==$version"
wheel=$(find "$dir/wheels" -maxdepth 1 -name "torch-$version-*.whl" | head -n1)
[[ -n "$wheel" ]] || die "no torch-$version-*.whl in $dir/wheels after the download"
if [[ ! -f "$dir/torch/share/cmake/Torch/TorchConfig.cmake" ]]; then
  rm -rf "$dir/torch"
  (cd "$dir" && unzip -q "$wheel" 'torch/lib/*' 'torch/include/*' 'torch/share/*')
fi

# The CUDA libraries at the versions the wheel pins, flattened into one folder.
libs="$dir/cuda-libs"
mkdir -p "$libs"
mapfile -t pins < <(unzip -p "$wheel" "torch-$version.dist-info/METADATA" |
  sed -n 's/^Requires-Dist: \(nvidia-[a-z0-9-]*==[0-9.]*\).*/\1/p')
((${#pins[@]})) || log "the wheel pins no nvidia-* libraries (a CPU wheel?)"
for pin in "${pins[@]}"; do
  name=${pin%%==*}
  ver=${pin#*==}
  stem="${name//-/_}-$ver"
  if [[ ! -f "$libs/.$stem" ]]; then
    fetch "$pin"
    w=$(find "$dir/wheels" -maxdepth 1 -name "$stem-*.whl" | head -n1)
    [[ -n "$w" ]] || die "downloaded $pin but found no $stem-*.whl in $dir/wheels"
    tmp=$(mktemp -d)
    unzip -q "$w" -d "$tmp"
    find "$tmp" -name '*.so*' -type f -exec cp -f {} "$libs/" \;
    rm -rf "$tmp"
    touch "$libs/.$stem"
  fi
done
log "${#pins[@]} CUDA library wheels in $libs"

build="$dir/build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_PREFIX_PATH="$dir/torch" \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$libs" > "$dir/configure.log" 2>&1 ||
  { tail -n 30 "$dir/configure.log"; die "configure failed (log: $dir/configure.log)"; }
grep -E '^-- moe-dist:' "$dir/configure.log" || true
cmake --build "$build" -j"$(nproc)" > "$dir/build.log" 2>&1 ||
  { grep -E -A5 'FAILED|error' "$dir/build.log" | head -n 40; die "build failed (log: $dir/build.log)"; }

export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/moe-dist" --version | head -n 3
status=0
ctest --test-dir "$build" -L "$labels" -E '^slurm_' --output-on-failure || status=1

if [[ -x "$repo/build/moe-dist" ]]; then
  log "the fixture mixture with both builds"
  m="$repo/tests/fixtures/models"
  run=(--models "$m/llama" "$m/mistral" "$m/qwen2" --data "$repo/data/sample" --limit 4 --batch-size 3 --overwrite)
  if ! mpirun --oversubscribe -np 3 "$build/moe-dist" "${run[@]}" --output "$dir/mix-libtorch-$version.h5" \
    > "$dir/mix.log" 2>&1; then
    cat "$dir/mix.log"
    die "the mixture with libtorch $version failed"
  fi
  if ! LD_LIBRARY_PATH='' mpirun --oversubscribe -np 3 "$repo/build/moe-dist" "${run[@]}" \
    --output "$dir/mix-build.h5" >> "$dir/mix.log" 2>&1; then
    cat "$dir/mix.log"
    die "the mixture with $repo/build/moe-dist failed"
  fi
  /usr/bin/python3 "$repo/scripts/compare_results.py" "$dir/mix-libtorch-$version.h5" "$dir/mix-build.h5" || status=1
fi
if ((status == 0)); then
  log "OK: libtorch $version: built, tests passed, same mixture numbers"
else
  log "FAILED (see above)"
fi
exit "$status"
