#!/usr/bin/env python3
"""Plots of a moe-dist results file (h5py + matplotlib; Debian: python3-h5py python3-matplotlib).

  scripts/plot_results.py RUN.h5 [--out DIR] [--format png|svg|pdf]

writes
  DIR/NAME_accuracy.FMT  per-category accuracy bars (with binomial standard errors) for every
                         expert, the mixture and the oracle (any expert right), plus "overall";
  DIR/NAME_routing.FMT   the routing heat map: mean weight of each expert (columns) per subject
                         (rows), with each expert's top-1 share in the cell; for static weights
                         every row is the same, for a gate it shows where the questions went.
NAME is the file's name without .h5; DIR defaults to the file's folder. Computed from the
per-question rows (docs/results-format.md), so partial files plot too; accuracy uses the file's
stored correct / expert_correct columns (the run's scoring).
"""
import argparse
import os
import sys

import h5py
import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CATEGORY_ORDER = ["STEM", "humanities", "social sciences", "other"]


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load(path):
    with h5py.File(path, "r") as f:
        experts = [text(x) for x in f["experts"][:]]
        subjects = [text(x) for x in f["subjects"][:]]
        categories = [text(x) for x in f["subject_categories"][:]]
        n = min(f[k].shape[0] for k in ("subject", "correct", "expert_correct", "weights"))
        d = {
            "subject": f["subject"][:n],
            "correct": f["correct"][:n].astype(bool),
            "expert_correct": f["expert_correct"][:n].astype(bool),
            "weights": f["weights"][:n].astype(np.float64),
        }
        gate = text(f.attrs["gate_policy"]) if "gate_policy" in f.attrs else "none"
        top_k = int(f.attrs["gate_top_k"]) if "gate_top_k" in f.attrs else 0
        status = text(f.attrs["status"])
    return experts, subjects, categories, d, gate, top_k, status


def accuracy_plot(path, out, fmt):
    experts, subjects, categories, d, gate, top_k, status = load(path)
    columns = experts + ["mixture", "oracle"]
    right = np.column_stack([d["expert_correct"], d["correct"], d["expert_correct"].any(axis=1)])
    row_cat = np.array([categories[s] for s in d["subject"]])
    groups = [c for c in CATEGORY_ORDER if np.any(row_cat == c)]
    groups += sorted({c for c in row_cat if c not in CATEGORY_ORDER})
    labels = groups + ["overall"]
    masks = [row_cat == c for c in groups] + [np.ones(len(row_cat), bool)]
    acc = np.array([[right[m, j].mean() if m.any() else np.nan for j in range(len(columns))] for m in masks])
    n = np.array([m.sum() for m in masks])
    se = np.sqrt(acc * (1 - acc) / np.maximum(n, 1)[:, None])

    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(labels) + 2), 4.5))
    width = 0.8 / len(columns)
    x = np.arange(len(labels))
    for j, name in enumerate(columns):
        ax.bar(x + (j - (len(columns) - 1) / 2) * width, 100 * acc[:, j], width, yerr=100 * se[:, j], capsize=2,
               label=name, hatch="//" if name == "oracle" else None, alpha=0.6 if name == "oracle" else 1.0)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{l}\n(n={k})" for l, k in zip(labels, n)])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    title = os.path.basename(path) + (f" — gate {gate}" + (f", top-{top_k}" if top_k else "") if gate != "none" else "")
    ax.set_title(title + ("" if status == "complete" else " (partial)"))
    ax.legend(fontsize="small", ncol=min(len(columns), 5))
    fig.tight_layout()
    fig.savefig(out, format=fmt)
    plt.close(fig)


def routing_plot(path, out, fmt):
    experts, subjects, categories, d, gate, top_k, status = load(path)
    present = [i for i in range(len(subjects)) if np.any(d["subject"] == i)]
    mean_w = np.array([d["weights"][d["subject"] == i].mean(axis=0) for i in present])
    top = np.argmax(d["weights"], axis=1)  # ties: the lower index, as the report counts them
    share = np.array([[np.mean(top[d["subject"] == i] == e) for e in range(len(experts))] for i in present])
    label_width = max(len(f"{subjects[i]} ({categories[i]})") for i in present)
    fig, ax = plt.subplots(figsize=(2.5 + 0.08 * label_width + 1.2 * len(experts), 1.6 + 0.45 * len(present)))
    im = ax.imshow(mean_w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(experts)))
    ax.set_xticklabels(experts, rotation=30, ha="right")
    ax.set_yticks(range(len(present)))
    ax.set_yticklabels([f"{subjects[i]} ({categories[i]})" for i in present])
    for r in range(len(present)):
        for e in range(len(experts)):
            ax.text(e, r, f"{mean_w[r, e]:.2f}\n{100 * share[r, e]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if mean_w[r, e] < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="mean weight")
    ax.set_title(f"routing: gate {gate}" + (f", top-{top_k}" if top_k else ""), fontsize="medium")
    ax.set_xlabel("cell: mean weight, share of questions where the expert had the largest weight", fontsize="small")
    fig.tight_layout()
    fig.savefig(out, format=fmt)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="a moe-dist results file (.h5)")
    ap.add_argument("--out", help="output folder (default: the results file's)")
    ap.add_argument("--format", default="png", choices=["png", "svg", "pdf"])
    a = ap.parse_args()
    if not os.path.exists(a.results):
        sys.exit(f"plot_results: {a.results} does not exist")
    out_dir = a.out or os.path.dirname(os.path.abspath(a.results))
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(a.results))[0]
    acc = os.path.join(out_dir, f"{name}_accuracy.{a.format}")
    rout = os.path.join(out_dir, f"{name}_routing.{a.format}")
    accuracy_plot(a.results, acc, a.format)
    routing_plot(a.results, rout, a.format)
    print(acc)
    print(rout)


if __name__ == "__main__":
    main()
