#!/usr/bin/env bash
# Throughput of the mixture at several rank counts (and node counts), inside one allocation:
# one fresh moe-dist run per point, timed as a whole, one CSV row per run. Each run's results file
# and report (its standard output) go to MOE_BENCH_DIR; progress and errors to the job's .err.
#
#   sbatch slurm/bench_scaling.sh --limit 20                  # 3 and 6 ranks on one node
#   MOE_BENCH_RANKS="3 6 12" MOE_BENCH_NODES="1 2" sbatch --nodes=2 slurm/bench_scaling.sh --limit 20
#
# Settings (environment): MOE_MODELS, MOE_DATA, MOE_DEVICE, MOE_THREADS, MOE_LAUNCHER (srun |
# mpirun), MOE_SRUN_ARGS, MOE_MPIRUN_ARGS, MOE_DIST_BIN as in slurm/mixture_a100.sh, and
#   MOE_BENCH_RANKS  rank counts, each a multiple of the experts  [every multiple up to the allocation]
#   MOE_BENCH_NODES  node counts to spread each rank count over   [as few nodes as fit]
#   MOE_BENCH_DIR    results files and the CSV                    [$SLURM_SUBMIT_DIR/results/<job>-<id>]
#   MOE_BENCH_CSV    the CSV                                      [$MOE_BENCH_DIR/scaling.csv]
# Arguments go to every moe-dist run (use --limit or --subjects to keep the runs short).
#
# CSV columns: ranks, nodes, experts, replicas (= ranks/experts), questions (rows written),
# seconds (the whole run: start-up, model loading and evaluation), questions_per_s
# (= questions/seconds), eval_seconds (the results file's end_time - start_time, 1 s resolution:
# evaluation without start-up). Points whose rank count the allocation cannot place are skipped.
#
#SBATCH --job-name=moe-bench-scaling
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=6
#SBATCH --gres=gpu:6
#SBATCH --cpus-per-task=8
#SBATCH --exclusive
#SBATCH --mem=0
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out
#SBATCH --error=%x-%j.err

set -uo pipefail

DEFAULT_MODELS="/models/medalpaca-7b /models/code-alpaca-7b /models/llama-7b"
DEFAULT_DATA="/data/mmlu"
DEFAULT_DEVICE="cuda"

log() { printf '[moe-bench %(%FT%T)T] %s\n' -1 "$*"; }
die() {
  log "error: $*"
  [[ /dev/stdout -ef /dev/stderr ]] || log "error: $*" >&2
  exit 1
}
[[ -n "${SLURM_JOB_ID:-}" ]] || die "run this script with sbatch (or inside an salloc allocation)"

: "${MOE_MODELS=$DEFAULT_MODELS}" "${MOE_DATA=$DEFAULT_DATA}" "${MOE_DEVICE=$DEFAULT_DEVICE}"
: "${MOE_THREADS=${SLURM_CPUS_PER_TASK:-}}"
MOE_LAUNCHER="${MOE_LAUNCHER:-srun}"
submit_dir="${SLURM_SUBMIT_DIR:-$PWD}"
bench_dir="${MOE_BENCH_DIR:-$submit_dir/results/${SLURM_JOB_NAME:-moe-bench}-$SLURM_JOB_ID}"
csv="${MOE_BENCH_CSV:-$bench_dir/scaling.csv}"
mkdir -p "$bench_dir" "$(dirname "$csv")" || die "cannot create $bench_dir"

# The binary: MOE_DIST_BIN, else <repo>/build/moe-dist of the submitted script, else the
# submission folder's build/, else PATH (sbatch runs a copy of this script from its spool folder).
if [[ -n "${MOE_DIST_BIN:-}" ]]; then
  [[ -x "$MOE_DIST_BIN" ]] || die "MOE_DIST_BIN=$MOE_DIST_BIN is not an executable file"
  bin=$MOE_DIST_BIN
