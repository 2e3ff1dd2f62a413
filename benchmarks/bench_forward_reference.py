#!/usr/bin/env python3
"""Reference prompt throughput for bench_forward: the same token ids through transformers or llama.cpp.

bench_forward --dump-ids FILE writes the prompts' token ids (5-shot MMLU, tokenized by moe-dist), so
every engine here runs exactly the tokens moe-dist runs, and no tokenizer is involved.

  transformers  (--engine transformers --model HF_FOLDER | FILE.gguf): float32 on CPU,
                torch.set_num_threads(N), attn_implementation eager or sdpa; batches of --batch
                prompts, left-padded with an attention mask and position ids counting real tokens
                (as moe-dist pads), logits of the last position only (logits_to_keep=1), no KV cache
                kept. A .gguf is dequantized to float32 by transformers' GGUF loader.
  llamacpp      (--engine llamacpp --model FILE.gguf), llama-cpp-python: one prompt at a time (its
                Python API evaluates one sequence), n_threads = n_threads_batch = N, the file's own
                weight types (a Q4 file runs in Q4), KV cache cleared between prompts.

One iteration = every prompt once; prompt tokens/s = real prompt tokens / iteration seconds (padding
not counted), mean and best over --iters after --warmup; tokens per CPU-second of the process too
(time.process_time), the figure least changed by other load on a shared machine. Before timing, every prompt's last-token
logits must be finite, and for transformers the logits of each prompt inside its batch must equal the
prompt alone within --tolerance (the same check bench_forward makes).

  bench_forward_reference.py --ids ids.json --engine transformers --model DIR --threads 1 --attn sdpa
  bench_forward_reference.py --ids ids.json --engine llamacpp --model m.gguf --threads 2 --json out.json
"""
import argparse
import json
import math
import os
import resource
import sys
import time


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def batches(prompts, b):
    return [prompts[i:i + b] for i in range(0, len(prompts), b)]


def run_transformers(args, prompts):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    kwargs = dict(torch_dtype=torch.float32, attn_implementation=args.attn)
    if args.model.endswith(".gguf"):
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(args.model)),
                                                     gguf_file=os.path.basename(args.model), **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model, **kwargs)
    model.eval()
    load = time.perf_counter() - t0
    engine = f"transformers {transformers.__version__}, torch {torch.__version__}, {args.attn}, fp32"

    def forward(batch):
        T = max(len(p) for p in batch)
        ids = torch.zeros((len(batch), T), dtype=torch.long)
        mask = torch.zeros((len(batch), T), dtype=torch.long)
        pos = torch.ones((len(batch), T), dtype=torch.long)
        for i, p in enumerate(batch):
            n = len(p)
            ids[i, T - n:] = torch.tensor(p, dtype=torch.long)
            mask[i, T - n:] = 1
            pos[i, T - n:] = torch.arange(n)
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=1)
        return out.logits[:, -1, :].float()

    # Validation: finite, and batch == alone.
    t0 = time.perf_counter()
    alone = [forward([p])[0] for p in prompts]
    worst = 0.0
    q = 0
    for b in batches(prompts, args.batch):
        lg = forward(b)
        for i in range(len(b)):
            if not torch.isfinite(lg[i]).all() or not torch.isfinite(alone[q]).all():
                sys.exit(f"bench_forward_reference: question {q}: logits are not finite")
            worst = max(worst, (lg[i] - alone[q]).abs().max().item())
            q += 1
    if worst > args.tolerance:
        sys.exit(f"bench_forward_reference: batch logits differ from single-prompt logits by {worst} > {args.tolerance}")
    validate = time.perf_counter() - t0

    def iteration():
        padded = 0
        for b in batches(prompts, args.batch):
            forward(b)
            padded += len(b) * max(len(p) for p in b)
        return padded

    return engine, load, validate, worst, iteration


