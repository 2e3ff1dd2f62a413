#!/usr/bin/python3
"""Draws a bench_pipeline JSON (benchmarks/bench_pipeline.py): questions/s and prompt tokens/s per
configuration (E experts x R replicas), and the mean per-batch time split into wait, tokenize,
forward (the slowest expert), reduce and write.

    /usr/bin/python3 scripts/plot_bench.py bench_pipeline.json [--output bench_pipeline.png]
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PARTS = ["wait", "tokenize", "forward", "reduce", "write"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--output")
    a = ap.parse_args()
    with open(a.json) as f:
        doc = json.load(f)
    res = doc["results"]
    if not res:
        raise SystemExit(f"plot_bench: {a.json} has no results")
    labels = [r["config"] for r in res]
    x = range(len(res))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    qps = [r["questions_per_second"] for r in res]
    bars = ax1.bar(x, qps, color="#4477aa")
    ax1.set_xticks(list(x), labels)
    ax1.set_xlabel("experts x replica groups")
    ax1.set_ylabel("questions / s (work loop)")
    for b, r in zip(bars, res):
        ax1.annotate(f"{r['questions_per_second']:.2f} q/s\n{r['prompt_tokens_per_second']:.0f} tok/s",
                     (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    ax1.set_ylim(0, max(qps) * 1.3)
    ax1.set_title("throughput")
    bottom = [0.0] * len(res)
    colors = ["#bbbbbb", "#66ccee", "#4477aa", "#ee6677", "#228833"]
    for part, c in zip(PARTS, colors):
        v = [r["per_batch_seconds"][part] for r in res]
        ax2.bar(x, v, bottom=bottom, label=part, color=c)
        bottom = [b + y for b, y in zip(bottom, v)]
    ax2.set_xticks(list(x), labels)
    ax2.set_xlabel("experts x replica groups")
    ax2.set_ylabel("seconds per batch (mean, leader's view)")
    ax2.legend(fontsize=8)
    ax2.set_title("per-batch breakdown")
    s = doc["settings"]
    models = ", ".join(os.path.basename(m) for m in s["models"])
    fig.suptitle(f"moe-dist pipeline: {models}; {s['shots']}-shot, batch {s['batch_size']}, "
                 f"{s['threads_per_rank']} thread(s)/rank, {doc['machine']['cpus']} CPUs", fontsize=9)
    fig.tight_layout()
    out = a.output or os.path.splitext(a.json)[0] + ".png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
