#!/usr/bin/env python3
"""The Slurm job scripts end to end on a real local Slurm (tests/slurm/cluster.sh start).

  test_slurm.py CASE --bin BUILD/moe-dist --work DIR

Cases:
  a100-srun        slurm/mixture_a100.sh with srun --mpi=pmix; then resubmitted: it resumes
  a100-mpirun      the same with MOE_LAUNCHER=mpirun
  requeue          SIGUSR1 to the batch shell (what --signal=B:USR1@300 sends before the time
                   limit): moe-dist stops, the job requeues itself and completes the same file
  multinode-1x6    slurm/mixture_multinode.sh on 1 node x 6 tasks (3 experts x 2 replica groups)
  multinode-1x6-mpirun   the same with MOE_LAUNCHER=mpirun
  multinode-2x3    2 (emulated) nodes x 3 tasks, srun --mpi=pmix
  layout-error     1 node x 4 tasks for 3 experts: refused with a clear message
  bench            slurm/bench_scaling.sh: 3 and 6 ranks on 1 and 2 nodes, one CSV

Every job runs the tiny fixture models on data/sample on the CPU. Jobs are submitted with
`sbatch --parsable` and polled once a second through `scontrol show job` (sbatch --wait polls at
growing intervals, up to half a minute); every wait has a deadline, after which the job is
cancelled, its logs are printed and the case fails. Needs python3-h5py.
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = " ".join(os.path.join(ROOT, "tests", "fixtures", "models", m) for m in ("llama", "mistral", "qwen2"))
DATA = os.path.join(ROOT, "data", "sample")
SUBJECTS = 6  # in data/sample
EXIT_STOPPED = 75  # moe-dist's status after a stop signal (EX_TEMPFAIL): finished batches kept
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "PREEMPTED"}
# Emulated nodes share one host: Open MPI must not use shared memory between them (see slurm-local.sh).
TWO_NODE_ENV = {"OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "lo"}

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)
    return cond


class Cluster:
    def __init__(self, binary, work):
        self.bin = binary
        self.work = work
        conf = subprocess.run(["bash", os.path.join(ROOT, "scripts", "slurm-local.sh"), "env"], env=self.base_env(),
                              stdout=subprocess.PIPE, text=True, check=True).stdout
        self.slurm_conf = conf.strip().split("=", 1)[1]
        self.env = dict(self.base_env(), SLURM_CONF=self.slurm_conf, MOE_DIST_BIN=binary, MOE_MODELS=MODELS,
                        MOE_DATA=DATA, MOE_DEVICE="cpu", MOE_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
                        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        for k in ("MOE_OUTPUT", "MOE_RESULTS_DIR", "MOE_LAUNCHER", "MOE_SRUN_ARGS", "MOE_MPIRUN_ARGS", "SLURM_JOB_ID",
                  "MOE_BENCH_RANKS", "MOE_BENCH_NODES", "MOE_BENCH_DIR", "MOE_BENCH_CSV"):
            self.env.pop(k, None)
        if not os.path.exists(self.slurm_conf):
            raise SystemExit(f"no local cluster at {self.slurm_conf}: run tests/slurm/cluster.sh start first")

    @staticmethod
    def base_env():
        env = dict(os.environ)
        env.setdefault("MOE_SLURM_DIR", "/tmp/moe-slurm-ctest")
        env.setdefault("MOE_SLURM_PORT", "16917")
        return env

    def run(self, cmd, timeout=60, env=None, check_ok=True):
        p = subprocess.run(cmd, env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, cwd=self.work)
        if check_ok and p.returncode != 0:
            raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}")
        return p.stdout

    def submit(self, script, sbatch_opts=(), args=(), extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        out = self.run(["sbatch", "--parsable", *sbatch_opts, os.path.join(ROOT, "slurm", script), *args], env=env)
        job = out.strip().split(";")[0]
        print(f"submitted {script} {' '.join(sbatch_opts)} {' '.join(args)}: job {job}", flush=True)
        return job

    def info(self, job):
        out = self.run(["scontrol", "show", "job", "-o", job], check_ok=False)
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait(self, job, states=TERMINAL, timeout=300, what="to finish"):
        deadline = time.time() + timeout
        while True:
            info = self.info(job)
            if info.get("JobState") in states:
                return info
            if time.time() > deadline:
                self.dump(job)
                self.run(["scancel", job], check_ok=False)
                raise SystemExit(f"job {job} did not get {what} within {timeout} s (state {info.get('JobState')})")
            time.sleep(1)

    def logs(self, job, name):
        out = os.path.join(self.work, f"{name}-{job}.out")
        err = os.path.join(self.work, f"{name}-{job}.err")
        read = lambda p: open(p, errors="replace").read() if os.path.exists(p) else ""
        return read(out), read(err)

    def dump(self, job):
        info = self.info(job)
        out, err = self.logs(job, info.get("JobName", "?"))
        print(f"---- job {job}: {info.get('JobState')} {info.get('ExitCode')}\n---- stdout\n{out}\n---- stderr\n{err}")
        # What slurmctld logged about this job (why it failed to start, was requeued, ...).
        ctld = os.path.join(self.base_env()["MOE_SLURM_DIR"], "log", "slurmctld.log")
        if os.path.exists(ctld):
            lines = [l for l in open(ctld, errors="replace") if re.search(rf"JobId={job}\b", l)]
            print(f"---- slurmctld.log (JobId={job})\n" + "".join(lines[-20:]), flush=True)


def fresh_dir(base, name):
    d = os.path.join(base, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def check_results(path, questions, ranks, what):
    if not check(os.path.exists(path), f"{what}: results file {path} exists"):
        return
    with h5py.File(path, "r") as f:
        status = f.attrs["status"]
        status = status.decode() if isinstance(status, bytes) else status
        check(status == "complete", f"{what}: results file is complete (status {status})")
        n = len(f["index"])
        check(n == questions, f"{what}: {n} rows, expected {questions}")
        keys = set(zip(f["subject"][()].tolist(), f["index"][()].tolist()))
        check(len(keys) == n, f"{what}: no question written twice")
        check(int(f.attrs["ranks"]) == ranks, f"{what}: run with {int(f.attrs['ranks'])} ranks, expected {ranks}")


def check_no_shell_errors(out, err, what):
    m = re.search(r"slurm_script: line \d+: .*", out + err)
    check(m is None, f"{what}: no shell errors in the job script" + (f" ({m.group(0)})" if m else ""))


def check_job_ok(c, job, name, what):
    info = c.wait(job)
    ok = check(info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0",
               f"{what}: job {job} {info.get('JobState')} exit {info.get('ExitCode')}")
    out, err = c.logs(job, name)
    if not ok:
        c.dump(job)
    check("==== moe-dist report" in out and "status:        complete" in out and "overall (micro)" in out,
          f"{what}: the job's output ends with the report of the complete file")
    check_no_shell_errors(out, err, what)
    return info, out, err


def case_a100(c, launcher):
    name = "moe-mixture-a100"
    extra = {} if launcher == "srun" else {"MOE_LAUNCHER": "mpirun"}
    job = c.submit("mixture_a100.sh", ["--chdir", c.work], ["--limit", "2"], extra)
    _, out, _ = check_job_ok(c, job, name, f"a100 {launcher}")
    want = "srun --mpi=pmix" if launcher == "srun" else "mpirun -np 3"
    check(f"command: {want}" in out, f"a100 {launcher}: launched with {want}")
    check("3 experts x 1 replica groups" in out and "(resume: no)" in out, f"a100 {launcher}: 3 ranks, new file")
    results = os.path.join(c.work, "results", f"{name}.h5")
    check_results(results, 2 * SUBJECTS, 3, f"a100 {launcher}")
    if launcher != "srun":
        return
    # Resubmitted under the same job name: the same file, resumed, nothing left to do.
    job2 = c.submit("mixture_a100.sh", ["--chdir", c.work], ["--limit", "2"])
    _, out2, _ = check_job_ok(c, job2, name, "a100 resubmitted")
    check("(resume: yes)" in out2 and "--resume" in out2 and "(0 new)" in out2,
          "a100 resubmitted: --resume added, no new questions")
    check_results(results, 2 * SUBJECTS, 3, "a100 resubmitted")


def case_requeue(c):
    name = "moe-requeue"
    limit = 5
    job = c.submit("mixture_a100.sh", ["--chdir", c.work, "-J", name], ["--limit", str(limit), "--batch-size", "1"])
    # Wait for the first rows, then send what --signal=B:USR1@300 sends before the time limit.
    deadline = time.time() + 240
    while not re.search(r"^\[moe-dist\] [1-9]\d*/", c.logs(job, name)[1], re.M):
        info = c.info(job)
        if info.get("JobState") in TERMINAL or time.time() > deadline:
            c.dump(job)
            c.run(["scancel", job], check_ok=False)
            raise SystemExit(f"requeue: job {job} wrote no rows ({info.get('JobState')})")
        time.sleep(0.5)
    c.run(["scancel", "--batch", "--signal=USR1", job])
    print(f"sent SIGUSR1 to the batch shell of job {job}", flush=True)
    # A requeued job waits for its begin time (about 2 minutes); start it sooner, but not at once:
    # slurmd refuses a credential issued in the same second as the old run's was revoked ("Killing
    # non-startable batch job: Job credential revoked", seen in CI with StartTime=now).
    info = c.wait(job, states=TERMINAL | {"PENDING"}, timeout=180, what="requeued")
    if info.get("JobState") == "PENDING":
        c.run(["scontrol", "update", f"JobId={job}", "StartTime=now+3"])
    info = c.wait(job, timeout=300)
    out, err = c.logs(job, name)
    ok = check(info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0",
               f"requeue: job {job} {info.get('JobState')} exit {info.get('ExitCode')}")
    check(info.get("Restarts") == "1", f"requeue: the job ran twice (Restarts={info.get('Restarts')})")
    check("received SIGUSR1" in out, "requeue: the batch script received SIGUSR1 and forwarded it")
    m = re.search(r"moe-dist exited with status (\d+) after \d+ s; (\d+) questions", out)
    check(m is not None and int(m.group(1)) == EXIT_STOPPED and 0 < int(m.group(2)) < limit * SUBJECTS,
          f"requeue: moe-dist stopped cleanly (status {m.group(1) if m else '?'}, expected {EXIT_STOPPED}) "
          f"with {m.group(2) if m else '?'} of {limit * SUBJECTS} questions")
    check("requeueing job" in out, "requeue: the script requeued the job")
    check("restart 1" in out and "(resume: yes)" in out, "requeue: the second run resumed the same file")
    check("==== moe-dist report" in out and "status:        complete" in out, "requeue: the report at the end")
    check_no_shell_errors(out, err, "requeue")
    if not ok:
        c.dump(job)
    check_results(os.path.join(c.work, "results", f"{name}.h5"), limit * SUBJECTS, 3, "requeue")


def case_multinode(c, nodes, per_node, launcher="srun"):
    name = "moe-mixture-multinode"
    what = f"multinode {nodes}x{per_node} {launcher}"
    extra = dict(TWO_NODE_ENV) if nodes > 1 else {}
    if launcher != "srun":
        extra["MOE_LAUNCHER"] = launcher
    opts = ["--chdir", c.work, f"--nodes={nodes}", f"--ntasks-per-node={per_node}", f"--gres=gpu:{per_node}"]
    job = c.submit("mixture_multinode.sh", opts, ["--limit", "2"], extra)
    _, out, _ = check_job_ok(c, job, name, what)
    ranks = nodes * per_node
    check(f"{nodes} node(s), {ranks} ranks, 3 experts x {ranks // 3} replica groups" in out,
          f"{what}: {ranks} ranks as 3 experts x {ranks // 3} replica groups")
    check("nccl:    NCCL_DEBUG=WARN" in out, f"{what}: NCCL settings logged")
    check_results(os.path.join(c.work, "results", f"{name}.h5"), 2 * SUBJECTS, ranks, what)


def case_layout_error(c):
    name = "moe-mixture-multinode"
    job = c.submit("mixture_multinode.sh", ["--chdir", c.work, "--nodes=1", "--ntasks-per-node=4", "--gres=gpu:4"],
                   ["--limit", "2"])
    info = c.wait(job, timeout=120)
    out, err = c.logs(job, name)
    check(info.get("JobState") == "FAILED", f"layout error: job {job} failed ({info.get('JobState')})")
    check("4 MPI ranks, which is not a multiple of the 3 experts" in out and
          "4 MPI ranks, which is not a multiple of the 3 experts" in err,
          "layout error: the message names the ranks and experts (output and error files)")
    check(not os.path.exists(os.path.join(c.work, "results", f"{name}.h5")), "layout error: no results file")
    check_no_shell_errors(out, err, "layout error")


def case_bench(c):
    name = "moe-bench-scaling"
    csv_path = os.path.join(c.work, "scaling.csv")
    extra = dict(TWO_NODE_ENV, MOE_BENCH_RANKS="3 6", MOE_BENCH_NODES="1 2", MOE_BENCH_CSV=csv_path)
    job = c.submit("bench_scaling.sh", ["--chdir", c.work, "--nodes=2", "--ntasks-per-node=3", "--gres=gpu:3"],
                   ["--limit", "1"], extra)
    info = c.wait(job, timeout=500)
    out, err = c.logs(job, name)
    if not check(info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0",
                 f"bench: job {job} {info.get('JobState')} exit {info.get('ExitCode')}"):
        c.dump(job)
    check("skip 6 ranks on 1 node(s)" in out, "bench: 6 ranks on 1 node of 3 tasks skipped")
    check_no_shell_errors(out, err, "bench")
    if not check(os.path.exists(csv_path), f"bench: {csv_path} written"):
        return
    rows = list(csv.DictReader(open(csv_path)))
    check(list(rows[0].keys()) == ["ranks", "nodes", "experts", "replicas", "questions", "seconds", "questions_per_s",
                                   "eval_seconds"] if rows else False, "bench: CSV columns")
    points = sorted((int(r["ranks"]), int(r["nodes"])) for r in rows)
    check(points == [(3, 1), (3, 2), (6, 2)], f"bench: points (ranks, nodes) {points}")
    for r in rows:
        q, s, qps = int(r["questions"]), float(r["seconds"]), float(r["questions_per_s"])
        check(r["experts"] == "3" and int(r["replicas"]) == int(r["ranks"]) // 3 and q == SUBJECTS and s > 0 and
              abs(qps - q / s) <= 0.01 * q / s + 1e-3 and r["eval_seconds"].isdigit(),
              f"bench: row {dict(r)} consistent")
    check("==== " + csv_path in out, "bench: the CSV printed at the end")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["a100-srun", "a100-mpirun", "requeue", "multinode-1x6", "multinode-1x6-mpirun",
                                     "multinode-2x3", "layout-error", "bench"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: the local Slurm cluster needs root")
        sys.exit(77)
    c = Cluster(os.path.abspath(a.bin), fresh_dir(os.path.abspath(a.work), a.case))
    {
        "a100-srun": lambda: case_a100(c, "srun"),
        "a100-mpirun": lambda: case_a100(c, "mpirun"),
        "requeue": lambda: case_requeue(c),
        "multinode-1x6": lambda: case_multinode(c, 1, 6),
        "multinode-1x6-mpirun": lambda: case_multinode(c, 1, 6, "mpirun"),
        "multinode-2x3": lambda: case_multinode(c, 2, 3),
        "layout-error": lambda: case_layout_error(c),
        "bench": lambda: case_bench(c),
    }[a.case]()
    print(f"{a.case}: {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
