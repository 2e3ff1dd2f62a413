#!/usr/bin/python3
"""End-to-end pipeline benchmark: questions/s and prompt tokens/s of `moe-dist` under mpirun for
E experts x R replica groups, with the per-batch breakdown (wait, tokenize, forward, reduce,
write) and per-rank costs read from the run's results file (groups `ranks` and `timing`,
docs/results-format.md). JSON out; scripts/plot_bench.py draws it.

    /usr/bin/python3 benchmarks/bench_pipeline.py --bin build/moe-dist --configs 1x1 3x1 3x2 \\
        --output bench.json                     # tiny fixture checkpoints on data/sample
    /usr/bin/python3 benchmarks/bench_pipeline.py --bin build/moe-dist --real --data ../shared/mmlu/data \\
        --subjects abstract_algebra --limit 20  # SmolLM2-135M GGUF as every expert

Each configuration runs once after a validation run per expert count: the configuration's answers
must equal the 1-replica run's (replicas do not change answers), otherwise the benchmark fails.
Rates are over the ranks' work loop (`wall_seconds`, the slowest rank; model loading excluded);
the mpirun wall time, loading included, is reported too. Ranks are oversubscribed when E x R
exceeds the cores, so `--threads` (intra-op threads per rank) defaults to 1.
Needs /usr/bin/python3 with h5py and numpy (Debian's python3-h5py).
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = [os.path.join(ROOT, "tests", "fixtures", "models", m) for m in ("llama", "mistral", "qwen2")]
REAL = [os.path.expanduser("~/.cache/moe-dist/models/smollm2-135m-instruct.gguf")]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def parse_config(s):
    e, r = s.lower().split("x")
    return int(e), int(r)


def run_moe(args, experts, replicas, out):
    models = [args.models[i % len(args.models)] for i in range(experts)]
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(experts * replicas), args.bin,
           "--models", *models, "--data", args.data, "--output", out, "--overwrite", "--shots", str(args.shots),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    if args.subjects:
        cmd += ["--subjects", *args.subjects]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout)
        raise SystemExit(f"bench_pipeline: moe-dist failed ({p.returncode}): {' '.join(cmd)}")
    return cmd, wall


def read_run(path):
    with h5py.File(path, "r") as f:
        if text(f.attrs["status"]) != "complete":
            raise SystemExit(f"bench_pipeline: {path} is not complete")
        if "ranks" not in f or "timing" not in f:
            raise SystemExit(f"bench_pipeline: {path} has no cost groups (moe-dist older than cost accounting?)")
        names = [text(s) for s in f["subjects"][()]]
        keys = [(names[s], int(i)) for s, i in zip(f["subject"][()], f["index"][()])]
        run = {
            "answers": dict(zip(keys, f["prediction"][()].tolist())),
            "prompt_tokens": f["prompt_tokens"][()],
            "ranks": {k: f["ranks"][k][()] for k in f["ranks"]},
            "timing": {k: f["timing"][k][()] for k in f["timing"]},
            "experts": [text(x) for x in f["experts"][()]],
        }
    return run


def summarize(run, experts, replicas, mpirun_seconds):
    r, t = run["ranks"], run["timing"]
    n = len(run["answers"])
    loop = float(r["wall_seconds"].max())
    tokens = int(run["prompt_tokens"].sum())
    per_batch = {
        "wait": float(t["wait_seconds"].mean()),
        "tokenize": float(t["tokenize_seconds"].max(axis=1).mean()),
        "forward": float(t["forward_seconds"].max(axis=1).mean()),
        "reduce": float(t["reduce_seconds"].mean()),
        "write": float(t["write_seconds"].mean()),
        "batch": float(t["batch_seconds"].mean()),
    }
    ranks = []
    for i in range(len(r["rank"])):
        ranks.append({k: (text(r[k][i]) if r[k].dtype.kind in "OSU" else r[k][i].item()) for k in r})
        ranks[-1]["idle_seconds"] = ranks[-1]["collective_seconds"] + ranks[-1]["wait_seconds"]
    straggler = max(ranks, key=lambda x: (x["forward_seconds"], -x["idle_seconds"]))["rank"]
    return {
        "config": f"{experts}x{replicas}", "experts": experts, "replicas": replicas, "ranks_total": experts * replicas,
        "questions": n, "batches": int(len(t["questions"])), "prompt_tokens": tokens,
        "computed_tokens": int(r["computed_tokens"].sum()), "cached_tokens": int(r["cached_tokens"].sum()),
        "loop_seconds": loop, "mpirun_seconds": mpirun_seconds,
        "questions_per_second": n / loop, "prompt_tokens_per_second": tokens / loop,
        "forward_seconds_total": float(r["forward_seconds"].sum()),
        "per_batch_seconds": per_batch, "ranks": ranks, "straggler_rank": int(straggler),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "moe-dist"))
    ap.add_argument("--configs", nargs="+", default=["1x1", "3x1", "3x2"], help="E x R, e.g. 3x2")
    ap.add_argument("--models", nargs="+", help="expert i uses models[i %% len]; default: the tiny fixtures")
    ap.add_argument("--real", action="store_true", help="SmolLM2-135M-Instruct GGUF (scripts/get-models.sh) as every expert")
    ap.add_argument("--data", default=None, help="default: data/sample")
    ap.add_argument("--subjects", nargs="*", default=None)
    ap.add_argument("--limit", type=int, default=0, help="questions per subject (0 = all)")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    ap.add_argument("--output", default="bench_pipeline.json")
    ap.add_argument("--keep", help="folder to keep the results files in (default: a temporary one)")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if args.models is None:
        args.models = REAL if args.real else FIXTURES
    args.models = [os.path.abspath(os.path.expanduser(m)) for m in args.models]
    for m in args.models:
        if not os.path.exists(m):
            raise SystemExit(f"bench_pipeline: model {m} not found (scripts/get-models.sh fetches the real ones)")
    args.data = os.path.abspath(args.data or os.path.join(ROOT, "data", "sample"))
    configs = [parse_config(c) for c in args.configs]

    results, reference = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or tmp
        os.makedirs(folder, exist_ok=True)
        for e in sorted({e for e, _ in configs}):  # validation: the 1-replica answers per expert count
            out = os.path.join(folder, f"validate_{e}x1.h5")
            run_moe(args, e, 1, out)
            reference[e] = read_run(out)["answers"]
        for e, r in configs:
            out = os.path.join(folder, f"bench_{e}x{r}.h5")
            load = os.getloadavg()
            cmd, wall = run_moe(args, e, r, out)
            run = read_run(out)
            if run["answers"] != reference[e]:
                bad = [k for k in reference[e] if run["answers"].get(k) != reference[e][k]]
                raise SystemExit(f"bench_pipeline: {e}x{r} answers differ from {e}x1 on {len(bad)} questions, e.g. {bad[:3]}")
            s = summarize(run, e, r, wall)
            s["command"] = " ".join(cmd)
            s["load_average_before"] = list(load)
            s["results_file"] = out if args.keep else None
            results.append(s)
            pb = s["per_batch_seconds"]
            print(f"{s['config']:>5}: {s['questions']} questions, {s['questions_per_second']:.2f} q/s, "
                  f"{s['prompt_tokens_per_second']:.0f} prompt tok/s (loop {s['loop_seconds']:.2f} s, mpirun "
                  f"{wall:.2f} s); per batch: wait {pb['wait']:.3f} tokenize {pb['tokenize']:.3f} forward "
                  f"{pb['forward']:.3f} reduce {pb['reduce']:.3f} write {pb['write']:.3f} s; straggler rank "
                  f"{s['straggler_rank']}", flush=True)
    doc = {
        "benchmark": "bench_pipeline",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_after": list(os.getloadavg()),
        "settings": {"bin": args.bin, "models": args.models, "data": args.data, "subjects": args.subjects,
                     "limit": args.limit, "shots": args.shots, "batch_size": args.batch_size,
                     "threads_per_rank": args.threads},
        "validated": "every configuration's answers equal the 1-replica run's",
        "results": results,
    }
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
