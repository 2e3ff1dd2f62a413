#!/usr/bin/env python3
"""End-to-end tests of gated mixtures under mpirun, checked through the HDF5 files with h5py.

  test_gate.py policies --bin BUILD/moe-dist   each policy's weights and mixture equal the policy applied in
                                               Python to single-expert runs' stored values; -n 6 equals -n 3;
                                               top_k 1 on a gate that always picks expert j is expert j exactly
  test_gate.py combine --bin BUILD/moe-dist    moe-dist combine of one run gives the online numbers of each gate;
                                               what it cannot recompute is refused with the reason
  test_gate.py calibrate --bin BUILD/moe-dist  a table fitted on the val split is the closed form, round-trips
                                               through its YAML file, drives a run; the evaluated split is refused
Uses the tiny fixture models and data/sample. Needs Debian's python3-h5py and python3-numpy.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
DATA = os.path.join(ROOT, "data", "sample")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
EXPERTS = ["llama", "mistral", "qwen2"]
LIMIT = "3"
BATCH = "3"
CATEGORY = {"astronomy": "STEM", "high_school_physics": "STEM", "high_school_geography": "social sciences",
            "philosophy": "humanities", "nutrition": "other", "team_trivia": "other"}
# Router prompts per expert (mergekit-moe style); the second has negative prompts too.
PROMPTS = [
    (["The star's parallax and the planet's orbit.", "Force equals mass times acceleration."], []),
    (["Vitamins, minerals and a balanced diet.", "Which food is rich in protein?"],
     ["Rivers, mountains and the capitals of countries."]),
    (["What is the nature of knowledge and justice?", "Kant, Hume and Plato on ethics."], []),
]
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def yaml_list(items):
    return "[" + ", ".join('"' + s.replace('"', '\\"') + '"' for s in items) + "]"


def router_yaml(indices, mode="hidden", indent="  "):
    out = f"{indent}router:\n{indent}  mode: {mode}\n{indent}  seed: 7\n"
    if mode == "random":
        return out
    out += f"{indent}  experts:\n"
    for i in indices:
        pos, neg = PROMPTS[i]
        out += f"{indent}    - positive_prompts: {yaml_list(pos)}\n"
        if neg:
            out += f"{indent}      negative_prompts: {yaml_list(neg)}\n"
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def run(binary, ranks, models, out, *extra, config=None, expect_ok=True, split=None):
    cmd = ["mpirun", "--oversubscribe", "-np", str(ranks), binary, "--models",
           *[os.path.join(MODELS, m) for m in models], "--data", DATA, "--output", out, "--limit", LIMIT,
           "--batch-size", BATCH, *([] if "--resume" in extra else ["--overwrite"]), *extra]
    if config:
        cmd += ["--config", config]
    if split:
        cmd += ["--split", split]
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if expect_ok and p.returncode != 0:
        print(p.stdout)
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    return p


def tool(binary, *args, expect_ok=True):
    p = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if expect_ok and p.returncode != 0:
        print(p.stdout)
        raise SystemExit(f"command failed ({p.returncode}): {binary} {' '.join(args)}")
    return p


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


COLUMNS = ["gold", "num_choices", "prediction", "correct", "weights", "expert_entropy", "mixture_entropy",
           "expert_letter_probs", "mixture_letter_probs", "expert_choice_probs", "mixture_choice_probs",
           "expert_prediction", "expert_correct", "expert_vocab_choice", "mixture_vocab_choice",
           "expert_letter_mass", "mixture_letter_mass", "gate_scores"]


def load(path):
    """Rows keyed by (subject, index) -> dict of arrays; plus the root attributes."""
    for _ in range(60):
        try:
            f = h5py.File(path, "r")
            break
        except BlockingIOError:
            time.sleep(0.5)
    with f:
        names = [text(s) for s in f["subjects"][()]]
        subj, idx = f["subject"][()], f["index"][()]
        data = {k: f[k][()] for k in COLUMNS}
        attrs = {k: f.attrs[k] for k in f.attrs}
    rows = {}
    for i in range(len(idx)):
        rows[(names[subj[i]], int(idx[i]))] = {k: data[k][i] for k in COLUMNS}
    return rows, attrs


def softmax(x, t):
    z = np.asarray(x, dtype=np.float64) / t
    z = np.exp(z - z.max())
    return z / z.sum()


def top_k(w, k):
    w = np.asarray(w, dtype=np.float64)
    if 0 < k < len(w):
        keep = np.argsort(-w, kind="stable")[:k]
        mask = np.zeros(len(w), bool)
        mask[keep] = True
        w = np.where(mask, w, 0.0)
    return w / w.sum()


def policy_weights(policy, key, per_expert, k=0, t=1.0, static=None, table=None, default=None):
    """The gate in Python: per_expert[e] is the single run's row of expert e."""
    if policy == "uniform":
        w = np.ones(len(per_expert))
    elif policy == "static":
        w = np.asarray(static, dtype=np.float64)
    elif policy == "table":
        w = np.asarray(table.get(CATEGORY[key[0]], default), dtype=np.float64)
    elif policy == "entropy":
        return top_k(softmax([-r["expert_entropy"][0] for r in per_expert], t), k)
    elif policy == "router":
        return top_k(softmax([r["gate_scores"][0] for r in per_expert], t), k)
    return top_k(w / w.sum(), k)


