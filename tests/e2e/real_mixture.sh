#!/usr/bin/env bash
# The main job on real models (label slow): SmolLM2-135M-Instruct + Gemma-3-270M (GGUF,
# scripts/get-models.sh) under mpirun -np 2 with configs/smollm2-gemma3.yaml on a small subset of
# real MMLU, once with the prefix cache (the default) and once with --no-prefix-cache. Checks: both
# runs complete, the report says the mixture was taken over the answer letters (different
# vocabularies), the cache saved tokens, and both files agree: the same predictions, expert and
# mixture letter probabilities within 1e-4. Skips (exit 77) without the models or MMLU.
#   tests/e2e/real_mixture.sh MOE_DIST_BINARY WORKDIR
set -euo pipefail
bin=$1; work=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
models=${MOE_MODELS_DIR:-$HOME/.cache/moe-dist/models}
mmlu=${MOE_MMLU_DIR:-$root/../shared/mmlu/data}
for f in "$models/smollm2-135m-instruct.gguf" "$models/gemma-3-270m.gguf"; do
  if [[ ! -f $f ]]; then echo "SKIP: $f is absent (run scripts/get-models.sh)"; exit 77; fi
done
if [[ ! -d $mmlu/test ]]; then echo "SKIP: no MMLU at $mmlu (set MOE_MMLU_DIR)"; exit 77; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$work"; mkdir -p "$work"
common=(--config "$root/configs/smollm2-gemma3.yaml" --models "$models/smollm2-135m-instruct.gguf"
        "$models/gemma-3-270m.gguf" --data "$mmlu" --subjects abstract_algebra,marketing --limit 4
        --batch-size 4 --overwrite)
cd "$root"
mpirun --oversubscribe -np 2 "$bin" "${common[@]}" --output "$work/cached.h5" | tee "$work/cached.txt"
mpirun --oversubscribe -np 2 "$bin" "${common[@]}" --no-prefix-cache --output "$work/plain.h5" > "$work/plain.txt"
grep -q "status: *complete, 8 questions in 2 subjects" "$work/cached.txt"
grep -q "mixture space: answer-letters: the experts' vocabularies differ" "$work/cached.txt"
/usr/bin/python3 - "$work/cached.h5" "$work/plain.h5" <<'PY'
import sys
import h5py
import numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["mixture_space"] == "answer-letters", a.attrs["mixture_space"]
ka = sorted(zip(a["subject"][:], a["index"][:]))
assert len(ka) == 8 and ka == sorted(zip(b["subject"][:], b["index"][:])), (ka,)
def by_key(f, name):
    order = np.lexsort((f["index"][:], f["subject"][:]))
    return f[name][:][order]
worst = 0.0
for name in ["expert_letter_probs", "mixture_letter_probs", "expert_choice_probs", "mixture_choice_probs"]:
    x, y = by_key(a, name), by_key(b, name)
    d = float(np.nanmax(np.abs(x - y)))
    worst = max(worst, d)
    assert d <= 1e-4, (name, d)
for name in ["prediction", "expert_prediction"]:
    assert (by_key(a, name) == by_key(b, name)).all(), name
# The prefix cache saved tokens in the cached run and none in the other (per-rank cost records).
def cached_tokens(f):
    for key in ("costs", "ranks"):
        if key in f:
            g = f[key]
            for field in ("cached_tokens", "tokens_cached"):
                if isinstance(g, h5py.Dataset) and g.dtype.names and field in g.dtype.names:
                    return int(g[field].sum())
                if isinstance(g, h5py.Group) and field in g:
                    return int(g[field][:].sum())
    return None
ca, cb = cached_tokens(a), cached_tokens(b)
if ca is not None:
    assert ca > 0 and cb == 0, (ca, cb)
print(f"real mixture: cached vs --no-prefix-cache max |prob diff| {worst:.3g}, cached tokens {ca} vs {cb}")
PY
