#!/usr/bin/env python3
"""End-to-end tests of `moe-dist run` under mpirun, checked through the HDF5 file with h5py.

  test_pipeline.py equivalence --bin BUILD/moe-dist   same answers for -n 3 / -n 6 and batch sizes 1 / 7,
                                                      equal to the mixture computed from single-expert runs
  test_pipeline.py resume --bin BUILD/moe-dist        a run killed midway leaves a valid file; --resume
                                                      completes it to what an uninterrupted run writes
Uses the tiny fixture models and data/sample. Needs Debian's python3-h5py and python3-numpy.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
DATA = os.path.join(ROOT, "data", "sample")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
PER_ROW = ["gold", "shots", "prediction", "correct", "prompt_tokens", "weights", "expert_entropy", "mixture_entropy",
           "expert_letter_probs", "mixture_letter_probs", "expert_choice_probs", "mixture_choice_probs",
           "expert_prediction", "expert_correct", "expert_vocab_choice", "mixture_vocab_choice",
           "expert_letter_mass", "mixture_letter_mass"]
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def model_path(m):
    return m if os.path.isabs(m) else os.path.join(MODELS, m)


def run(binary, ranks, models, out, *extra, expect_ok=True, env=None):
    cmd = ["mpirun", "--oversubscribe", "-np", str(ranks), binary, "--models", *[model_path(m) for m in models],
           "--data", DATA, "--output", out, "--limit", "4", *extra]
    p = subprocess.run(cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if expect_ok and p.returncode != 0:
        print(p.stdout)
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    return p


def open_h5(path):
    # mpirun can return before a killed job's last rank has exited and released the file's lock.
    for _ in range(60):
        try:
            return h5py.File(path, "r")
        except BlockingIOError:
            time.sleep(0.5)
    return h5py.File(path, "r")


def load(path):
    """Rows keyed by (subject name, index) -> dict of arrays; plus the file's attributes."""
    with open_h5(path) as f:
        names = [s.decode() if isinstance(s, bytes) else s for s in f["subjects"][()]]
        subj = f["subject"][()]
        idx = f["index"][()]
        data = {k: f[k][()] for k in PER_ROW}
        attrs = dict(f.attrs)
    rows = {}
    for i in range(len(idx)):
        key = (names[subj[i]], int(idx[i]))
        assert key not in rows, f"duplicate row {key} in {path}"
        rows[key] = {k: data[k][i] for k in PER_ROW}
    return rows, attrs


