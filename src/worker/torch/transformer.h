// The decoder-only transformers in libtorch: Llama / Mistral / Qwen2 (RMSNorm, rotary embeddings,
// grouped-query attention, SwiGLU, optional biases), Mixtral (the same with a sparse mixture of
// expert MLPs) and GPT-2 (learned positions, LayerNorm, GELU MLP).
//
// INTERNAL to moe_engine: this header includes ATen, so only src/worker/torch/*.cpp may include
// it; everything else uses the torch-free worker/expert.h.
//
// One Transformer class with per-layer options rather than a class per family: the families differ
// in a handful of places (norm type, position encoding, MLP kind, fused projections' biases,
// sliding windows), and new ones (Gemma3: (1 + w) norms, q/k norms, alternating local/global
// layers) add options, not copies of the forward.
//
// Layout: the residual stream is packed, [N, hidden] over the batch's real tokens only (padding
// is dropped), so norms, projections and MLPs never compute padding; only attention works on the
// padded [B, heads, T, head_dim] layout, where left padding keeps every prompt's last token at
// position T-1. Projections that read the same input are fused at load: q/k/v into one matrix,
// gate/up into one.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "worker/model_config.h"
#include "worker/weights.h"

namespace moe {

struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out], or undefined
  at::Tensor operator()(const at::Tensor& x) const;  // [N, in] -> [N, out]
};

struct Norm {
  at::Tensor weight;
  at::Tensor bias;  // LayerNorm only
  double eps = 1e-6;
  bool rms = true;  // RMSNorm (Llama family) or LayerNorm (GPT-2)
  // Gemma: `weight` holds 1 + w in float32 and scales the float32 normalised values before the
  // cast back (Llama casts first, then scales in the run dtype).
  bool scaleInFloat = false;
  bool defined() const { return weight.defined(); }
  at::Tensor operator()(const at::Tensor& x) const;
};

struct Mlp {
  bool gated = true;  // act(gate(x)) * up(x) with gate/up fused in `in`; else act(in(x))
  Activation act = Activation::Silu;
  int64_t width = 0;  // intermediate size
  Linear in;          // [2 * width, hidden] gated (gate rows first), [width, hidden] otherwise
  Linear down;        // [hidden, width]
  at::Tensor operator()(const at::Tensor& x) const;
};

// transformers' MixtralSparseMoeBlock: router -> softmax (float32) -> top-k -> weights renormalised
// to sum to 1 -> the chosen experts' outputs, weighted.
struct SparseMoe {
  Linear router;  // [experts, hidden], no bias
  std::vector<Mlp> experts;
  int64_t topK = 2;
  // x [N, hidden] -> [N, hidden]; `selected` receives the chosen experts, [N, topK] int64.
  at::Tensor operator()(const at::Tensor& x, at::Tensor& selected) const;
};

struct DecoderLayer {
  Norm attnNorm;
  Linear qkv;  // [(heads + 2 * kvHeads) * headDim, hidden]
  Norm qNorm, kNorm;  // Gemma 3: per-head RMSNorm of queries and keys [headDim], else undefined
  Linear out;  // [hidden, heads * headDim]
  Norm postAttnNorm;  // Gemma 3: on the attention output before the residual add, else undefined
  Norm mlpNorm;
  Norm postMlpNorm;   // Gemma 3: on the MLP output before the residual add, else undefined
  bool localRope = false;  // Gemma 3 sliding layers: the local rope base
  Mlp mlp;         // dense models
  SparseMoe moe;   // Mixtral (experts non-empty)
  int64_t window = 0;  // sliding window in keys (0 = full causal)
  double scale = 1.0;  // attention score scale
};

// Keys and values a layer computed for earlier positions of the same rows (for a cache of a shared
// prompt prefix): [B, kvHeads, P, headDim] each.
struct KeyValues {
  at::Tensor key;
  at::Tensor value;
};

