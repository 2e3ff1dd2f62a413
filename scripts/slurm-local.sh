#!/usr/bin/env bash
# A real Slurm cluster on this one machine, for tests and for trying the job scripts:
# munged, slurmctld and N slurmd daemons (emulated nodes, all on this host), GPUs declared by count
# (GRES gpu backed by /dev/null, so `--gres=gpu:N` jobs schedule on a machine without GPUs), and
# more CPUs and memory claimed than the machine has (SlurmdParameters=config_overrides).
# Everything lives in its own folder with its own ports, munge key and socket; nothing in /etc.
#
#   scripts/slurm-local.sh start     start (idempotent; restarts when the settings changed)
#   scripts/slurm-local.sh stop      cancel every job, stop the daemons
#   scripts/slurm-local.sh status    daemons, nodes, queue
#   eval "$(scripts/slurm-local.sh env)"   point sbatch/squeue/scontrol at it (SLURM_CONF)
#
# Settings: MOE_SLURM_DIR [/tmp/moe-slurm], MOE_SLURM_NODES [2], MOE_SLURM_CPUS per node [64],
# MOE_SLURM_GPUS per node [8], MOE_SLURM_PORT (slurmctld; slurmd i uses PORT+i) [16817].
# Needs root (slurmd starts job steps as the submitting user) and Debian's slurm-wlm and munge:
# scripts/install-deps.sh --with-slurm.
#
# Emulated nodes share one host name, so Open MPI must not use shared memory between "nodes":
# multi-node jobs on this cluster need OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo, and
# mpirun cannot launch across them (srun --mpi=pmix can).
set -euo pipefail

DIR="${MOE_SLURM_DIR:-/tmp/moe-slurm}"
NODES="${MOE_SLURM_NODES:-2}"
CPUS="${MOE_SLURM_CPUS:-64}"
GPUS="${MOE_SLURM_GPUS:-8}"
PORT="${MOE_SLURM_PORT:-16817}"
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
export SLURM_CONF="$CONF"

say() { echo "slurm-local: $*"; }
fail() {
  echo "slurm-local: error: $*" >&2
  exit 1
}
node_names() { for ((i = 1; i <= NODES; i++)); do echo "n$i"; done; }
pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
  say "$what"
}

