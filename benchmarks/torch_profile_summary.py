#!/usr/bin/env python3
"""Operator totals of a libtorch profile written by the engine (MOE_TORCH_PROFILE=PREFIX).

  MOE_TORCH_PROFILE=/tmp/prof build/benchmarks/bench_forward --model M ... --warmup 0 --iters 1
  python3 benchmarks/torch_profile_summary.py /tmp/prof.5.json [--top 20]

Prints the trace's wall span and, per operator, the summed duration and call count (nested
operators are counted inside their callers too: aten::softmax includes aten::_softmax).
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    with open(a.trace) as f:
        d = json.load(f)
    events = [e for e in (d if isinstance(d, list) else d.get("traceEvents", [])) if e.get("ph") == "X"]
    if not events:
        raise SystemExit(f"{a.trace}: no complete ('X') events")
    total, calls = collections.Counter(), collections.Counter()
    for e in events:
        total[e["name"]] += e["dur"]
        calls[e["name"]] += 1
    span = max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)
    print(f"{a.trace}: span {span / 1000:.1f} ms")
    for name, us in total.most_common(a.top):
        print(f"{us / 1000:10.1f} ms {100 * us / span:5.1f}% {calls[name]:7d}  {name}")


if __name__ == "__main__":
    main()