// Scaled dot-product attention of one layer with grouped-query heads (query head h reads KV head
// h / (heads / kvHeads), as transformers' repeat_kv), without materialising repeated keys.
// q [B, T, H, D], k and v [B, T, KVH, D] for the T new positions (the projections' layout);
// `past` (optional) prepends P earlier positions; mask [B, 1, T, P + T] additive (0 or -inf),
// causal and every row with at least one 0 (attentionMask); `window` > 0 is the sliding window the
// mask applies, so keys outside it are skipped, not only masked. `present` (optional) receives
// the keys/values of all P + T positions. Softmax in float32 whatever the run dtype, as
// transformers' eager attention. Returns [B, T, H * D].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     double scale, int64_t window, const KeyValues* past = nullptr, KeyValues* present = nullptr);

// The additive mask [B, 1, T, S] for T queries that are the last T of S keys, from positions
// (counted over real tokens), so it serves left-padded rows and rows whose padding sits between a
// shared prefix and their suffix alike: query i of row b (position queryPos[b, i], key index
// S - T + i) reads key j when keyReal[b, j] and keyPos[b, j] <= queryPos[b, i] (and, with
// window > 0, queryPos - keyPos < window). Every query also reads itself, so no row is all -inf
// (NaN-free softmax for padding queries, whose outputs are never used).
at::Tensor attentionMask(const at::Tensor& keyPos, const at::Tensor& keyReal, const at::Tensor& queryPos,
                         int64_t window, at::ScalarType dtype);

struct ForwardInput {
  at::Tensor ids;        // [B, T] int64, left-padded
  at::Tensor real;       // [B, T] bool, false on padding
  at::Tensor positions;  // [B, T] int64, counted over real tokens (from P with a past prefix)
  // A prefix of P tokens every row shares, computed before (positions 0..P-1): per layer its keys
  // and values [1, kvHeads, P, headDim]; null or empty = none.
  const std::vector<KeyValues>* past = nullptr;
  // Receives per layer the keys and values of all positions ([B, kvHeads, P + T, headDim]).
  std::vector<KeyValues>* present = nullptr;
  bool wantLogits = true;  // false: only `present` (and router selections) are wanted
  bool wantSelections = false;  // Mixtral: fill ForwardOutput::routerSelected
};

struct ForwardOutput {
  at::Tensor hidden;        // [B, hidden] at the last position, after the final norm (run dtype)
  at::Tensor logits;        // [B, vocab] run dtype (widening to float32 is exact)
  at::Tensor routerCounts;  // [B, layers, experts] int64 (Mixtral), else undefined
  at::Tensor routerSelected;  // [N real tokens, layers, topK] int64 when wantSelections (Mixtral)
};

class Transformer {
 public:
  // Reads and checks every tensor the config implies, converting each to `dtype` on `device` as it
  // is read. Throws moe::Error naming the tensor, the expected and found shapes and the origin.
  Transformer(const ModelConfig& config, const WeightSource& weights, at::Device device, at::ScalarType dtype);

  ForwardOutput forward(const ForwardInput& in) const;

  const ModelConfig& config() const { return config_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }
  // Bytes of all parameters (shared tensors counted once).
  int64_t parameterBytes() const;

 private:
  // Rotary cos/sin [N, 1, headDim] (run dtype) for the given positions [N].
  std::pair<at::Tensor, at::Tensor> rotary(const at::Tensor& positions, const at::Tensor& invFreq) const;

  ModelConfig config_;
  at::Device device_;
  at::ScalarType dtype_;
  at::Tensor embed_;      // [vocab, hidden]
  at::Tensor positions_;  // GPT-2 learned positions [maxPositions, hidden], else undefined
  at::Tensor invFreq_;    // rotary inverse frequencies [headDim / 2] float32, else undefined
  at::Tensor invFreqLocal_;  // Gemma 3: the sliding layers' (rope_local_base_freq), else undefined
  at::Tensor embedScale_;    // Gemma 3: sqrt(hidden) as a run-dtype scalar, else undefined
  std::vector<DecoderLayer> layers_;
  Norm finalNorm_;
  at::Tensor lmHead_;  // [vocab, hidden]; the embedding itself when tied
};

}  // namespace moe