def compare_to_singles(name, rows, singles, weights_of, tol=1e-6):
    wdiff = pdiff = 0.0
    pred_ok = True
    for key, row in rows.items():
        per = [s[key] for s in singles]
        w = weights_of(key, per)
        wdiff = max(wdiff, float(np.max(np.abs(w - row["weights"]))))
        lp = np.stack([p["expert_letter_probs"][0] for p in per])
        mix = (w[:, None] * lp).sum(axis=0)
        n = int(row["num_choices"])
        pdiff = max(pdiff, float(np.max(np.abs(mix[:n] - row["mixture_letter_probs"][:n]))))
        pdiff = max(pdiff, float(np.max(np.abs(lp[:, :n] - row["expert_letter_probs"][:, :n]))))
        pred_ok &= int(np.argmax(mix[:n])) == int(row["prediction"])
    check(wdiff <= tol, f"{name}: weights equal the policy applied to single-expert runs (max diff {wdiff:.2e})")
    check(pdiff <= tol, f"{name}: mixture letter probs equal the single-process mixture (max diff {pdiff:.2e})")
    check(pred_ok, f"{name}: predictions equal the single-process mixture's argmax")


def policies(binary, tmp):
    singles = []
    for i, m in enumerate(EXPERTS):
        cfg = write(os.path.join(tmp, f"single_{m}.yaml"), "gate:\n  policy: uniform\n" + router_yaml([i]))
        out = os.path.join(tmp, f"single_{m}.h5")
        run(binary, 1, [m], out, config=cfg)
        singles.append(load(out)[0])
    check(all(np.all(np.isfinite(r["gate_scores"])) for s in singles for r in s.values()),
          "single runs with a router store a finite router score per question")

    table = {"STEM": [3, 1, 1], "humanities": [0, 1, 0]}
    default = [1, 1, 2]
    cases = [
        ("uniform", "gate:\n  policy: uniform\n  top_k: 2\n", dict(k=2)),
        ("static", "gate:\n  policy: static\n  weights: [1, 3, 2]\n", dict(static=[1, 3, 2])),
        ("table", "gate:\n  policy: table\n  table:\n    STEM: [3, 1, 1]\n    humanities: [0, 1, 0]\n"
                  "  default: [1, 1, 2]\n", dict(table=table, default=default)),
        ("entropy", "gate:\n  policy: entropy\n  temperature: 0.5\n", dict(t=0.5)),
        ("entropy top-2", "gate:\n  policy: entropy\n  temperature: 0.5\n  top_k: 2\n", dict(t=0.5, k=2)),
        ("router", "gate:\n  policy: router\n  temperature: 0.05\n" + router_yaml([0, 1, 2]), dict(t=0.05)),
    ]
    mixes = {}
    for name, yaml, kw in cases:
        policy = name.split()[0]
        cfg = write(os.path.join(tmp, f"{policy}_{len(mixes)}.yaml"), yaml)
        out = os.path.join(tmp, f"mix_{len(mixes)}.h5")
        run(binary, 3, EXPERTS, out, config=cfg)
        rows, attrs = load(out)
        mixes[name] = rows
        check(text(attrs["gate_policy"]) == policy, f"{name}: gate_policy attribute is {policy}")
        check(f"policy: {policy}" in text(attrs["gate_config"]), f"{name}: gate_config records the gate")
        # Entropies and router scores carry the forward pass's float rounding (a prompt's logits and hidden
        # states agree across runs within ~1e-7 relative), which the softmax turns into ~1e-6 in the weights.
        tol = 1e-5 if policy in ("router", "entropy") else 1e-6
        compare_to_singles(name, rows, singles,
                           lambda key, per, p=policy, kw=kw: policy_weights(p, key, per, **kw), tol)
        if policy == "router":
            d = max(float(np.max(np.abs(rows[k]["gate_scores"] - np.array([s[k]["gate_scores"][0] for s in singles]))))
                    for k in rows)
            check(d <= 1e-5, f"router: the run's gate_scores equal each expert's own (max diff {d:.2e})")
        else:
            check(all(np.all(np.isnan(r["gate_scores"])) for r in rows.values()),
                  f"{name}: gate_scores are NaN without a router")

    # Router modes without a forward pass over the prompts: cheap_embed (mean token embeddings) must
    # give each expert the score its single run gives it; random (a seeded vector per expert index)
    # is the same for one and two replica groups.
    embed_singles = []
    for i, m in enumerate(EXPERTS):
        cfg = write(os.path.join(tmp, f"embed_{m}.yaml"), "gate:\n  policy: router\n" + router_yaml([i], "cheap_embed"))
        out = os.path.join(tmp, f"embed_{m}.h5")
        run(binary, 1, [m], out, config=cfg)
        embed_singles.append(load(out)[0])
    cfg = write(os.path.join(tmp, "embed.yaml"),
                "gate:\n  policy: router\n  temperature: 0.02\n" + router_yaml([0, 1, 2], "cheap_embed"))
    out = os.path.join(tmp, "mix_embed.h5")
    run(binary, 3, EXPERTS, out, config=cfg)
    rows = load(out)[0]
    exact = all(np.array_equal(r["gate_scores"], np.array([s[k]["gate_scores"][0] for s in embed_singles]))
                for k, r in rows.items())
    check(exact, "router cheap_embed: each expert's score equals its single run's, exactly")
    compare_to_singles("router cheap_embed", rows, embed_singles,
                       lambda key, per: policy_weights("router", key, per, t=0.02), 1e-6)
    random_rows = []
    for ranks in (3, 6):
        cfg = write(os.path.join(tmp, "random.yaml"), "gate:\n  policy: router\n  temperature: 0.05\n" +
                    router_yaml([], "random"))
        out = os.path.join(tmp, f"mix_random{ranks}.h5")
        run(binary, ranks, EXPERTS, out, config=cfg)
        random_rows.append(load(out)[0])
    a, b = random_rows
    d = max(float(np.max(np.abs(a[k]["gate_scores"] - b[k]["gate_scores"]))) for k in a)
    check(sorted(a) == sorted(b) and d <= 1e-6, f"router random: -n 6 scores equal -n 3 (max diff {d:.1e})")
    d = max(float(np.max(np.abs(softmax(r["gate_scores"], 0.05) - r["weights"]))) for r in a.values())
    check(all(np.all(np.isfinite(r["gate_scores"])) for r in a.values()) and d <= 1e-6,
          f"router random: weights are softmax(scores / T) (max diff {d:.1e})")
    check(len({tuple(np.round(r["gate_scores"], 6)) for r in a.values()}) > 1, "router random: scores vary by question")

    # Retrieval of Experts: each expert's exemplars are another split's rows of "its" subject (dev);
    # a question's score is the mean cosine of its 2 nearest exemplars.
    dev = [os.path.join(DATA, "dev", f"{s}_dev.csv") for s in ("astronomy", "nutrition", "philosophy")]

    def retrieval_yaml(indices):
        out = "  retrieval:\n    neighbours: 2\n    experts:\n"
        for i in indices:
            out += f"      - exemplars_file: {dev[i]}\n"
        return out

    ret_singles = []
    for i, m in enumerate(EXPERTS):
        cfg = write(os.path.join(tmp, f"ret_{m}.yaml"), "gate:\n  policy: retrieval\n" + retrieval_yaml([i]))
        out = os.path.join(tmp, f"ret_{m}.h5")
        run(binary, 1, [m], out, config=cfg)
        ret_singles.append(load(out)[0])
    cfg = write(os.path.join(tmp, "ret.yaml"), "gate:\n  policy: retrieval\n  temperature: 0.05\n" + retrieval_yaml([0, 1, 2]))
    out = os.path.join(tmp, "mix_ret.h5")
    run(binary, 3, EXPERTS, out, config=cfg)
    rows, attrs = load(out)
    check("exemplars: [" in text(attrs["gate_config"]) and "exemplars_file" not in text(attrs["gate_config"]),
          "retrieval: the exemplar texts are inlined in gate_config")
    d = max(float(np.max(np.abs(r["gate_scores"] - np.array([s[k]["gate_scores"][0] for s in ret_singles]))))
            for k, r in rows.items())
    check(d <= 1e-5, f"retrieval: the run's gate_scores equal each expert's own (max diff {d:.2e})")
    compare_to_singles("retrieval", rows, ret_singles,
                       lambda key, per: policy_weights("router", key, per, t=0.05), 1e-5)
    # Offline: another temperature and top_k from the stored scores.
    off = os.path.join(tmp, "ret_top1.h5")
    tool(binary, "combine", out, "--gate", "retrieval", "--gate-temperature", "0.5", "--gate-top-k", "1",
         "--output", off)
    d = max(float(np.max(np.abs(r["weights"] - top_k(softmax(r["gate_scores"], 0.5), 1)))) for r in load(off)[0].values())
    check(d == 0.0, "retrieval: combine re-routes top-1 from the stored scores")

    # Two replica groups give the same answers as one.
    cfg = write(os.path.join(tmp, "entropy6.yaml"), cases[3][1])
    out = os.path.join(tmp, "mix_entropy6.h5")
    run(binary, 6, EXPERTS, out, config=cfg)
    rows6 = load(out)[0]
    d = max(float(np.nanmax(np.abs(rows6[k][c] - mixes["entropy"][k][c])))
            for k in rows6 for c in ("weights", "mixture_letter_probs"))
    check(sorted(rows6) == sorted(mixes["entropy"]) and d <= 1e-6, f"entropy: -n 6 equals -n 3 (max diff {d:.2e})")

    # Hard routing: top_k 1 on a gate that always picks expert j is expert j, exactly.
    for j, yaml in [(1, "gate:\n  policy: static\n  weights: [1, 3, 2]\n  top_k: 1\n"),
                    (2, "gate:\n  policy: table\n  by: subject\n  table: {}\n  default: [0.2, 0.3, 0.5]\n"
                        "  top_k: 1\n")]:
        cfg = write(os.path.join(tmp, f"hard{j}.yaml"), yaml)
        out = os.path.join(tmp, f"hard{j}.h5")
        run(binary, 3, EXPERTS, out, config=cfg)
        rows = load(out)[0]
        exact = all(
            np.array_equal(r["weights"], np.eye(3, dtype=np.float32)[j]) and
            np.array_equal(r["mixture_letter_probs"], r["expert_letter_probs"][j], equal_nan=True) and
            np.array_equal(r["mixture_choice_probs"], r["expert_choice_probs"][j], equal_nan=True) and
            r["prediction"] == r["expert_prediction"][j] and r["correct"] == r["expert_correct"][j] and
            r["mixture_vocab_choice"] == r["expert_vocab_choice"][j] and
            r["mixture_entropy"] == r["expert_entropy"][j]
            for r in rows.values())
        check(exact, f"top_k 1 always on expert {j}: every mixture value is expert {j}'s own, bit for bit")
        own = all(r["prediction"] == singles[j][k]["expert_prediction"][0] for k, r in rows.items())
        check(own, f"top_k 1 always on expert {j}: predictions equal expert {j}'s single-process run")
    # Router with top_k 1: each question goes to its best-scoring expert alone.
    cfg = write(os.path.join(tmp, "router1.yaml"), cases[5][1] + "  top_k: 1\n")
    out = os.path.join(tmp, "router1.h5")
    run(binary, 3, EXPERTS, out, config=cfg)
    rows = load(out)[0]
    ok = True
    for k, r in rows.items():
        j = int(np.argmax(r["gate_scores"]))
        ok &= r["weights"][j] == 1.0 and np.array_equal(r["mixture_letter_probs"], r["expert_letter_probs"][j],
                                                          equal_nan=True)
    check(ok, "router top_k 1: each question is its best-scoring expert's, exactly")
    chosen = {int(np.argmax(r["weights"])) for r in rows.values()}
    print(f"     router top_k 1 chose experts {sorted(chosen)}")
    # The summary group's routing table: overall row from the rows themselves.
    with h5py.File(out, "r") as f:
        g = f["summary/routing"]
        w = np.array([r["weights"] for r in rows.values()])
        top = np.argmax(w, axis=1)
        right = np.array([r["expert_correct"][t] for r, t in zip(rows.values(), top)])
        ok = (text(g["names"][0]) == "overall" and int(g["n"][0]) == len(rows) and
              np.allclose(g["mean_weight"][0], w.mean(axis=0)) and
              np.allclose(g["top1_share"][0], np.bincount(top, minlength=3) / len(rows)) and
              int(g["gate_top1_correct"][0]) == int(right.sum()) and
              int(g["oracle_correct"][0]) == int(sum(r["expert_correct"].any() for r in rows.values())))
    check(ok, "summary/routing: overall mean weight, top-1 share, gate top-1 and oracle counts")