else
  script=$(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | grep -o 'Command=[^ ]*' | head -n1)
  script=${script#Command=}
  candidates=()
  [[ -n "$script" && -f "$script" ]] && candidates+=("$(cd "$(dirname "$script")/.." && pwd)/build/moe-dist")
  candidates+=("$submit_dir/build/moe-dist")
  bin=""
  for c in "${candidates[@]}"; do [[ -x "$c" ]] && { bin=$c; break; }; done
  [[ -n "$bin" ]] || bin=$(command -v moe-dist) ||
    die "moe-dist not found (tried ${candidates[*]} and PATH): build it or set MOE_DIST_BIN"
fi

read -ra models <<<"$MOE_MODELS"
experts=${#models[@]}
((experts > 0)) || die "MOE_MODELS is empty"
alloc_nodes=${SLURM_JOB_NUM_NODES:-1}
alloc_tasks=${SLURM_NTASKS:-1}
per_node=${SLURM_NTASKS_PER_NODE:-$(((alloc_tasks + alloc_nodes - 1) / alloc_nodes))}
per_node=${per_node%%(*}

if [[ -n "${MOE_BENCH_RANKS:-}" ]]; then
  read -ra rank_list <<<"$MOE_BENCH_RANKS"
else
  rank_list=()
  for ((r = experts; r <= alloc_tasks; r += experts)); do rank_list+=("$r"); done
fi
((${#rank_list[@]} > 0)) || die "no rank count to run: the allocation has $alloc_tasks tasks for $experts experts"
node_list=()
[[ -z "${MOE_BENCH_NODES:-}" ]] || read -ra node_list <<<"$MOE_BENCH_NODES"
mapfile -t hosts < <(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(hostname -s)}")

args=(--models "${models[@]}" --data "$MOE_DATA")
[[ -n "$MOE_DEVICE" ]] && args+=(--device "$MOE_DEVICE")
[[ -n "$MOE_THREADS" ]] && args+=(--threads "$MOE_THREADS")
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${MOE_THREADS:-${SLURM_CPUS_PER_TASK:-1}}}"

# json_field FILE KEY: a top-level number or string of `moe-dist report --format json`.
json_field() {
  "$bin" report "$1" --format json 2>/dev/null |
    sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n1
}
header_time() {  # header_time FILE start_time|end_time -> seconds since the epoch
  local t
  t=$("$bin" report "$1" --format json 2>/dev/null | sed -n "s/^    \"$2\": \"\([^\"]*\)\",\{0,1\}\$/\1/p" | head -n1)
  [[ -n "$t" ]] && date -d "$t" +%s
}

echo "ranks,nodes,experts,replicas,questions,seconds,questions_per_s,eval_seconds" >"$csv"
log "job $SLURM_JOB_ID: $alloc_nodes node(s) x $per_node tasks; rank counts: ${rank_list[*]};" \
  "node counts: ${node_list[*]:-fewest that fit}; launcher $MOE_LAUNCHER; CSV $csv"
failed=0
points=0
for r in "${rank_list[@]}"; do
  if ((r % experts != 0)); then
    log "skip $r ranks: not a multiple of the $experts experts"
    continue
  fi
  if ((${#node_list[@]})); then
    these_nodes=("${node_list[@]}")
  else
    these_nodes=($(((r + per_node - 1) / per_node)))
  fi
  for n in "${these_nodes[@]}"; do
    if ((n > alloc_nodes || r < n || r > n * per_node)); then
      log "skip $r ranks on $n node(s): the allocation has $alloc_nodes node(s) x $per_node tasks"
      continue
    fi
    out="$bench_dir/ranks${r}-nodes${n}.h5"
    k=$(((r + n - 1) / n))  # ranks per node, at most
    case "$MOE_LAUNCHER" in
      srun)
        read -ra extra <<<"${MOE_SRUN_ARGS:-}"
        launch=(srun --mpi=pmix --kill-on-bad-exit=1 --nodes="$n" --ntasks="$r"
          --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" "${extra[@]}")
        ((r % n == 0)) && launch+=(--ntasks-per-node="$k")
        ;;
      mpirun)
        read -ra extra <<<"${MOE_MPIRUN_ARGS:-}"
        host_arg=$(printf "%s:$k," "${hosts[@]:0:n}")
        launch=(mpirun -np "$r" -H "${host_arg%,}" --bind-to none "${extra[@]}")
        ;;
      *) die "MOE_LAUNCHER=$MOE_LAUNCHER: expected srun or mpirun" ;;
    esac
    log "$r ranks on $n node(s): ${launch[*]} $bin ${args[*]} --output $out --overwrite $* > ${out%.h5}.log"
    t0=$(date +%s.%N)
    "${launch[@]}" "$bin" "${args[@]}" --output "$out" --overwrite "$@" >"${out%.h5}.log"
    rc=$?
    t1=$(date +%s.%N)
    if ((rc != 0)) || [[ "$(json_field "$out" complete)" != true ]]; then
      log "error: $r ranks on $n node(s): moe-dist failed (status $rc); no CSV row"
      failed=$((failed + 1))
      continue
    fi
    questions=$(json_field "$out" questions)
    start=$(header_time "$out" start_time)
    end=$(header_time "$out" end_time)
    eval_s=""
    [[ -n "$start" && -n "$end" ]] && eval_s=$((end - start))
    row=$(awk -v r="$r" -v n="$n" -v e="$experts" -v q="$questions" -v t0="$t0" -v t1="$t1" -v ev="$eval_s" \
      'BEGIN { s = t1 - t0; printf "%d,%d,%d,%d,%d,%.3f,%.3f,%s", r, n, e, r / e, q, s, (s > 0 ? q / s : 0), ev }')
    echo "$row" >>"$csv"
    points=$((points + 1))
    log "row: $row"
  done
done

log "$points point(s), $failed failed; CSV: $csv"
echo "==== $csv"
cat "$csv"
((failed == 0 && points > 0)) || exit 1