def run_llamacpp(args, prompts):
    import llama_cpp
    from llama_cpp import Llama

    if not args.model.endswith(".gguf"):
        sys.exit("bench_forward_reference: --engine llamacpp needs a .gguf file")
    n_ctx = max(len(p) for p in prompts) + 16
    t0 = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=n_ctx, n_batch=max(512, n_ctx), n_ubatch=512,
                n_threads=args.threads, n_threads_batch=args.threads, logits_all=False, verbose=False)
    load = time.perf_counter() - t0
    engine = f"llama-cpp-python {llama_cpp.__version__}, n_batch {max(512, n_ctx)}, n_ubatch 512"

    def forward(p):
        llm.reset()  # n_tokens = 0: eval() then drops the whole KV cache before the prompt
        llm.eval(p)
        return llm.scores[llm.n_tokens - 1]

    t0 = time.perf_counter()
    for q, p in enumerate(prompts):
        lg = forward(p)
        if not all(math.isfinite(float(x)) for x in lg):
            sys.exit(f"bench_forward_reference: question {q}: llama.cpp logits are not finite")
    validate = time.perf_counter() - t0

    def iteration():
        for p in prompts:
            forward(p)
        return sum(len(p) for p in prompts)

    return engine, load, validate, 0.0, iteration


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", required=True, help="token ids written by bench_forward --dump-ids")
    ap.add_argument("--engine", required=True, choices=["transformers", "llamacpp"])
    ap.add_argument("--model", required=True, help="Hugging Face folder or .gguf file")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attn", default="sdpa", choices=["eager", "sdpa"], help="transformers only")
    ap.add_argument("--batch", type=int, default=0, help="default: the batch bench_forward used")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--json", help="write the result as JSON to this file ('-' = stdout)")
    args = ap.parse_args()

    with open(args.ids) as f:
        dump = json.load(f)
    prompts = [p["ids"] for p in dump["prompts"]]
    if not prompts:
        sys.exit("bench_forward_reference: no prompts in " + args.ids)
    args.batch = args.batch or dump["batch"]
    tokens = sum(len(p) for p in prompts)

    run = run_transformers if args.engine == "transformers" else run_llamacpp
    engine, load, validate, worst, iteration = run(args, prompts)
    times, cpu_times = [], []
    padded = tokens
    for it in range(args.warmup + args.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        padded = iteration()
        s, c = time.perf_counter() - t0, time.process_time() - c0
        if it >= args.warmup:
            times.append(s)
            cpu_times.append(c)
    mean = sum(times) / len(times)
    batch = args.batch if args.engine == "transformers" else 1
    result = {
        "tool": "bench_forward_reference", "engine": engine, "model": args.model, "threads": args.threads,
        "batch": batch, "questions": len(prompts), "prompt_tokens": tokens, "load_seconds": load,
        "validate_seconds": validate, "max_batch_vs_alone_diff": worst, "iter_seconds": times, "iter_cpu_seconds": cpu_times,
        "prompt_tokens_per_cpu_s": tokens / (sum(cpu_times) / len(cpu_times)),
        "prompt_tokens_per_s": tokens / mean, "prompt_tokens_per_s_best": tokens / min(times),
        "padded_tokens_per_s": padded / mean, "seconds_per_question": mean / len(prompts),
        "peak_rss_mib": peak_rss_mib(),
    }
    print(f"# {engine}; {len(prompts)} prompts, {tokens} tokens, batch {batch}, {args.threads} threads")
    print(f"threads {args.threads}  load_s {load:.2f}  prompt_tok/s {result['prompt_tokens_per_s']:.1f}  "
          f"best_tok/s {result['prompt_tokens_per_s_best']:.1f}  tok/cpu_s {result['prompt_tokens_per_cpu_s']:.1f}  s/question {result['seconds_per_question']:.4f}  "
          f"batch_diff {worst:.2e}  peak_MiB {result['peak_rss_mib']:.1f}")
    if args.json:
        text = json.dumps(result, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()