def close(a, b, tol=1e-6, relative=False):
    """|a - b| <= tol (probabilities), or <= tol * (1 + |b|) for relative quantities (entropies)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    bound = tol * (1 + np.abs(b)) if relative else tol
    return a.shape == b.shape and bool(np.all(both_nan | (np.abs(a - b) <= bound)))


def same_rows(ra, rb, what, tol=1e-6):
    check(sorted(ra) == sorted(rb), f"{what}: same questions ({len(ra)} vs {len(rb)})")
    worst = ""
    for key in ra:
        if key not in rb:
            continue
        for k in PER_ROW:
            if not close(ra[key][k], rb[key][k], tol, relative=k.endswith("entropy")):
                worst = worst or f"{key} {k}: {ra[key][k]} vs {rb[key][k]}"
    check(not worst, f"{what}: every value equal within {tol} (entropies relative)" +
          (f" (first difference {worst})" if worst else ""))


def equivalence(binary, tmp):
    experts = ["llama", "mistral", "qwen2"]
    singles = []
    for m in experts:
        out = os.path.join(tmp, f"single_{m}.h5")
        run(binary, 1, [m], out, "--batch-size", "3")
        singles.append(load(out)[0])
    runs = {}
    for ranks, bs in [(3, 1), (3, 7), (6, 7)]:
        out = os.path.join(tmp, f"mix_{ranks}_{bs}.h5")
        run(binary, ranks, experts, out, "--batch-size", str(bs))
        runs[(ranks, bs)], attrs = load(out)
        check(attrs["mixture_space"] in (b"full-vocabulary", "full-vocabulary"), f"-n {ranks} bs {bs}: full-vocabulary mixture")
    base = runs[(3, 1)]
    same_rows(base, runs[(3, 7)], "-n 3 batch 1 vs batch 7")
    same_rows(base, runs[(6, 7)], "-n 3 vs -n 6 (two replica groups)")
    # The single-process computation of the mean mixture from each expert's own distribution.
    worst = 0.0
    pred_ok = True
    for key, row in base.items():
        experts_lp = np.stack([s[key]["expert_letter_probs"][0] for s in singles])
        mean_lp = experts_lp.mean(axis=0)
        worst = max(worst, float(np.nanmax(np.abs(mean_lp - row["mixture_letter_probs"]))))
        n = int(np.sum(~np.isnan(mean_lp)))
        pred_ok &= int(np.argmax(mean_lp[:n])) == int(row["prediction"])
        for e in range(3):
            worst = max(worst, float(np.nanmax(np.abs(experts_lp[e] - row["expert_letter_probs"][e]))))
    check(worst <= 1e-6, f"mixture and expert letter probs equal the single-expert runs' mean (max diff {worst:.2e})")
    check(pred_ok, "mixture predictions equal argmax of the single-process mean")
    # Invariant: oracle >= every expert.
    correct = np.array([r["expert_correct"] for r in base.values()])
    oracle = correct.max(axis=1).mean()
    check(all(oracle >= correct[:, e].mean() for e in range(3)), "oracle accuracy >= every expert's")

    # Different vocabularies: the GPT-2 fixture's weights with the Qwen2-style test tokenizer (another
    # vocabulary); geometric pooling over the answer letters, checked against single runs.
    other = os.path.join(tmp, "gpt2_qwen2tok")
    shutil.copytree(os.path.join(MODELS, "gpt2"), other)
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "tokenizers", "qwen2", "tokenizer.json"), other)
    gpt = os.path.join(tmp, "single_other.h5")
    run(binary, 1, [other], gpt, "--batch-size", "3")
    g_single = load(gpt)[0]
    out = os.path.join(tmp, "letters_geo.h5")
    run(binary, 2, ["llama", other], out, "--mode", "geometric", "--weights", "0.3", "0.7", "--batch-size", "5")
    rows, attrs = load(out)
    check(attrs["mixture_space"] in (b"answer-letters", "answer-letters"), "different vocabularies: answer-letter mixture")
    worst = 0.0
    for key, row in rows.items():
        q1 = singles[0][key]["expert_choice_probs"][0]
        q2 = g_single[key]["expert_choice_probs"][0]
        n = int(np.sum(~np.isnan(q1)))
        s = 0.3 * np.log(q1[:n].astype(np.float64)) + 0.7 * np.log(q2[:n].astype(np.float64))
        p = np.exp(s - s.max())
        p /= p.sum()
        worst = max(worst, float(np.max(np.abs(p - row["mixture_choice_probs"][:n]))))
    check(worst <= 1e-6, f"geometric letter mixture equals the single-process computation (max diff {worst:.2e})")


def resume(binary, tmp):
    experts = ["llama", "mistral", "qwen2"]
    full = os.path.join(tmp, "uninterrupted.h5")
    run(binary, 3, experts, full, "--batch-size", "2")
    ref, _ = load(full)
    part = os.path.join(tmp, "killed.h5")
    env = dict(ENV, MOE_TEST_KILL_AFTER="1:4")
    p = run(binary, 3, experts, part, "--batch-size", "2", expect_ok=False, env=env)
    check(p.returncode != 0, f"the killed run exits non-zero ({p.returncode})")
    rows, attrs = load(part)
    check(0 < len(rows) < len(ref), f"the killed run's file is readable with {len(rows)} of {len(ref)} rows")
    check(attrs["status"] in (b"running", "running"), "the killed run's file is marked running")
    same_rows(rows, {k: ref[k] for k in rows}, "rows written before the kill")
    rep = subprocess.run([binary, "report", part], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(rep.returncode == 0 and "partial" in rep.stdout.lower(), "moe-dist report reads the partial file")
    bad = run(binary, 3, experts, part, "--batch-size", "2", "--mode", "geometric", "--resume", expect_ok=False)
    check(bad.returncode != 0 and "mode" in bad.stdout, "resume with another --mode is refused, naming mode")
    run(binary, 3, experts, part, "--batch-size", "2", "--resume")
    rows, attrs = load(part)
    check(attrs["status"] in (b"complete", "complete"), "the resumed file is complete")
    same_rows(rows, ref, "resumed run vs uninterrupted run")

    # A stop signal (Slurm's warning before the time limit): finish in flight, exit 75, resume.
    stopped = os.path.join(tmp, "stopped.h5")
    cmd = ["mpirun", "--oversubscribe", "-np", "3", binary, "--models", *[model_path(m) for m in experts], "--data",
           DATA, "--output", stopped, "--limit", "4", "--batch-size", "1"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:  # progress lines: "[moe-dist] 3/24 questions (12%) ..."
        seen.append(line)
        m = re.match(r"\[moe-dist\] (\d+)/\d+ questions", line)
        if m and int(m.group(1)) >= 3:
            break
    proc.send_signal(signal.SIGUSR1)  # mpirun forwards SIGUSR1 to every rank
    out, _ = proc.communicate(timeout=300)
    out = "".join(seen) + out
    rows, attrs = load(stopped)
    check(proc.returncode == 75, f"a stopped run exits 75 (got {proc.returncode})")
    check("stop signal received" in out, "the stop is logged")
    check(0 < len(rows) < len(ref) and attrs["status"] in (b"running", "running"),
          f"the stopped run's file keeps {len(rows)} finished rows, status running")
    run(binary, 3, experts, stopped, "--batch-size", "1", "--resume")
    rows, attrs = load(stopped)
    check(attrs["status"] in (b"complete", "complete"), "the resumed file is complete")
    same_rows(rows, ref, "stopped and resumed run vs uninterrupted run")
    again = run(binary, 3, experts, full, "--batch-size", "2", expect_ok=False)
    check(again.returncode != 0 and "exists" in again.stdout, "an existing output is refused without --overwrite")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["equivalence", "resume"])
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"equivalence": equivalence, "resume": resume}[a.what](os.path.abspath(a.bin), tmp)
    print(f"{a.what}: {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
