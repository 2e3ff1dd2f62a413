#!/usr/bin/env python3
"""End-to-end tests of `moe-dist run` under mpirun, checked through the HDF5 file with h5py.

  test_pipeline.py equivalence --bin BUILD/moe-dist   same answers for -n 3 / -n 6 and batch sizes 1 / 7,
                                                      equal to the mixture computed from single-expert runs
  test_pipeline.py resume --bin BUILD/moe-dist        a run killed midway leaves a valid file; --resume
                                                      completes it to what an uninterrupted run writes
  test_pipeline.py costs --bin BUILD/moe-dist         the per-rank costs (group `ranks`) and per-batch timings
                                                      (group `timing`) add up to the tokens the run evaluated,
                                                      counted again here with `moe-dist prompts` + `tokenize`
Uses the tiny fixture models and data/sample. Needs Debian's python3-h5py and python3-numpy.
"""
import argparse
import json
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


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load_costs(path):
    """The file's `ranks` and `timing` groups as dicts of arrays, and prompt_tokens [N, E]."""
    with open_h5(path) as f:
        ranks = {k: f["ranks"][k][()] for k in f["ranks"]} if "ranks" in f else None
        timing = {k: f["timing"][k][()] for k in f["timing"]} if "timing" in f else None
        tokens = f["prompt_tokens"][()]
        models = [text(m) for m in f.attrs["models"]]
    return ranks, timing, tokens, models


RANK_FIELDS = ["segment", "rank", "group", "expert", "host", "device", "model", "model_bytes", "batches", "questions",
               "prompt_tokens", "computed_tokens", "cached_tokens", "padded_tokens", "forward_seconds",
               "tokens_per_second", "tokenize_seconds", "gate_seconds", "collective_seconds", "wait_seconds",
               "write_seconds", "wall_seconds"]
TIMING_FIELDS = ["segment", "group", "subject", "questions", "first_row", "prompt_tokens", "computed_tokens",
                 "cached_tokens", "tokenize_seconds", "forward_seconds", "wait_seconds", "reduce_seconds",
                 "batch_seconds", "write_seconds"]


