#!/usr/bin/env bash
# The 3-expert mixture of the original study on MMLU: one node, one MPI rank (and GPU) per expert.
#
#   sbatch slurm/mixture_a100.sh                          # the defaults below
#   sbatch slurm/mixture_a100.sh --batch-size 16 --limit 100   # arguments go to moe-dist
#   MOE_MODELS="/m/a /m/b /m/c" MOE_DATA=/d/mmlu sbatch -J my-mixture slurm/mixture_a100.sh
#   MOE_LAUNCHER=mpirun sbatch slurm/mixture_a100.sh      # mpirun instead of srun --mpi=pmix
#
# Settings (environment variables; sbatch passes the submitting shell's environment):
#   MOE_MODELS       expert folders or .gguf files, space separated  [the study's three 7B models]
#   MOE_DATA         MMLU root                                        [/data/mmlu]
#   MOE_OUTPUT       results file              [$MOE_RESULTS_DIR/<job name>.h5]
#   MOE_RESULTS_DIR  where results files go    [$SLURM_SUBMIT_DIR/results]
#   MOE_DEVICE       cuda | cpu                [cuda]
#   MOE_THREADS      compute threads per rank  [--cpus-per-task]
#   MOE_LAUNCHER     srun (srun --mpi=pmix) | mpirun   [srun]
#   MOE_SRUN_ARGS, MOE_MPIRUN_ARGS   extra launcher options (word-split)
#   MOE_DIST_BIN     the moe-dist binary       [<repo>/build/moe-dist, found from the submitted
#                    script's path, then $SLURM_SUBMIT_DIR/build/moe-dist, then PATH]
#   MOE_MAX_REQUEUES how often the job may requeue itself  [20]
# Arguments after the script name are moe-dist options and come last, so they win over the
# settings (`--models ...` replaces MOE_MODELS). With `--config FILE` the script passes only the
# settings you set explicitly, so the YAML file decides the rest.
#
# Resuming: the results file is keyed by the job name, so a requeued or resubmitted job with the
# same name continues it (`--resume` is added when the file exists; `--overwrite` starts afresh).
# Time limit: Slurm sends SIGUSR1 to this script 300 s before the limit (--signal=B:USR1@300); it
# forwards the signal to moe-dist through the launcher (every rank receives SIGUSR1), waits for it
# to stop, and requeues the job when the results are unfinished and this run made progress.
# See slurm/README.md.
#
#SBATCH --job-name=moe-mixture-a100
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=3
#SBATCH --gres=gpu:3
#SBATCH --cpus-per-task=8
#SBATCH --mem=96G
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
#SBATCH --error=%x-%j.err

set -uo pipefail  # no -e: the launcher's status is examined, not fatal

# ---- what to run (defaults; environment overrides) -------------------------------------------
DEFAULT_MODELS="/models/medalpaca-7b /models/code-alpaca-7b /models/llama-7b"
DEFAULT_DATA="/data/mmlu"
DEFAULT_DEVICE="cuda"

# ==== job runner: the same block in mixture_a100.sh and mixture_multinode.sh (a test compares them)
log() { printf '[moe-job %(%FT%T)T] %s\n' -1 "$*"; }
say_error() {  # to the job's output and its error output (they may be one file)
  log "error: $*"
  [[ /dev/stdout -ef /dev/stderr ]] || log "error: $*" >&2
}
die() {
  say_error "$@"
  exit 1
}

[[ -n "${SLURM_JOB_ID:-}" ]] || die "run this script with sbatch (or inside an salloc allocation)"

