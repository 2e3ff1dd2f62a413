#!/usr/bin/env bash
# Gets the official MMLU release (hendrycks/test, MIT License) into a cache folder and prints its path.
#
#   scripts/get-mmlu.sh                   # download data.tar, check its sha256, unpack
#   scripts/get-mmlu.sh --from DIR        # no internet: link a local folder with the official layout
#   scripts/get-mmlu.sh --from DIR --copy #   ... or copy it
#   scripts/get-mmlu.sh --dest DIR        # somewhere else than ${MOE_MMLU_CACHE:-$HOME/.cache/moe-dist/mmlu}/data
#
# The folder it leaves has the layout moe-dist reads (--data DIR): {dev,val,test}/<subject>_<split>.csv
# for the 57 subjects (the archive's auxiliary_train/ comes along when downloaded). Every run checks
# that layout (57 subjects in each split, each CSV non-empty) and names what is missing.
#
# data.tar: https://people.eecs.berkeley.edu/~hendrycks/data.tar, tried first, then the same file at
# a pinned revision of the Hugging Face dataset cais/mmlu. Its sha256 (bec563ba...989b) is the one
# several independent projects pin for this URL, and the Git LFS digest of data.tar in cais/mmlu; a
# download with another hash is refused. MOE_MMLU_URL (one URL, e.g. a local mirror; file:// works)
# replaces both; MOE_MMLU_SHA256 replaces the expected hash (for a mirror of another release).
#
# Idempotent: a destination that already has the full layout is left alone (no network). A
# destination that exists but is incomplete is refused (remove it first), except a symbolic link,
# which --from replaces. Exits non-zero with a message when the download or a check fails.
set -euo pipefail

official_sha=bec563ba4bac1d6aaf04141cd7d1605d7a5ca833e38f994051e818489592989b
urls=(https://people.eecs.berkeley.edu/~hendrycks/data.tar
      https://huggingface.co/datasets/cais/mmlu/resolve/c30699e8356da336a370243923dbaf21066bb9fe/data.tar)
if [[ -n ${MOE_MMLU_URL:-} ]]; then urls=("$MOE_MMLU_URL"); fi
expected_sha=${MOE_MMLU_SHA256:-$official_sha}

subjects=(abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology
  college_chemistry college_computer_science college_mathematics college_medicine college_physics
  computer_security conceptual_physics econometrics electrical_engineering elementary_mathematics
  formal_logic global_facts high_school_biology high_school_chemistry high_school_computer_science
  high_school_european_history high_school_geography high_school_government_and_politics
  high_school_macroeconomics high_school_mathematics high_school_microeconomics high_school_physics
  high_school_psychology high_school_statistics high_school_us_history high_school_world_history
  human_aging human_sexuality international_law jurisprudence logical_fallacies machine_learning
  management marketing medical_genetics miscellaneous moral_disputes moral_scenarios nutrition
  philosophy prehistory professional_accounting professional_law professional_medicine
  professional_psychology public_relations security_studies sociology us_foreign_policy virology
  world_religions)
splits=(dev val test)

say() { echo "get-mmlu: $*" >&2; }
die() { say "error: $*"; exit 1; }
usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

dest=${MOE_MMLU_CACHE:-$HOME/.cache/moe-dist/mmlu}/data
from=""
copy=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --dest) [[ $# -ge 2 ]] || die "--dest needs a folder"; dest=$2; shift 2 ;;
    --from) [[ $# -ge 2 ]] || die "--from needs a folder"; from=$2; shift 2 ;;
    --copy) copy=1; shift ;;
    -h|--help) usage 0 ;;
    *) say "unknown argument '$1'"; usage 2 ;;
  esac
done
[[ $copy -eq 0 || -n $from ]] || die "--copy goes with --from DIR"
[[ $(printf '%s\n' "${subjects[@]}" | sort -u | wc -l) -eq 57 ]] || die "internal: the subject list is not 57 names"