write_config() {  # the configuration files into $1
  local etc=$1 host last=$((GPUS - 1))
  host=$(hostname -s)
  mkdir -p "$etc"
  {
    echo "# Written by scripts/slurm-local.sh: a test cluster of $NODES emulated node(s) on $host."
    echo "ClusterName=moe-local"
    echo "SlurmctldHost=$host"
    echo "SlurmctldPort=$PORT"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$MUNGE_SOCKET"
    echo "CredType=cred/munge"
    echo "StateSaveLocation=$DIR/state"
    echo "SlurmdSpoolDir=$DIR/spool/%n"
    echo "TmpFS=$DIR/tmp/%n"
    echo "SlurmctldPidFile=$DIR/run/slurmctld.pid"
    echo "SlurmdPidFile=$DIR/run/slurmd-%n.pid"
    echo "SlurmctldLogFile=$DIR/log/slurmctld.log"
    echo "SlurmdLogFile=$DIR/log/slurmd-%n.log"
    echo "PlugStackConfig=$etc/plugstack.conf"
    echo "SlurmdParameters=config_overrides"
    echo "ProctrackType=proctrack/pgid"
    echo "TaskPlugin=task/none"
    echo "SwitchType=switch/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "SchedulerType=sched/backfill"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "MessageTimeout=30"
    echo "KillWait=15"
    echo "MinJobAge=3600"
    echo "JobRequeue=1"
    echo "JobCompType=jobcomp/filetxt"
    echo "JobCompLoc=$DIR/log/jobcomp.txt"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "GresTypes=gpu"
    for n in $(node_names); do
      echo "NodeName=$n NodeHostname=$host NodeAddr=127.0.0.1 Port=$((PORT + ${n#n})) CPUs=$CPUS Gres=gpu:$GPUS RealMemory=512000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  } >"$etc/slurm.conf"
  {
    echo "AutoDetect=off"
    echo "NodeName=n[1-$NODES] Name=gpu File=$DIR/dev/gpu[0-$last]"
  } >"$etc/gres.conf"
  : >"$etc/plugstack.conf"
}

start_munge() {
  mkdir -p "$DIR/munge"
  chmod 755 "$DIR" "$DIR/munge"
  if [[ ! -s "$DIR/munge/munge.key" ]]; then
    (umask 077 && dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none)
  fi
  if pid_alive "$DIR/munge/munged.pid"; then return; fi
  munged --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" ||
    fail "munged did not start: $(tail -n 3 "$DIR/munge/munged.log" 2>/dev/null)"
  wait_for 15 "munged up" bash -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'" ||
    fail "munged does not answer on $MUNGE_SOCKET"
}

nodes_idle() {  # every node idle or allocated (not down, drained, unknown)
  local states
  states=$(sinfo -h -N -o '%t' 2>/dev/null) || return 1
  [[ -n "$states" ]] && ! grep -qvE '^(idle|alloc|mix)$' <<<"$states"
}

no_jobs() { [[ -z "$(squeue -h -o %i 2>/dev/null)" ]]; }

daemons_running() {
  pid_alive "$DIR/munge/munged.pid" && pid_alive "$DIR/run/slurmctld.pid" || return 1
  for n in $(node_names); do pid_alive "$DIR/run/slurmd-$n.pid" || return 1; done
}

start() {
  [[ $(id -u) -eq 0 ]] || fail "needs root: slurmd starts job steps as the submitting user"
  local p
  for p in munged slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$p" >/dev/null || fail "$p not found: install Slurm with scripts/install-deps.sh --with-slurm"
  done
  ((NODES >= 1 && GPUS >= 1 && CPUS >= 1)) || fail "MOE_SLURM_NODES, _GPUS and _CPUS must be positive"

  # Same settings and everything alive: nothing to do. Otherwise start afresh.
  local fresh="$DIR/etc.new"
  write_config "$fresh"
  if daemons_running && diff -qr "$fresh" "$DIR/etc" >/dev/null 2>&1; then
    rm -rf "$fresh"
    wait_for 30 "running: $NODES node(s) idle ($DIR)" nodes_idle || fail "nodes not idle: $(sinfo -N 2>&1)"
    return
  fi
  if [[ -d "$DIR/etc" ]]; then stop_daemons; fi
  rm -rf "${DIR:?}/etc" "${DIR:?}/state" "${DIR:?}/spool" "${DIR:?}/tmp" "${DIR:?}/run"
  mv "$fresh" "$DIR/etc"
  mkdir -p "$DIR/state" "$DIR/run" "$DIR/log" "$DIR/dev"
  for ((i = 0; i < GPUS; i++)); do ln -sfn /dev/null "$DIR/dev/gpu$i"; done
  for n in $(node_names); do mkdir -p "$DIR/spool/$n" "$DIR/tmp/$n"; done

  start_munge
  slurmctld -i || fail "slurmctld did not start: $(tail -n 5 "$DIR/log/slurmctld.log")"
  wait_for 30 "slurmctld up (port $PORT)" scontrol ping ||
    fail "slurmctld does not answer: $(tail -n 5 "$DIR/log/slurmctld.log")"
  for n in $(node_names); do
    slurmd -N "$n" || fail "slurmd $n did not start: $(tail -n 5 "$DIR/log/slurmd-$n.log")"
  done
  if ! wait_for 60 "$NODES node(s) idle, $CPUS CPUs and $GPUS GPUs (declared) each ($DIR)" nodes_idle; then
    fail "nodes not idle: $(sinfo -N -o '%N %t %E' 2>&1)"
  fi
}

stop_daemons() {
  local f pids=() deadline
  if pid_alive "$DIR/run/slurmctld.pid"; then
    # Cancel the jobs first, so that no job step outlives its slurmd.
    local jobs
    read -ra jobs <<<"$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')"
    if ((${#jobs[@]})); then
      scancel "${jobs[@]}" 2>/dev/null || true
      wait_for 60 "jobs cancelled" no_jobs || say "jobs still listed: $(squeue -h 2>&1)"
    fi
  fi
  for f in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/munge/munged.pid"; do
    if pid_alive "$f"; then
      pids+=("$(cat "$f")")
      kill "$(cat "$f")" 2>/dev/null || true
    fi
  done
  deadline=$((SECONDS + 20))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then
      say "pid $p did not stop: killing it"
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  rm -f "$DIR"/run/*.pid "$DIR/munge/munged.pid"
  say "stopped (${#pids[@]} daemons)"
}

status() {
  local f
  for f in "$DIR/munge/munged.pid" "$DIR/run/slurmctld.pid" "$DIR"/run/slurmd-*.pid; do
    [[ -e "$f" ]] || continue
    if pid_alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): dead"; fi
  done
  if pid_alive "$DIR/run/slurmctld.pid"; then
    sinfo -N -o '%N %t %c CPUs %G %E'
    squeue
  else
    echo "slurmctld not running ($DIR)"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop_daemons ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