def check_costs(path, what, world, experts, segments=(0,), rows_from=0):
    """Consistency of the cost groups of a run of `world` ranks over `experts` experts, whose segments
    `segments` wrote the per-question rows from row `rows_from` on."""
    ranks, timing, tokens, models = load_costs(path)
    check(ranks is not None and timing is not None, f"{what}: groups ranks and timing exist")
    if ranks is None or timing is None:
        return
    check(sorted(ranks) == sorted(RANK_FIELDS), f"{what}: ranks has every field ({sorted(ranks)})")
    check(sorted(timing) == sorted(TIMING_FIELDS), f"{what}: timing has every field ({sorted(timing)})")
    seg = ranks["segment"]
    check(sorted(set(seg.tolist())) == list(segments), f"{what}: cost rows of segments {sorted(set(seg.tolist()))}")
    check(len(seg) == world * len(segments), f"{what}: one cost row per rank and segment ({len(seg)})")
    check(all(int(r) % experts == int(e) and int(r) // experts == int(g)
              for r, e, g in zip(ranks["rank"], ranks["expert"], ranks["group"])), f"{what}: rank r hosts expert r % E in group r / E")
    check(all(text(m) == models[int(e)] for m, e in zip(ranks["model"], ranks["expert"])), f"{what}: model path per rank")
    check(all(text(h) and text(d).startswith("cpu") for h, d in zip(ranks["host"], ranks["device"])),
          f"{what}: host and device named")
    check(bool(np.all(ranks["model_bytes"] > 0)), f"{what}: model bytes > 0 ({ranks['model_bytes'].tolist()})")
    check(bool(np.all(ranks["computed_tokens"] + ranks["cached_tokens"] == ranks["prompt_tokens"])),
          f"{what}: computed + cached == prompt tokens on every rank")
    busy = ranks["forward_seconds"] > 0
    check(bool(np.all(busy == (ranks["batches"] > 0))), f"{what}: forward seconds > 0 exactly where batches ran")
    tps = ranks["computed_tokens"][busy] / ranks["forward_seconds"][busy]
    check(bool(np.allclose(ranks["tokens_per_second"][busy], tps, rtol=1e-12)),
          f"{what}: tokens/s == computed tokens / forward seconds")
    check(bool(np.all(ranks["padded_tokens"] >= 0)) and bool(np.all(ranks["padded_tokens"][busy] > 0)),
          f"{what}: padded tokens counted where batches ran")
    check(bool(np.all(ranks["wall_seconds"] >= ranks["forward_seconds"] + ranks["tokenize_seconds"])),
          f"{what}: wall >= forward + tokenize seconds")
    check(bool(np.all(ranks["write_seconds"][ranks["rank"] != 0] == 0)) and float(ranks["write_seconds"][ranks["rank"] == 0].sum()) > 0,
          f"{what}: only rank 0 writes")
    rows = tokens[rows_from:]
    for e in range(experts):
        mine = ranks["expert"] == e
        check(int(ranks["prompt_tokens"][mine].sum()) == int(rows[:, e].sum()),
              f"{what}: expert {e}: prompt tokens over its ranks ({int(ranks['prompt_tokens'][mine].sum())}) == the "
              f"rows' prompt_tokens ({int(rows[:, e].sum())})")
        check(int(ranks["questions"][mine].sum()) == len(rows), f"{what}: expert {e}: its ranks evaluated every row once")
        check(int(timing["prompt_tokens"][:, e].sum()) == int(rows[:, e].sum()),
              f"{what}: expert {e}: per-batch prompt tokens add up to the rows'")
    check(int(timing["questions"].sum()) == len(rows), f"{what}: per-batch questions add up to {len(rows)}")
    order = np.argsort(timing["first_row"], kind="stable")
    starts, counts = timing["first_row"][order], timing["questions"][order]
    check(int(starts[0]) == rows_from and bool(np.all(starts[1:] == starts[:-1] + counts[:-1])),
          f"{what}: batches' first rows tile the rows written")
    check(bool(np.all(timing["computed_tokens"] + timing["cached_tokens"] == timing["prompt_tokens"])),
          f"{what}: per batch computed + cached == prompt tokens")
    leader = timing["tokenize_seconds"][:, 0] + timing["forward_seconds"][:, 0] + timing["reduce_seconds"]
    check(bool(np.all(timing["batch_seconds"] >= leader * (1 - 1e-5))),
          f"{what}: a batch's seconds cover its leader's tokenize, forward and reduce")
    rep = subprocess.run([BIN[0], "report", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(rep.returncode == 0 and "straggler: " in rep.stdout and re.search(r"\n *rank +group +expert", rep.stdout),
          f"{what}: the report has the cost table and names the straggler")


def close(a, b, tol=1e-6, relative=False):
    """|a - b| <= tol (probabilities), or <= tol * (1 + |b|) for relative quantities (entropies)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    bound = tol * (1 + np.abs(b)) if relative else tol
    return a.shape == b.shape and bool(np.all(both_nan | (np.abs(a - b) <= bound)))


# Runs whose batches differ (batch size, replica groups, a resume's new batches) share different
# prompt prefixes, which the engine's prefix cache computes once per batch: equal to the uncached
# path within 6e-6 in the logits (tests/unit/test_prefix_cache.cpp), so within 1e-5 here.
BATCHING_TOL = 1e-5


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


BIN = [None]


def costs(binary, tmp):
    """A small known run: 1-shot prompts (short enough for every fixture's context), 2 subjects x 3
    questions, batches of 2, on 3 and on 6 ranks. The tokens are counted again from the prompts."""
    experts = ["llama", "mistral", "qwen2"]
    subjects = ["astronomy", "nutrition"]
    extra = ["--subjects", *subjects, "--limit", "3", "--shots", "1", "--batch-size", "2"]
    p = subprocess.run([binary, "prompts", "--data", DATA, *extra[:-2], "--json"], stdout=subprocess.PIPE, text=True,
                       check=True)
    prompts = json.loads(p.stdout)
    check(len(prompts) == 6 and all(q["shots"] == 1 for q in prompts), f"prompts: 6 prompts of 1 shot ({len(prompts)})")
    expected = []
    for m in experts:
        n = 0
        for q in prompts:
            t = subprocess.run([binary, "tokenize", "--model", model_path(m), "--text", q["prompt"], "--json"],
                               stdout=subprocess.PIPE, text=True, check=True)
            n += len(json.loads(t.stdout))
        expected.append(n)
    for ranks, cache in ((3, True), (6, True), (3, False)):
        out = os.path.join(tmp, f"costs_{ranks}_{cache}.h5")
        run(binary, ranks, experts, out, *extra, *([] if cache else ["--no-prefix-cache"]))
        what = f"-n {ranks}" + ("" if cache else " --no-prefix-cache")
        check_costs(out, what, ranks, 3)
        r, _, tokens, _ = load_costs(out)
        with open_h5(out) as f:
            shots = f["shots"][()]
        check(bool(np.all(shots == 1)), f"{what}: every prompt kept its shot (none shortened to fit)")
        got = [int(r["prompt_tokens"][r["expert"] == e].sum()) for e in range(3)]
        check(got == expected, f"{what}: prompt tokens per expert {got} == the prompts tokenized by moe-dist "
                               f"tokenize {expected}")
        check(int(r["batches"][r["expert"] == 0].sum()) == 4,
              f"{what}: 4 batches (2 subjects x 3 questions, batches of 2 within a subject)")
        cached = [int(r["cached_tokens"][r["expert"] == e].sum()) for e in range(3)]
        if cache:  # a subject's prompts share the header and the shot: the prefix cache computes it once
            check(all(c > 0 for c in cached), f"{what}: the prefix cache saved tokens on every expert ({cached})")
        else:
            check(cached == [0, 0, 0] and bool(np.all(r["padded_tokens"] >= r["computed_tokens"])),
                  f"{what}: nothing cached ({cached}), padded >= computed tokens")


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
        p = run(binary, ranks, experts, out, "--batch-size", str(bs))
        runs[(ranks, bs)], attrs = load(out)
        # Each replica group says where its mixture runs (CPU experts: on the host, over MPI).
        for g in range(ranks // 3):
            check(f"group {g}: mixture on the host (MPI): the experts run on the CPU" in p.stdout,
                  f"-n {ranks}: group {g} logs its mixture placement")
        check(attrs["mixture_space"] in (b"full-vocabulary", "full-vocabulary"), f"-n {ranks} bs {bs}: full-vocabulary mixture")
    base = runs[(3, 1)]
    same_rows(base, runs[(3, 7)], "-n 3 batch 1 vs batch 7", BATCHING_TOL)
    # scripts/compare_results.py (the GPU validation's comparison) agrees, and catches a different mixture.
    compare = [sys.executable, os.path.join(ROOT, "scripts", "compare_results.py")]
    p = subprocess.run([*compare, os.path.join(tmp, "mix_3_1.h5"), os.path.join(tmp, "mix_6_7.h5")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0 and "OK: " in p.stdout, f"compare_results.py: -n 3 batch 1 vs -n 6 batch 7 agree:\n{p.stdout}")
    weighted = os.path.join(tmp, "mix_weighted.h5")
    run(binary, 3, experts, weighted, "--batch-size", "7", "--mode", "weighted", "--weights", "0.8", "0.15", "0.05")
    p = subprocess.run([*compare, os.path.join(tmp, "mix_3_7.h5"), weighted],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 1 and "mixture_letter_probs:" in p.stdout and "FAIL:" in p.stdout,
          f"compare_results.py: mean vs weighted mixture differ:\n{p.stdout}")
    same_rows(base, runs[(6, 7)], "-n 3 vs -n 6 (two replica groups)", BATCHING_TOL)
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
    before = len(rows)
    run(binary, 3, experts, part, "--batch-size", "2", "--resume")
    rows, attrs = load(part)
    check(attrs["status"] in (b"complete", "complete"), "the resumed file is complete")
    same_rows(rows, ref, "resumed run vs uninterrupted run", BATCHING_TOL)
    # The killed segment recorded no costs; the resumed one (segment 1) covers the rows after the kill.
    check_costs(part, "killed and resumed", 3, 3, segments=(1,), rows_from=before)

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
    check_costs(stopped, "stopped", 3, 3, segments=(0,))
    run(binary, 3, experts, stopped, "--batch-size", "1", "--resume")
    rows, attrs = load(stopped)
    check(attrs["status"] in (b"complete", "complete"), "the resumed file is complete")
    same_rows(rows, ref, "stopped and resumed run vs uninterrupted run", BATCHING_TOL)
    check_costs(stopped, "stopped and resumed", 3, 3, segments=(0, 1))
    again = run(binary, 3, experts, full, "--batch-size", "2", expect_ok=False)
    check(again.returncode != 0 and "exists" in again.stdout, "an existing output is refused without --overwrite")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["equivalence", "resume", "costs"])
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    BIN[0] = os.path.abspath(a.bin)
    with tempfile.TemporaryDirectory() as tmp:
        {"equivalence": equivalence, "resume": resume, "costs": costs}[a.what](os.path.abspath(a.bin), tmp)
    print(f"{a.what}: {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