# layout_problems DIR: prints one line per problem (nothing when DIR has the full layout).
layout_problems() {
  local dir=$1 split subject file missing empty
  for split in "${splits[@]}"; do
    if [[ ! -d $dir/$split ]]; then
      echo "split '$split': folder $dir/$split/ is missing (57 subjects expected)"
      continue
    fi
    missing=() empty=()
    for subject in "${subjects[@]}"; do
      file=$dir/$split/${subject}_$split.csv
      if [[ ! -e $file ]]; then missing+=("$subject")
      elif [[ ! -s $file ]]; then empty+=("$subject"); fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
      echo "split '$split': ${#missing[@]} of 57 subjects missing: ${missing[*]} (expected $dir/$split/<subject>_$split.csv)"
    fi
    if [[ ${#empty[@]} -gt 0 ]]; then
      echo "split '$split': empty CSV for ${#empty[@]} subjects: ${empty[*]}"
    fi
  done
}

# check_layout DIR WHAT: dies naming every problem.
check_layout() {
  local problems
  problems=$(layout_problems "$1")
  if [[ -n $problems ]]; then
    say "error: $2 $1 does not have the official MMLU layout ({dev,val,test}/<subject>_<split>.csv, 57 subjects):"
    while IFS= read -r line; do say "  $line"; done <<<"$problems"
    exit 1
  fi
}

done_msg() {
  say "MMLU ready at $dest (57 subjects in dev, val and test)"
  echo "$dest"
}

# A folder given as the release's root (holding data/) is taken as its data/ folder, as moe-dist does.
if [[ -n $from ]]; then
  [[ -d $from ]] || die "--from $from is not a folder"
  if [[ ! -d $from/test && -d $from/data/test ]]; then from=$from/data; fi
  from=$(cd "$from" && pwd -P)
  check_layout "$from" "--from"
fi

if [[ -e $dest || -L $dest ]]; then
  if [[ -z $(layout_problems "$dest") ]]; then
    if [[ -z $from || ! -L $dest || $(readlink "$dest") == "$from" ]]; then
      say "already there: $dest"
      done_msg
      exit 0
    fi
  fi
  if [[ -L $dest && -n $from ]]; then
    rm -f "$dest"
  else
    check_layout "$dest" "the destination (already there; remove it to start again)"
    die "internal: $dest"
  fi
fi

parent=$(dirname "$dest")
mkdir -p "$parent" || die "cannot create $parent"

if [[ -n $from ]]; then
  if [[ $copy -eq 1 ]]; then
    tmp=$(mktemp -d "$parent/.copy.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    cp -a "$from/." "$tmp/" || die "cannot copy $from to $tmp"
    mv "$tmp" "$dest"
    trap - EXIT
    say "copied $from"
  else
    ln -s "$from" "$dest" || die "cannot link $dest -> $from"
    say "linked $dest -> $from"
  fi
  check_layout "$dest" "the destination"
  done_msg
  exit 0
fi

fetch() {  # fetch URL FILE
  if command -v curl >/dev/null 2>&1; then
    curl -fL --connect-timeout 20 --retry 2 --retry-connrefused --retry-delay 1 -sS -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q --timeout=20 --tries=3 -O "$2" "$1"
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"
  fi
}

work=$(mktemp -d "$parent/.download.XXXXXX")  # beside the destination: the final mv is a rename
trap 'rm -rf "$work"' EXIT
got=""
for url in "${urls[@]}"; do
  say "downloading $url"
  if fetch "$url" "$work/data.tar" 2>"$work/fetch.log"; then got=$url; break; fi
  sed 's/^/  /' "$work/fetch.log" >&2
  say "could not download $url"
done
if [[ -z $got ]]; then
  die "MMLU could not be downloaded (no internet, or a proxy?). Where there is none, get the official data.tar
  (sha256 $official_sha) onto this machine, unpack it, and run: $0 --from <folder>/data"
fi
sha=$(sha256sum "$work/data.tar" | cut -d' ' -f1)
[[ $sha == "$expected_sha" ]] || die "sha256 mismatch for $got: got $sha, expected $expected_sha (a different or damaged file; nothing was installed)"
say "sha256 ok ($sha)"
mkdir "$work/x"
tar -xf "$work/data.tar" -C "$work/x" || die "cannot unpack the archive from $got"
[[ -d $work/x/data ]] || die "the archive from $got has no data/ folder"
check_layout "$work/x/data" "the archive's"
mv "$work/x/data" "$dest"
done_msg
