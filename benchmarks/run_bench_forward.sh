#!/usr/bin/env bash
# One-command forward-pass comparison for one model: moe-dist's engine (bench_forward) beside
# transformers (fp32, eager and sdpa) and llama.cpp (llama-cpp-python), on the same 5-shot MMLU
# token ids, at each thread count, every run a separate process under `/usr/bin/time -v` for its
# peak resident memory. Prints a markdown table (and writes it, with every JSON and log, to OUT).
#
#   benchmarks/run_bench_forward.sh MODEL [options]
#     MODEL                 a Hugging Face folder or a .gguf file (what moe-dist loads)
#     --hf DIR|FILE.gguf    what transformers loads (default: MODEL)
#     --gguf FILE.gguf      what llama.cpp loads (default: MODEL when it is a .gguf; none: skipped)
#     --tokenizer T         tokenizer for bench_forward (default: the model's own)
#     --name NAME           label in the table (default: MODEL's file name)
#     --threads "1 2"  --questions 8  --batch 4  --subject abstract_algebra  --warmup 1  --iters 3
#     --mmlu DIR            default: $MOE_MMLU_DIR, else ../shared/mmlu/data beside the repository,
#                           else ~/.cache/moe-dist/mmlu/data (scripts/get-mmlu.sh)
#     --out DIR             default: /tmp/bench_forward/NAME
#     --engines "moe transformers-eager transformers-sdpa llamacpp"
# Environment: BENCH_FORWARD (default build/benchmarks/bench_forward), TORCH_PYTHON (default
# /work/venv-torch/bin/python), LLAMA_PYTHON (default /work/venv-llama/bin/python). An engine whose
# Python lacks its package is reported as skipped, not failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
die() { echo "run_bench_forward: error: $*" >&2; exit 1; }
[[ $# -ge 1 ]] || die "usage: $0 MODEL [--hf X] [--gguf F] [--tokenizer T] [--threads \"1 2\"] ... (see the header)"
model=$1; shift
hf=$model gguf="" tokenizer="" name=""
[[ $model == *.gguf ]] && gguf=$model
threads="1 2" questions=8 batch=4 subject=abstract_algebra warmup=1 iters=3 out=""
engines="moe transformers-eager transformers-sdpa llamacpp"
mmlu=${MOE_MMLU_DIR:-}
if [[ -z $mmlu ]]; then
  if [[ -d $root/../shared/mmlu/data ]]; then mmlu=$root/../shared/mmlu/data; else mmlu=$HOME/.cache/moe-dist/mmlu/data; fi
fi
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || die "missing value after $1"
  case $1 in
    --hf) hf=$2 ;; --gguf) gguf=$2 ;; --tokenizer) tokenizer=$2 ;; --name) name=$2 ;;
    --threads) threads=$2 ;; --questions) questions=$2 ;; --batch) batch=$2 ;; --subject) subject=$2 ;;
    --warmup) warmup=$2 ;; --iters) iters=$2 ;; --mmlu) mmlu=$2 ;; --out) out=$2 ;; --engines) engines=$2 ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
[[ -n $name ]] || name=$(basename "${model%.gguf}")
[[ -n $out ]] || out=/tmp/bench_forward/$name
bench=${BENCH_FORWARD:-$root/build/benchmarks/bench_forward}
torch_py=${TORCH_PYTHON:-/work/venv-torch/bin/python}
llama_py=${LLAMA_PYTHON:-/work/venv-llama/bin/python}
[[ -x $bench ]] || die "$bench not built (ninja -C build bench_forward, or set BENCH_FORWARD)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package 'time')"
[[ -d $mmlu ]] || die "no MMLU at $mmlu (scripts/get-mmlu.sh, or --mmlu DIR)"
mkdir -p "$out"
ids=$out/ids.json
common=(--mmlu "$mmlu" --subject "$subject" --questions "$questions" --batch "$batch" --warmup "$warmup" --iters "$iters")
tok=()
[[ -n $tokenizer ]] && tok=(--tokenizer "$tokenizer")

# The prompts' token ids, once (one iteration, validation included).
"$bench" --model "$model" "${tok[@]}" "${common[@]}" --threads "${threads%% *}" --warmup 0 --iters 1 \
  --dump-ids "$ids" >"$out/dump.log" 2>&1 || { cat "$out/dump.log" >&2; die "bench_forward failed"; }

# timed ENGINE T CMD...: runs CMD under /usr/bin/time -v; its JSON is $out/ENGINE-tT.json.
rows=()
timed() {
  local engine=$1 t=$2; shift 2
  local log=$out/$engine-t$t.log
  echo "run_bench_forward: $name $engine threads=$t" >&2
  if ! /usr/bin/time -v "$@" >"$log" 2>&1; then
    if grep -q "ModuleNotFoundError" "$log"; then
      rows+=("| $name | $engine | $t | skipped: $(grep -m1 ModuleNotFoundError "$log" | sed 's/.*ModuleNotFoundError: //') | | | | | |")
      return 0
    fi
    tail -n 20 "$log" >&2; die "$engine ($t threads) failed: see $log"
  fi
  local rss_kb
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  rows+=("$(/usr/bin/python3 - "$out/$engine-t$t.json" "$rss_kb" "$name" "$engine" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["results"][0] if "results" in j else j
batch = j.get("batch", r.get("batch"))
print(f"| {sys.argv[3]} | {sys.argv[4]} | {r['threads']} | {r['prompt_tokens_per_s']:.1f} | "
      f"{r['prompt_tokens_per_s_best']:.1f} | {r.get('prompt_tokens_per_cpu_s', float('nan')):.1f} | {r['seconds_per_question']:.3f} | {batch} | "
      f"{int(sys.argv[2]) / 1024:.0f} |")
EOF
)")
}

for t in $threads; do
  for engine in $engines; do
    case $engine in
      moe)
        timed moe "$t" "$bench" --model "$model" "${tok[@]}" "${common[@]}" --threads "$t" --json "$out/moe-t$t.json" ;;
      transformers-eager|transformers-sdpa)
        timed "$engine" "$t" "$torch_py" "$here/bench_forward_reference.py" --ids "$ids" --engine transformers \
          --model "$hf" --attn "${engine#transformers-}" --threads "$t" --warmup "$warmup" --iters "$iters" \
          --json "$out/$engine-t$t.json" ;;
      llamacpp)
        if [[ -z $gguf ]]; then rows+=("| $name | llamacpp | $t | skipped: no GGUF file | | | | | |"); continue; fi
        timed llamacpp "$t" "$llama_py" "$here/bench_forward_reference.py" --ids "$ids" --engine llamacpp \
          --model "$gguf" --threads "$t" --warmup "$warmup" --iters "$iters" --json "$out/llamacpp-t$t.json" ;;
      *) die "unknown engine $engine" ;;
    esac
  done
done

tokens=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["prompts"]; print(len(p), sum(len(x["ids"]) for x in p))' "$ids")
{
  echo "$name: $subject, ${tokens% *} questions 5-shot, ${tokens#* } prompt tokens; warmup $warmup, iters $iters; $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| model | engine | threads | prompt tok/s (mean) | best | tok/CPU-s | s/question | batch | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out/table.md"
