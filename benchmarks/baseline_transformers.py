#!/usr/bin/env python3
"""The original study's way, side by side with moe-dist: one Python process, for each question and
each model a Hugging Face transformers forward pass of the full prompt (batch 1), the models'
next-token distributions averaged, the answer the argmax over the answer letters.

    /work/venv-torch/bin/python benchmarks/baseline_transformers.py RUN.h5 [--bin build/moe-dist] [--threads N]

Everything comes from moe-dist's results file RUN.h5, so both evaluate the same thing: the
checkpoints (root attribute `models`: Hugging Face folders, or .gguf files loaded with
transformers' `gguf_file`), the questions (its rows), the split, shots and prompt style, and the
prompts themselves (`moe-dist prompts --json`, shots dropped from the end while a prompt is longer
than the model's context, as moe-dist and MMLU's evaluate.py do). It checks that its token counts
equal the file's `prompt_tokens`, that its answers equal the file's `prediction` and
`expert_prediction` (letters scoring; mean or weighted mixtures), and prints questions/s of both
and their ratio. moe-dist's rate is over its ranks' work loop (the slowest rank's `wall_seconds`
in group `ranks`); the baseline's over its question loop; model loading is excluded from both.
--threads defaults to what the moe-dist run had in total (ranks x threads per rank, at most the
machine's CPUs). Exit status 1 when an answer or a token count differs.
Needs Python with torch, transformers (and gguf for .gguf checkpoints), h5py, numpy.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def load_model(path):
    kwargs = {}
    if not path.endswith(".gguf"):
        # transformers 4.51 builds Qwen2's attention mask with `sliding_window` even when
        # `use_sliding_window` is false (the config's own switch, which moe-dist honours): clear it then.
        config = AutoConfig.from_pretrained(path)
        if getattr(config, "use_sliding_window", True) is False and getattr(config, "sliding_window", None):
            config.sliding_window = None
            kwargs["config"] = config
    if path.endswith(".gguf"):
        folder, name = os.path.split(os.path.abspath(path))
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32, attn_implementation="eager")
        # transformers' GGUF tokenizer conversion adds a BOS token whatever the file says; the file's
        # tokenizer.ggml.add_bos_token is what llama.cpp and moe-dist follow, so follow it here too.
        import gguf
        field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.add_bos_token")
        add_bos = bool(field.parts[field.data[0]][0]) if field is not None else True
        if not add_bos:
            plain = tok
            tok = lambda text: plain(text, add_special_tokens=False)  # noqa: E731
    elif os.path.exists(os.path.join(path, "tokenizer_config.json")):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager",
                                                     **kwargs)
    else:
        # tokenizer.json alone (the test fixtures): as the tokenizers library reads it, which is what
        # moe-dist reads; AutoTokenizer would pick a class by model type and add that class's BOS.
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"))
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager",
                                                     **kwargs)
    model.eval()
    cfg = model.config
    context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 2048
    return tok, model, int(context)


def letter_tokens(tok, choices):
    """The token of " X" continuing "...Answer:", as moe-dist and lm-evaluation-harness find it."""
    context = "Which is it?\nA. this\nB. that\nAnswer:"
    base = tok(context)["input_ids"]
    out = []
    for c in range(choices):
        ids = tok(context + " " + chr(ord("A") + c))["input_ids"]
        if ids[:len(base)] != base or len(ids) != len(base) + 1:
            raise SystemExit(f"baseline: the answer letter {chr(65 + c)} is not one token after 'Answer:'")
        out.append(ids[-1])
    return out


def prompts_for(binary, cfg, subjects, shots):
    cmd = [binary, "prompts", "--data", cfg["data_root"], "--split", cfg["split"], "--shots", str(shots),
           "--prompt-style", cfg["prompt_style"], "--subjects", *subjects, "--json"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"baseline: {' '.join(cmd)} failed: {p.stderr}")
    return {(q["subject"], int(q["index"])): q for q in json.loads(p.stdout)}


def yaml_int(config_yaml, key, default):
    m = re.search(rf"^{key}:\s*(-?\d+)\s*$", config_yaml, re.M)
    return int(m.group(1)) if m else default


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="moe-dist's results file of the same checkpoints and questions")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "moe-dist"), help="moe-dist (for `prompts`)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: the moe-dist run's total)")
    ap.add_argument("--json", help="write the numbers here too")
    a = ap.parse_args()

    with h5py.File(a.results, "r") as f:
        at = f.attrs
        cfg = {k: text(at[k]) for k in ("data_root", "split", "prompt_style", "mode", "scoring", "config_yaml")}
        shots = int(at["shots"])
        models = [text(m) for m in at["models"]]
        weights = [float(w) for w in at["weights"]]
        ranks = int(at["ranks"])
        names = [text(s) for s in f["subjects"][()]]
        keys = [(names[s], int(i)) for s, i in zip(f["subject"][()], f["index"][()])]
        num_choices = f["num_choices"][()]
        moe_pred = f["prediction"][()]
        moe_expert_pred = f["expert_prediction"][()]
        moe_tokens = f["prompt_tokens"][()]
        if "ranks" not in f:
            raise SystemExit("baseline: the results file has no `ranks` group (moe-dist older than cost accounting)")
        last = f["ranks/segment"][()] == f["ranks/segment"][()].max()
        moe_loop = float(f["ranks/wall_seconds"][()][last].max())
        moe_n = int(f["ranks/questions"][()][last & (f["ranks/expert"][()] == 0)].sum())
    if cfg["scoring"] != "letters" or cfg["mode"] not in ("mean", "weighted"):
        raise SystemExit(f"baseline: supports letters scoring with mean or weighted mixtures (file: {cfg['scoring']}, "
                         f"{cfg['mode']})")
    E = len(models)
    w = np.array(weights if cfg["mode"] == "weighted" and weights else [1.0] * E, dtype=np.float64)
    w /= w.sum()
    max_context = yaml_int(cfg["config_yaml"], "max_context", 0)
    run_threads = yaml_int(cfg["config_yaml"], "threads", 0)
    threads = a.threads or min(os.cpu_count(), ranks * (run_threads or os.cpu_count()))
    torch.set_num_threads(threads)

    loaded = [load_model(m) for m in models]
    letters = [letter_tokens(tok, int(num_choices.max())) for tok, _, _ in loaded]
    subjects = sorted({s for s, _ in keys})
    prompts = {shots: prompts_for(a.bin, cfg, subjects, shots)}

    answers, expert_answers, token_counts = [], [], []
    t0 = time.monotonic()
    with torch.inference_mode():
        for key, nc in zip(keys, num_choices):
            letter_probs = np.zeros((E, int(nc)))
            counts = []
            for e, (tok, model, context) in enumerate(loaded):
                limit = max_context or context
                k = min(shots, prompts[shots][key]["shots"])
                while True:
                    if k not in prompts:
                        prompts[k] = prompts_for(a.bin, cfg, subjects, k)
                    ids = tok(prompts[k][key]["prompt"])["input_ids"]
                    if len(ids) <= limit or k == 0:
                        break
                    k -= 1
                ids = ids[-limit:]
                logits = model(torch.tensor([ids])).logits[0, -1].float()
                p = torch.softmax(logits, dim=-1)
                letter_probs[e] = p[letters[e][:int(nc)]].double().numpy()
                counts.append(len(ids))
            mixture = (w[:, None] * letter_probs).sum(axis=0)
            answers.append(int(np.argmax(mixture)))
            expert_answers.append([int(np.argmax(letter_probs[e])) for e in range(E)])
            token_counts.append(counts)
    seconds = time.monotonic() - t0

    n = len(keys)
    answers, expert_answers, token_counts = np.array(answers), np.array(expert_answers), np.array(token_counts)
    same = int((answers == moe_pred).sum())
    same_expert = int((expert_answers == moe_expert_pred).sum())
    same_tokens = int((token_counts == moe_tokens).all(axis=1).sum())
    base_qps, moe_qps = n / seconds, moe_n / moe_loop
    print(f"baseline (transformers, batch 1, {threads} threads): {n} questions x {E} models in {seconds:.2f} s, "
          f"{base_qps:.3f} questions/s")
    print(f"moe-dist ({ranks} ranks): {moe_n} questions in {moe_loop:.2f} s (work loop), {moe_qps:.3f} questions/s")
    print(f"ratio moe-dist / baseline: {moe_qps / base_qps:.2f}x")
    print(f"answers equal: mixture {same}/{n}, experts {same_expert}/{n * E}; prompt token counts equal {same_tokens}/{n}")
    for i in np.nonzero(answers != moe_pred)[0][:5]:
        print(f"  differs: {keys[i]}: baseline {answers[i]}, moe-dist {moe_pred[i]}")
    for i in np.nonzero((token_counts != moe_tokens).any(axis=1))[0][:5]:
        print(f"  tokens differ: {keys[i]}: baseline {token_counts[i].tolist()}, moe-dist {moe_tokens[i].tolist()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results_file": os.path.abspath(a.results), "models": models, "questions": n, "threads": threads,
                       "baseline_seconds": seconds, "baseline_questions_per_second": base_qps,
                       "moe_dist_ranks": ranks, "moe_dist_loop_seconds": moe_loop,
                       "moe_dist_questions_per_second": moe_qps, "ratio": moe_qps / base_qps,
                       "answers_equal": same, "expert_answers_equal": same_expert, "token_counts_equal": same_tokens,
                       "torch": torch.__version__}, f, indent=2)
    ok = same == n and same_expert == n * E and same_tokens == n
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