user_args=("$@")
has_opt() {  # has_opt --name: the user passed --name or --name=...
  local a
  for a in "${user_args[@]}"; do [[ "$a" == "$1" || "$a" == "$1="* ]] && return 0; done
  return 1
}
opt_value() {  # opt_value --name: the last value given as --name V or --name=V
  local i v=""
  for ((i = 0; i < ${#user_args[@]}; i++)); do
    case "${user_args[i]}" in
      "$1") v="${user_args[i + 1]:-}" ;;
      "$1"=*) v="${user_args[i]#*=}" ;;
    esac
  done
  printf '%s' "$v"
}
count_models() {  # experts named by --models in the arguments, else by MOE_MODELS; 0 = unknown
  local i n=-1 m
  for ((i = 0; i < ${#user_args[@]}; i++)); do
    if [[ "${user_args[i]}" == --models ]]; then
      n=0
      while ((i + 1 < ${#user_args[@]})) && [[ "${user_args[i + 1]}" != --* ]]; do ((n++, i++)); done
    elif [[ "${user_args[i]}" == --models=* ]]; then
      IFS=, read -ra m <<<"${user_args[i]#*=}"
      n=${#m[@]}
    fi
  done
  if ((n < 0)); then
    read -ra m <<<"$MOE_MODELS"
    n=${#m[@]}
  fi
  printf '%s' "$n"
}

# With --config the YAML file supplies what the environment does not set explicitly.
if has_opt --config; then
  : "${MOE_MODELS=}" "${MOE_DATA=}" "${MOE_DEVICE=}" "${MOE_THREADS=}"
else
  : "${MOE_MODELS=$DEFAULT_MODELS}" "${MOE_DATA=$DEFAULT_DATA}" "${MOE_DEVICE=$DEFAULT_DEVICE}"
  : "${MOE_THREADS=${SLURM_CPUS_PER_TASK:-}}"
fi
MOE_LAUNCHER="${MOE_LAUNCHER:-srun}"
MOE_MAX_REQUEUES="${MOE_MAX_REQUEUES:-20}"
submit_dir="${SLURM_SUBMIT_DIR:-$PWD}"
MOE_RESULTS_DIR="${MOE_RESULTS_DIR:-$submit_dir/results}"
output="$(opt_value --output)"
[[ -n "$output" ]] || output="${MOE_OUTPUT:-$MOE_RESULTS_DIR/${SLURM_JOB_NAME:-moe-mixture}.h5}"

# The binary. sbatch runs a copy of this script from its spool folder, so the repository is found
# through the submitted script's path (scontrol's Command=) or the submission folder.
find_binary() {
  if [[ -n "${MOE_DIST_BIN:-}" ]]; then
    [[ -x "$MOE_DIST_BIN" ]] || die "MOE_DIST_BIN=$MOE_DIST_BIN is not an executable file"
    bin=$MOE_DIST_BIN
    return
  fi
  local script candidates=() c
  script=$(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | grep -o 'Command=[^ ]*' | head -n1)
  script=${script#Command=}
  [[ -n "$script" && -f "$script" ]] && candidates+=("$(cd "$(dirname "$script")/.." && pwd)/build/moe-dist")
  candidates+=("$submit_dir/build/moe-dist")
  for c in "${candidates[@]}"; do [[ -x "$c" ]] && { bin=$c; return; }; done
  c=$(command -v moe-dist) && { bin=$c; return; }
  die "moe-dist not found (tried ${candidates[*]} and PATH): build it (cmake --build build) or set MOE_DIST_BIN"
}
find_binary

# The results file's state, from `moe-dist report --format json` (top-level keys are indented by
# two spaces): rows written so far, and whether the run finished.
results_json() { "$bin" report "$output" --format json 2>/dev/null || true; }
questions_done() {
  local n
  n=$(results_json | sed -n 's/^  "questions": \([0-9]*\),\{0,1\}$/\1/p')
  printf '%s' "${n:-0}"
}
is_complete() {
  local j
  j=$(results_json)
  [[ "$j" == *$'\n  "complete": true'* ]]
}

# The moe-dist command line: settings first, the user's arguments last (later options win).
args=()
[[ -n "$MOE_MODELS" ]] && { read -ra _m <<<"$MOE_MODELS"; args+=(--models "${_m[@]}"); }
[[ -n "$MOE_DATA" ]] && args+=(--data "$MOE_DATA")
[[ -n "$MOE_DEVICE" ]] && args+=(--device "$MOE_DEVICE")
[[ -n "$MOE_THREADS" ]] && args+=(--threads "$MOE_THREADS")
has_opt --output || args+=(--output "$output")
resumed=no
if [[ -e "$output" ]] && ! has_opt --resume && ! has_opt --overwrite; then
  args+=(--resume)
  resumed=yes
fi
args+=("${user_args[@]}")
mkdir -p "$(dirname "$output")" || die "cannot create the folder of $output"

# Ranks = tasks of the allocation; each replica group needs one rank per expert.
ranks=${SLURM_NTASKS:-1}
nodes=${SLURM_JOB_NUM_NODES:-1}
experts=$(count_models)
if ((experts > 0)); then
  if ((ranks % experts != 0)); then
    die "this allocation has $nodes node(s) x ${SLURM_NTASKS_PER_NODE:-?} tasks = $ranks MPI ranks, which is not a" \
      "multiple of the $experts experts: request nodes x tasks-per-node = $experts x replica groups" \
      "(e.g. --nodes=$nodes --ntasks-per-node=$experts)"
  fi
  replicas=$((ranks / experts))
  per_node=${SLURM_NTASKS_PER_NODE:-0}
  per_node=${per_node%%[!0-9]*}
  if ((nodes > 1 && ${per_node:-0} % experts != 0)); then
    log "note: $per_node tasks per node is not a multiple of $experts experts, so some replica groups" \
      "span two nodes and their all-reduce crosses the network"
  fi
else
  replicas="?"
fi

case "$MOE_LAUNCHER" in
  srun)
    # srun does not inherit --cpus-per-task from sbatch (Slurm >= 22.05): pass it on.
    read -ra _extra <<<"${MOE_SRUN_ARGS:-}"
    launch=(srun --mpi=pmix --kill-on-bad-exit=1 --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" "${_extra[@]}")
    ;;
  mpirun)
    # Open MPI reads the allocation (nodes, tasks per node) from Slurm; mpirun forwards SIGUSR1.
    read -ra _extra <<<"${MOE_MPIRUN_ARGS:-}"
    launch=(mpirun -np "$ranks" --bind-to none "${_extra[@]}")
    ;;
  *) die "MOE_LAUNCHER=$MOE_LAUNCHER: expected srun or mpirun" ;;
esac
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${MOE_THREADS:-${SLURM_CPUS_PER_TASK:-1}}}"

restarts=${SLURM_RESTART_COUNT:-0}
log "job $SLURM_JOB_ID ($SLURM_JOB_NAME) on ${SLURM_JOB_NODELIST:-?}: $nodes node(s), $ranks ranks," \
  "$experts experts x $replicas replica groups, restart $restarts"
log "binary:  $bin"
log "output:  $output (resume: $resumed)"
nccl=$(env | grep '^NCCL_' | sort | tr '\n' ' ')
[[ -z "$nccl" ]] || log "nccl:    $nccl"
log "command: ${launch[*]} $bin ${args[*]}"

# Run the launcher in the background so that signals reach this shell while it waits.
# SIGUSR1 (--signal=B:USR1@N, before the time limit): forwarded to the launcher, which passes it to
# every rank; SIGTERM (scancel, the limit itself, preemption): forwarded the same way. The traps stay
# to the end: a signal that comes after moe-dist has exited must not kill this script mid-report.
stop_signal=""
trapped=0
launcher_pid=""
# shellcheck disable=SC2317  # invoked by the traps below
on_signal() {
  trapped=1
  [[ -n "$stop_signal" ]] || stop_signal=$1
  if [[ -n "$launcher_pid" ]] && kill -s "$1" "$launcher_pid" 2>/dev/null; then
    log "received SIG$1: forwarded it to moe-dist (launcher pid $launcher_pid)"
  else
    log "received SIG$1 (moe-dist is not running)"
  fi
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM

before=$(questions_done)
start_s=$SECONDS
rc=0
if [[ -z "$stop_signal" ]]; then
  "${launch[@]}" "$bin" "${args[@]}" &
  launcher_pid=$!
  while :; do
    trapped=0
    wait "$launcher_pid"
    rc=$?
    ((trapped)) || break
  done
  launcher_pid=""
fi
run_signal=$stop_signal  # what stopped this run; later signals are only logged
after=$(questions_done)
log "moe-dist exited with status $rc after $((SECONDS - start_s)) s; $after questions in $output ($((after - before)) new)"

if is_complete; then
  log "results complete: $output"
  echo "==== moe-dist report $output"
  "$bin" report "$output"
  exit "$rc"
fi
if [[ "$run_signal" == USR1 ]]; then
  # Stopped ahead of the time limit with work left: run again, continuing the same file. A run
  # without new rows is requeued only when it was the first (the signal may have come during
  # start-up); twice in a row means the time limit is too short to get anywhere.
  if ((after <= before && restarts > 0)); then
    die "no new results in this run: not requeueing (is --time long enough to load the models?)"
  fi
  if ((restarts >= MOE_MAX_REQUEUES)); then
    die "requeued $restarts times already (MOE_MAX_REQUEUES=$MOE_MAX_REQUEUES): not requeueing"
  fi
  log "unfinished at the time limit: requeueing job $SLURM_JOB_ID (it resumes $output)"
  if scontrol requeue "$SLURM_JOB_ID"; then
    sleep 120 # Slurm ends this script as part of the requeue
    exit 0
  fi
  die "scontrol requeue failed: resubmit the same command to continue $output"
fi
if [[ -n "$run_signal" ]]; then
  log "stopped by SIG$run_signal with $after questions written; submit again to continue $output"
  exit $((rc == 0 ? 1 : rc))
fi
say_error "moe-dist failed (status $rc) and $output is not complete: see the job's error output"
exit $((rc == 0 ? 1 : rc))
# ==== end of job runner