def same_numbers(a, b, what, tol=1e-6):
    check(sorted(a) == sorted(b), f"{what}: same questions")
    worst, first = 0.0, ""
    for key in a:
        for c in ("weights", "mixture_letter_probs", "mixture_choice_probs", "mixture_letter_mass"):
            d = float(np.nanmax(np.abs(np.asarray(a[key][c], np.float64) - np.asarray(b[key][c], np.float64))))
            if d > worst:
                worst, first = d, f"{key} {c}"
        for c in ("prediction", "correct", "expert_prediction", "expert_correct"):
            if not np.array_equal(a[key][c], b[key][c]):
                worst, first = max(worst, 1.0), f"{key} {c}"
    check(worst <= tol, f"{what}: equal within {tol} (max diff {worst:.2e}{' at ' + first if first else ''})")


def combine(binary, tmp):
    # One run with every expert's router scores stored (policy uniform), then each gate twice:
    # online, and recombined from the stored values.
    base_cfg = write(os.path.join(tmp, "base.yaml"), "gate:\n  policy: uniform\n" + router_yaml([0, 1, 2]))
    base = os.path.join(tmp, "base.h5")
    run(binary, 3, EXPERTS, base, config=base_cfg)
    gates = {
        "mean": "mode: mean\n",
        "weighted": "mode: weighted\nweights: [0.2, 0.5, 0.3]\n",
        "static top-1": "gate:\n  policy: static\n  weights: [1, 3, 2]\n  top_k: 1\n",
        "table": "gate:\n  policy: table\n  by: subject\n  table:\n    astronomy: [5, 1, 1]\n    nutrition: [0, 1, 1]\n"
                 "  default: [1, 2, 1]\n  top_k: 2\n",
        "entropy": "gate:\n  policy: entropy\n  temperature: 0.3\n",
        "router": "gate:\n  policy: router\n  temperature: 0.05\n  top_k: 2\n" + router_yaml([0, 1, 2]),
    }
    for name, yaml in gates.items():
        cfg = write(os.path.join(tmp, f"gate_{len(name)}_{name[:3]}.yaml"), yaml)
        online = os.path.join(tmp, f"online_{name[:5]}.h5")
        run(binary, 3, EXPERTS, online, config=cfg)
        offline = os.path.join(tmp, f"offline_{name[:5]}.h5")
        tool(binary, "combine", base, "--config", cfg, "--output", offline)
        a, attrs = load(offline)
        same_numbers(a, load(online)[0], f"combine {name} vs the online run")
        check(text(attrs["combined_from"]) == base, f"combine {name}: combined_from names the source")
        if name == "static top-1":
            exact = all(r["mixture_vocab_choice"] == r["expert_vocab_choice"][1] and
                        r["mixture_entropy"] == r["expert_entropy"][1] for r in a.values())
            check(exact, "combine static top-1: one-hot rows keep the expert's entropy and vocabulary argmax")
    # The router gate recombined with only the stored scores (no router section in the config).
    cfg = write(os.path.join(tmp, "router_noprompts.yaml"), "gate:\n  policy: router\n  temperature: 0.05\n  top_k: 2\n")
    offline = os.path.join(tmp, "offline_router2.h5")
    tool(binary, "combine", base, "--config", cfg, "--output", offline)
    same_numbers(load(offline)[0], load(os.path.join(tmp, "online_route.h5"))[0], "combine router from stored scores")
    rep = tool(binary, "report", offline)
    check("routing (gate router, top_k 2)" in rep.stdout and "gate top-1" in rep.stdout,
          "report of a combined gated file has the routing section")

    # Refusals.
    p = tool(binary, "combine", base, "--mode", "geometric", "--output", os.path.join(tmp, "geo.h5"), expect_ok=False)
    check(p.returncode != 0 and "geometric pooling over the full vocabulary" in p.stdout,
          "combine refuses geometric full-vocabulary pooling, saying why")
    plain = os.path.join(tmp, "plain.h5")
    run(binary, 3, EXPERTS, plain)
    p = tool(binary, "combine", plain, "--gate", "router", "--output", os.path.join(tmp, "r.h5"), expect_ok=False)
    check(p.returncode != 0 and "router scores come from the experts' forward passes" in p.stdout,
          "combine refuses a router gate on a file without router scores")
    other = write(os.path.join(tmp, "router_other.yaml"),
                  "gate:\n  policy: router\n" + router_yaml([2, 1, 0]))
    p = tool(binary, "combine", base, "--config", other, "--output", os.path.join(tmp, "r2.h5"), expect_ok=False)
    check(p.returncode != 0 and "router section differs" in p.stdout,
          "combine refuses router prompts other than the run's")
    p = tool(binary, "combine", base, "--gate", "uniform", "--scoring", "vocab", "--output",
             os.path.join(tmp, "v.h5"), expect_ok=False)
    check(p.returncode != 0 and "vocab scoring of a full-vocabulary mixture" in p.stdout,
          "combine refuses vocab scoring of a soft full-vocabulary mixture")


