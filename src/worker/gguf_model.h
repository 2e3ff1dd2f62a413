// A GGUF model as the engine sees a Hugging Face checkpoint: a ModelConfig from the file's metadata
// and its tensors under the Hugging Face names the engine loads (GgufModelWeights). Torch-free.
//
// Architectures (general.architecture):
//   llama   ModelConfig from llama.* keys (context_length, embedding_length, block_count,
//           feed_forward_length, attention.head_count(_kv), attention.key_length,
//           rope.dimension_count, rope.freq_base, attention.layer_norm_rms_epsilon, vocab_size,
//           rope.scaling.type/factor), as transformers' GGUF loader maps them.
//           Tensors: token_embd -> model.embed_tokens, blk.N.attn_norm/attn_q/attn_k/attn_v/
//           attn_output/ffn_norm/ffn_gate/ffn_up/ffn_down -> model.layers.N.*, output_norm ->
//           model.norm, output -> lm_head (absent: the embedding is tied, as transformers does).
//   gemma3  the same keys under gemma3.*, plus attention.sliding_window; Gemma3TextConfig's defaults
//           for the rest (query_pre_attn_scalar 256, local rope base 10000, five sliding layers
//           then one global). Tensors as llama's, plus attn_q_norm/attn_k_norm -> self_attn.q_norm/
//           k_norm, post_attention_norm -> post_attention_layernorm, ffn_norm ->
//           pre_feedforward_layernorm, post_ffw_norm -> post_feedforward_layernorm. Q and K are not
//           permuted (NeoX-style rope); every norm weight is stored as 1 + w and read back as w.
//   anything else is refused, naming the file and the value. A tensor the mapping does not use
//   is refused too (it would be silently ignored).
//
// Why Q and K are permuted: llama.cpp's converter reorders the rows of q_proj and k_proj within
// each head from Hugging Face's rotary layout (first half / second half of the head dimension) to
// interleaved pairs (convert_hf_to_gguf.py `permute`), because ggml's rope rotates adjacent pairs.
// The engine rotates halves, as transformers does, so readF32 undoes it (transformers'
// `_reverse_permute_weights`): HF row h*D + j*D/2 + i is GGUF row h*D + 2*i + j, heads = head_count
// for Q and head_count_kv for K. Those two tensors have no rawData (it would be in the wrong order).
//
// Features the engine cannot compute faithfully are refused at load with the file and the item:
// mixture-of-experts llama files (expert_count > 0), rope frequency tensors (rope_freqs: Llama 3
// scaling), rope scaling types other than none/linear, partial rotary dimensions, attention biases.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "worker/gguf.h"
#include "worker/model_config.h"
#include "worker/weights.h"

namespace moe {

// The ModelConfig a GGUF file describes (file: the GGUF's name). Throws moe::Error naming the
// file and the key for a missing or bad value, and the value for an unsupported architecture.
ModelConfig modelConfigFromGguf(const GgufFile& file);

// The tensors of a GGUF model under Hugging Face names, with Q/K rows restored to Hugging Face's
// order. names() lists only the mapped tensors; errors name the GGUF file and both names.
class GgufModelWeights : public WeightSource {
 public:
  explicit GgufModelWeights(const std::string& path);
  explicit GgufModelWeights(GgufFile file);

  const ModelConfig& config() const { return config_; }
  const GgufFile& gguf() const { return weights_.gguf(); }

  std::vector<std::string> names() const override;
  bool has(const std::string& name) const override;
  const TensorMeta& meta(const std::string& name) const override;
  void readF32(const std::string& name, float* out) const override;
  // nullptr for the permuted Q/K tensors and shifted Gemma norms (read them with readF32) and
  // block-quantized types.
  const void* rawData(const std::string& name) const override;
  const std::string& origin() const override { return weights_.origin(); }
  void release(const std::string& name) const override { weights_.release(entry(name).ggufName); }

 private:
  struct Entry {
    std::string ggufName;
    int64_t ropeHeads = 0;  // > 0: rows to un-permute in this many heads
    bool normShift = false; // Gemma norm stored as 1 + w: readF32 subtracts 1
    TensorMeta meta;        // under the Hugging Face name
  };
  const Entry& entry(const std::string& name) const;

  GgufWeights weights_;
  ModelConfig config_;
  std::vector<std::string> order_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace moe
