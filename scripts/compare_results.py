#!/usr/bin/env python3
"""Compare the per-question results of two moe-dist runs of the same questions.

    scripts/compare_results.py A.h5 B.h5 [--atol 1e-6] [--rtol 5e-4] [--entropy-tol 2e-4]

For validating one path against another on the same models and data: the device mixture against
the host one (`--mixture-on host`), a GPU run against a CPU run, two batch sizes. Rows are matched
by (subject, index); both files must hold the same questions.
  - probabilities, masses and weights: |a - b| <= atol + rtol |b|; entropies: etol + etol |b|;
    NaN must match NaN (the unused choice columns);
  - integers (gold, shots, prompt tokens, vocabulary choices) exactly;
  - predictions (mixture and experts) exactly, except at a near tie: when the two files' answers
    differ and, in both files, the two answers' choice probabilities are within the tolerance of
    each other (counted and printed, not a failure).
Prints the largest difference per dataset and every failure (the first 10 per dataset); exits 1
when anything is outside its tolerance, 2 on unusable input.
"""
import argparse
import sys

import numpy as np

try:
    import h5py
except ImportError:  # pragma: no cover
    sys.exit("compare_results.py needs h5py (Debian: python3-h5py)")

FLOATS = ["weights", "expert_letter_probs", "mixture_letter_probs", "expert_choice_probs", "mixture_choice_probs",
          "expert_letter_mass", "mixture_letter_mass"]
ENTROPIES = ["expert_entropy", "mixture_entropy"]
EXACT = ["gold", "num_choices", "shots", "prompt_tokens", "expert_vocab_choice", "mixture_vocab_choice"]
# prediction dataset -> the choice probabilities that decide it
PREDICTIONS = {"prediction": "mixture_choice_probs", "expert_prediction": "expert_choice_probs"}


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load(path):
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        sys.stderr.write(f"compare_results.py: cannot open {path}: {e}\n")
        sys.exit(2)
    with f:
        for name in ["subjects", "subject", "index", *FLOATS, *ENTROPIES, *EXACT, *PREDICTIONS]:
            if name not in f:
                sys.stderr.write(f"compare_results.py: {path}: no dataset '{name}' (not a moe-dist results file?)\n")
                sys.exit(2)
        names = [text(s) for s in f["subjects"][()]]
        subject, index = f["subject"][()], f["index"][()]
        n = min(len(subject), len(index))
        data = {k: f[k][()][:n] for k in [*FLOATS, *ENTROPIES, *EXACT, *PREDICTIONS]}
        experts = [text(e) for e in f.attrs.get("experts", [])]
    keys = [(names[int(subject[i])], int(index[i])) for i in range(n)]
    order = {k: i for i, k in enumerate(keys)}
    if len(order) != len(keys):
        sys.stderr.write(f"compare_results.py: {path}: a question appears twice\n")
        sys.exit(2)
    return order, data, experts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--rtol", type=float, default=5e-4)
    ap.add_argument("--entropy-tol", type=float, default=2e-4)
    args = ap.parse_args()

    ka, da, ea = load(args.a)
    kb, db, eb = load(args.b)
    if ea != eb:
        sys.stderr.write(f"compare_results.py: the files' experts differ: {ea} vs {eb}\n")
        sys.exit(2)
    only_a, only_b = sorted(set(ka) - set(kb)), sorted(set(kb) - set(ka))
    if only_a or only_b:
        sys.stderr.write(f"compare_results.py: the files hold different questions: {len(only_a)} only in {args.a} "
                         f"(first {only_a[:3]}), {len(only_b)} only in {args.b} (first {only_b[:3]})\n")
        sys.exit(2)
    keys = sorted(ka)
    ia = np.array([ka[k] for k in keys], dtype=np.int64)
    ib = np.array([kb[k] for k in keys], dtype=np.int64)
    failures = 0

    def report(name, bad, detail):
        nonlocal failures
        rows = np.nonzero(bad.reshape(len(keys), -1).any(axis=1))[0]
        failures += len(rows)
        for r in rows[:10]:
            print(f"  {name}: {keys[r][0]} #{keys[r][1]}: {detail(r)}")
        if len(rows) > 10:
            print(f"  {name}: ... {len(rows) - 10} more rows")

    print(f"comparing {len(keys)} questions: {args.a} vs {args.b}")
    for name in FLOATS + ENTROPIES:
        a = da[name][ia].astype(np.float64)
        b = db[name][ib].astype(np.float64)
        atol, rtol = (args.entropy_tol, args.entropy_tol) if name in ENTROPIES else (args.atol, args.rtol)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        diff = np.where(nan_a | nan_b, 0.0, np.abs(a - b))
        bad = (nan_a != nan_b) | (diff > atol + rtol * np.abs(np.where(nan_b, 0.0, b)))
        print(f"{name:24s} max |diff| {float(diff.max()) if diff.size else 0.0:.3g}")
        report(name, bad, lambda r: f"{a[r].ravel().tolist()} vs {b[r].ravel().tolist()}")
    for name in EXACT:
        a, b = da[name][ia], db[name][ib]
        bad = a != b
        print(f"{name:24s} {int(bad.reshape(len(keys), -1).any(axis=1).sum())} rows differ")
        report(name, bad, lambda r: f"{a[r].ravel().tolist()} vs {b[r].ravel().tolist()}")
    for name, probs in PREDICTIONS.items():
        a, b = da[name][ia], db[name][ib]
        pa, pb = da[probs][ia].astype(np.float64), db[probs][ib].astype(np.float64)
        differ = a != b
        bad = np.zeros_like(differ)
        ties = 0
        for pos in zip(*np.nonzero(differ)):
            r = pos[0]
            x, y = int(a[pos]), int(b[pos])
            qa, qb = pa[pos], pb[pos]  # [C] for this row (and expert)
            near = x >= 0 and y >= 0 and all(
                abs(q[x] - q[y]) <= args.atol + args.rtol * max(abs(q[x]), abs(q[y])) for q in (qa, qb))
            if near:
                ties += 1
                print(f"  {name}: {keys[r][0]} #{keys[r][1]}: {x} vs {y} at a near tie ({qa[x]:.6g} / {qa[y]:.6g})")
            else:
                bad[pos] = True
        print(f"{name:24s} {int(differ.sum())} differ ({ties} near ties)")
        report(name, bad, lambda r: f"{a[r].ravel().tolist()} vs {b[r].ravel().tolist()}")
    if failures:
        print(f"FAIL: {failures} row mismatches outside the tolerances")
        return 1
    print(f"OK: {len(keys)} questions agree (atol {args.atol:g}, rtol {args.rtol:g}, entropy {args.entropy_tol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
