#!/usr/bin/env python3
"""A random-weight checkpoint shaped like SmolLM-135M, for forward-pass benchmarks (not committed).

Writes a Hugging Face LlamaForCausalLM folder (config.json, model.safetensors in float32) with
SmolLM-135M's shape: 30 layers, hidden 576, intermediate 1536, 9 attention heads, 3 key/value heads,
vocabulary 49152, tied embeddings, 2048 positions, rope theta 10000, RMSNorm eps 1e-5 -- 134.5 M
parameters, 538 MB in float32. Weights are transformers' own initialisation (normal, std 0.02) from
a fixed seed, so the cost of a forward pass is that of the real model; its answers are noise.

With --tokenizer-gguf FILE (a SmolLM/SmolLM2 GGUF, same 49152-token vocabulary), tokenizer.json is
written too, converted by transformers from the file's metadata, so the folder is a complete model
for moe-dist; benchmarks pass the GGUF itself to bench_forward (--tokenizer) so that token ids come
from moe-dist's own GGUF tokenizer.

With --gguf-out FILE, the same weights are also written as a float32 GGUF (llama architecture,
tokenizer metadata copied from --tokenizer-gguf, Q/K rows permuted as llama.cpp's converter does),
so llama.cpp runs exactly this checkpoint in float32.

With --shape 360m or 1.7b the checkpoint has SmolLM-360M's or SmolLM-1.7B's shape instead (362 M
and 1.71 G parameters): how the engine's memory and speed scale with the model.

  /work/venv-torch/bin/python benchmarks/make_random_smollm.py --out /tmp/smollm-135m-random \\
      --tokenizer-gguf ~/.cache/moe-dist/models/smollm2-135m-instruct.gguf --gguf-out /tmp/smollm-135m-random.gguf
Needs torch and transformers (and the gguf package for --gguf-out).
"""
import argparse
import os
import sys


def permute(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute: HF rotary halves -> interleaved pairs.
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_gguf(model, cfg, src_gguf, out):
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(src_gguf)
    writer = gguf.GGUFWriter(out, "llama")
    L, H, KV = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads
    writer.add_name("smollm-135m-random")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(L)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(H)
    writer.add_head_count_kv(KV)
    writer.add_rope_dimension_count(cfg.hidden_size // H)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    # The tokenizer: every tokenizer.* key of the source file, as it is.
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[1]
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(field.parts[i]).decode("utf-8", errors="surrogateescape") for i in field.data]
            else:
                val = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_array(field.name, val)
        elif vtype == gguf.GGUFValueType.STRING:
            writer.add_string(field.name, bytes(field.parts[field.data[0]]).decode("utf-8"))
        else:
            writer.add_key_value(field.name, field.parts[field.data[0]].tolist()[0], vtype)

    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down"}
    for i in range(L):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for hf, gg in names.items():
        w = sd[hf]
        if hf.endswith("q_proj.weight"):
            w = permute(w, H)
        elif hf.endswith("k_proj.weight"):
            w = permute(w, KV)
        writer.add_tensor(gg, np.ascontiguousarray(w, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# SmolLM's sizes (HuggingFaceTB/SmolLM-135M, -360M, -1.7B config.json): all tied, vocabulary 49152.
SHAPES = {
    "135m": dict(hidden=576, intermediate=1536, layers=30, heads=9, kv_heads=3),
    "360m": dict(hidden=960, intermediate=2560, layers=32, heads=15, kv_heads=5),
    "1.7b": dict(hidden=2048, intermediate=8192, layers=24, heads=32, kv_heads=32),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/smollm-135m-random", help="output folder (created)")
    ap.add_argument("--seed", type=int, default=135)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="135m",
                    help="SmolLM size whose shape to use (default 135m; 360m and 1.7b measure how memory scales)")
    ap.add_argument("--tokenizer-gguf", help="SmolLM(2) GGUF whose tokenizer to write as tokenizer.json")
    ap.add_argument("--gguf-out", help="also write the weights as a float32 GGUF here (needs --tokenizer-gguf)")
    args = ap.parse_args()
    if args.gguf_out and not args.tokenizer_gguf:
        sys.exit("make_random_smollm: --gguf-out needs --tokenizer-gguf (the GGUF's tokenizer metadata)")

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = SHAPES[args.shape]
    cfg = LlamaConfig(vocab_size=49152, hidden_size=shape["hidden"], intermediate_size=shape["intermediate"],
                      num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                      num_key_value_heads=shape["kv_heads"], hidden_act="silu",
                      max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, initializer_range=0.02,
                      torch_dtype="float32", architectures=["LlamaForCausalLM"])
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(cfg).float().eval()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True, max_shard_size="4GB")
    params = sum(p.numel() for p in model.parameters())
    print(f"make_random_smollm: {args.out}: {params / 1e6:.1f} M parameters, {params * 4 / 1e6:.0f} MB in float32")
    if args.tokenizer_gguf:
        from transformers import AutoTokenizer
        g = os.path.abspath(os.path.expanduser(args.tokenizer_gguf))
        tok = AutoTokenizer.from_pretrained(os.path.dirname(g), gguf_file=os.path.basename(g))
        tok.save_pretrained(args.out)
        # A tokenizer loaded from GGUF saves the GGUF itself as its "vocab file": not a tokenizer.model.
        slow = os.path.join(args.out, "tokenizer.model")
        if os.path.exists(slow):
            os.remove(slow)
        print(f"make_random_smollm: tokenizer.json from {g}")
    if args.gguf_out:
        write_gguf(model, cfg, os.path.expanduser(args.tokenizer_gguf), args.gguf_out)
        print(f"make_random_smollm: {args.gguf_out}: float32 GGUF of the same weights")


if __name__ == "__main__":
    main()