def calibrate(binary, tmp):
    val = os.path.join(tmp, "val.h5")
    run(binary, 3, EXPERTS, val, split="val")
    table = os.path.join(tmp, "table.yaml")
    tool(binary, "calibrate", val, "--output", table, "--gate-temperature", "0.2")
    rows, attrs = load(val)
    # The closed form: softmax_e(((correct + 1) / (n + 2)) / T) per category.
    fit = {}
    for cat in set(CATEGORY.values()):
        corr = np.array([r["expert_correct"] for k, r in rows.items() if CATEGORY[k[0]] == cat])
        if len(corr):
            fit[cat] = softmax((corr.sum(axis=0) + 1) / (len(corr) + 2), 0.2)
    allc = np.array([r["expert_correct"] for r in rows.values()])
    default = softmax((allc.sum(axis=0) + 1) / (len(allc) + 2), 0.2)

    # The file parses back to the same numbers (17 significant digits: exact doubles) ...
    import re
    written = open(table).read()
    parsed = {m.group(1): np.array([float(x) for x in m.group(2).split(",")])
              for m in re.finditer(r'^    "([^"]+)": \[([^\]]*)\]$', written, re.M)}
    d = max(float(np.max(np.abs(parsed[c] - fit[c]))) for c in fit)
    check(sorted(parsed) == sorted(fit) and d <= 1e-12, f"calibrate: table rows are the closed-form fit (max diff {d:.1e})")
    check("fitted_on" in written and '"val"' in written, "calibrate: the table records the split it was fitted on")

    # ... and drives a test run: each question's weights are its category's row.
    out = os.path.join(tmp, "calibrated_test.h5")
    run(binary, 3, EXPERTS, out, config=table)
    rows, attrs = load(out)
    d = max(float(np.max(np.abs(r["weights"] - fit.get(CATEGORY[k[0]], default)))) for k, r in rows.items())
    check(d <= 1e-6, f"calibrated table applied per category (max diff {d:.1e})")
    # policy calibrated fits the same table inside the job, from the val file.
    cfg = write(os.path.join(tmp, "calibrated.yaml"),
                f"gate:\n  policy: calibrated\n  temperature: 0.2\n  calibration_file: {val}\n")
    out2 = os.path.join(tmp, "calibrated_job.h5")
    run(binary, 3, EXPERTS, out2, config=cfg)
    rows2, attrs2 = load(out2)
    d = max(float(np.max(np.abs(rows2[k]["weights"] - rows[k]["weights"]))) for k in rows)
    check(d == 0.0, "policy calibrated in the job equals the calibrate command's table")
    check("table:" in text(attrs2["gate_config"]), "the fitted table is recorded in gate_config")
    # Resume compares the gate: another temperature is refused, naming gate_config.
    p = run(binary, 3, EXPERTS, out2, "--resume", "--gate-temperature", "0.3", config=cfg, expect_ok=False)
    check(p.returncode != 0 and "gate_config" in p.stdout, "resume with another gate is refused, naming gate_config")
    # Fitting on the evaluated split is refused.
    test_run = os.path.join(tmp, "test_mean.h5")
    run(binary, 3, EXPERTS, test_run)
    bad = os.path.join(tmp, "bad_table.yaml")
    tool(binary, "calibrate", test_run, "--output", bad)
    p = run(binary, 3, EXPERTS, os.path.join(tmp, "bad.h5"), config=bad, expect_ok=False)
    check(p.returncode != 0 and "which this run evaluates" in p.stdout, "a table fitted on the evaluated split is refused")
    cfg = write(os.path.join(tmp, "bad_calibrated.yaml"), f"gate:\n  policy: calibrated\n  calibration_file: {test_run}\n")
    p = run(binary, 3, EXPERTS, os.path.join(tmp, "bad2.h5"), config=cfg, expect_ok=False)
    check(p.returncode != 0 and "the split this run evaluates" in p.stdout,
          "policy calibrated refuses a calibration file of the evaluated split")
    # Offline too: combine with the val table on the test run equals the online calibrated run.
    off = os.path.join(tmp, "calibrated_offline.h5")
    tool(binary, "combine", test_run, "--config", table, "--output", off)
    same_numbers(load(off)[0], rows, "combine with the calibrated table vs the online run")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["policies", "combine", "calibrate"])
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"policies": policies, "combine": combine, "calibrate": calibrate}[a.what](os.path.abspath(a.bin), tmp)
    print(f"{a.what}: {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
