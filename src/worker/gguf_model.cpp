// GGUF metadata -> ModelConfig and GGUF tensors -> Hugging Face names (see gguf_model.h).
#include "worker/gguf_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"

namespace moe {
namespace {

// Typed reads of one architecture's keys ("<arch>.<suffix>"), every error naming the file and key.
class ArchKeys {
 public:
  ArchKeys(const GgufFile& f, std::string arch) : f_(f), arch_(std::move(arch)) {}

  std::string key(const std::string& suffix) const { return arch_ + "." + suffix; }
  bool has(const std::string& suffix) const { return f_.has(key(suffix)); }

  int64_t positive(const std::string& suffix) const {
    const std::string k = key(suffix);
    MOE_CHECK(f_.has(k), f_.name(), ": required key '", k, "' is missing");
    const int64_t v = f_.getInt(k);
    MOE_CHECK(v > 0, f_.name(), ": key '", k, "' must be positive, got ", v);
    return v;
  }
  double number(const std::string& suffix, double fallback) const {
    const GgufValue* v = f_.find(key(suffix));
    if (v == nullptr) return fallback;
    MOE_CHECK(!v->isArray() && (v->type() == GgufType::Float32 || v->type() == GgufType::Float64), f_.name(),
              ": key '", key(suffix), "' must be a float, got ", v->typeName());
    return v->floatAt(0);
  }

 private:
  const GgufFile& f_;
  std::string arch_;
};

int64_t optionalId(const GgufFile& f, const std::string& key) {
  return f.has(key) ? f.getInt(key) : -1;
}

// The keys llama and gemma3 share ("<arch>.embedding_length" ...), as transformers' GGUF loader
// maps them.
ModelConfig decoderConfig(const GgufFile& f, const std::string& arch) {
  ArchKeys k(f, arch);
  ModelConfig c;
  c.file = f.name();
  c.hiddenSize = k.positive("embedding_length");
  c.intermediateSize = k.positive("feed_forward_length");
  c.numLayers = k.positive("block_count");
  c.numHeads = k.positive("attention.head_count");
  c.numKvHeads = k.has("attention.head_count_kv") ? k.positive("attention.head_count_kv") : c.numHeads;
  c.maxPositions = k.positive("context_length");
  MOE_CHECK(c.numHeads % c.numKvHeads == 0, f.name(), ": ", k.key("attention.head_count"), " (", c.numHeads,
            ") is not a multiple of ", k.key("attention.head_count_kv"), " (", c.numKvHeads, ")");

  if (k.has("attention.key_length")) {
    c.headDim = k.positive("attention.key_length");
  } else if (k.has("rope.dimension_count")) {
    c.headDim = k.positive("rope.dimension_count");
  } else {
    MOE_CHECK(c.hiddenSize % c.numHeads == 0, f.name(), ": ", k.key("embedding_length"), " (", c.hiddenSize,
              ") is not a multiple of ", k.key("attention.head_count"), " (", c.numHeads, ")");
    c.headDim = c.hiddenSize / c.numHeads;
  }
  MOE_CHECK(c.headDim % 2 == 0, f.name(), ": head dimension ", c.headDim, " is odd (rotary needs pairs)");
  if (k.has("attention.value_length")) {
    const int64_t v = k.positive("attention.value_length");
    MOE_CHECK(v == c.headDim, f.name(), ": key '", k.key("attention.value_length"), "' = ", v,
              " differs from the key length ", c.headDim, " (not supported)");
  }
  if (k.has("rope.dimension_count")) {
    const int64_t r = k.positive("rope.dimension_count");
    MOE_CHECK(r == c.headDim, f.name(), ": key '", k.key("rope.dimension_count"), "' = ", r,
              ": partial rotary embeddings (head dimension ", c.headDim, ") are not supported");
  }
  if (k.has("expert_count")) {
    const int64_t e = f.getInt(k.key("expert_count"));
    MOE_CHECK(e == 0, f.name(), ": key '", k.key("expert_count"), "' = ", e, ": mixture-of-experts ", arch,
              " GGUF files are not supported");
  }

  c.normEps = k.number("attention.layer_norm_rms_epsilon", 1e-6);
  MOE_CHECK(c.normEps > 0, f.name(), ": key '", k.key("attention.layer_norm_rms_epsilon"), "' must be positive");
  c.ropeTheta = k.number("rope.freq_base", 10000.0);
  MOE_CHECK(c.ropeTheta > 0, f.name(), ": key '", k.key("rope.freq_base"), "' must be positive");
  if (k.has("rope.scaling.type")) {
    const std::string type = f.getString(k.key("rope.scaling.type"));
    if (type == "linear") {
      c.ropeScaling.type = RopeScalingType::Linear;
      c.ropeScaling.factor = k.number("rope.scaling.factor", 1.0);
      MOE_CHECK(c.ropeScaling.factor > 0, f.name(), ": key '", k.key("rope.scaling.factor"), "' must be positive");
    } else {
      MOE_CHECK(type == "none", f.name(), ": key '", k.key("rope.scaling.type"), "' = '", type,
                "': only none and linear rope scaling are supported");
    }
  }
  MOE_CHECK(f.findTensor("rope_freqs.weight") == nullptr, f.name(),
            ": tensor 'rope_freqs.weight' (rope frequency factors, Llama 3 scaling) is not supported");

  // Vocabulary: <arch>.vocab_size, else the tokenizer's token count, else the embedding's rows.
  const GgufTensorInfo* embed = f.findTensor("token_embd.weight");
  MOE_CHECK(embed != nullptr, f.name(), ": missing tensor 'token_embd.weight'");
  const int64_t embedRows = embed->nDims == 2 ? embed->ne[1] : -1;
  if (k.has("vocab_size")) {
    c.vocabSize = k.positive("vocab_size");
  } else if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens"); tokens != nullptr) {
    c.vocabSize = static_cast<int64_t>(tokens->count());
  } else {
    c.vocabSize = embedRows;
  }
  MOE_CHECK(c.vocabSize > 0 && embedRows == c.vocabSize, f.name(), ": tensor 'token_embd.weight' has ",
            embedRows, " rows, expected the vocabulary size ", c.vocabSize);

  c.tieWordEmbeddings = f.findTensor("output.weight") == nullptr;
  c.bosTokenId = optionalId(f, "tokenizer.ggml.bos_token_id");
  const int64_t eos = optionalId(f, "tokenizer.ggml.eos_token_id");
  if (eos >= 0) c.eosTokenIds.push_back(eos);
  return c;
}

ModelConfig llamaConfig(const GgufFile& f) {
  ModelConfig c = decoderConfig(f, "llama");
  c.architecture = "LlamaForCausalLM";
  c.modelType = "llama";
  c.family = ModelFamily::Llama;
  c.hiddenAct = Activation::Silu;
  return c;
}

// Gemma 3 as transformers' GGUF loader builds it: Gemma3TextConfig's defaults for what the file
// does not say (query_pre_attn_scalar 256, rope_local_base_freq 10000, a sliding-window pattern of
// 6: five local layers, then one global, as llama.cpp also hard-codes for gemma3), the window from
// gemma3.attention.sliding_window.
ModelConfig gemma3Config(const GgufFile& f) {
  ModelConfig c = decoderConfig(f, "gemma3");
  ArchKeys k(f, "gemma3");
  c.architecture = "Gemma3ForCausalLM";
  c.modelType = "gemma3_text";
  c.family = ModelFamily::Gemma3;
  c.hiddenAct = Activation::GeluTanh;
  c.embedScale = std::sqrt(static_cast<double>(c.hiddenSize));
  c.queryScale = 1.0 / std::sqrt(256.0);
  c.ropeLocalTheta = 10000.0;
  c.slidingWindow = k.has("attention.sliding_window") ? k.positive("attention.sliding_window") : 4096;
  c.layerSliding.assign(static_cast<size_t>(c.numLayers), 0);
  for (int64_t l = 0; l < c.numLayers; ++l) c.layerSliding[static_cast<size_t>(l)] = (l + 1) % 6 != 0;
  MOE_CHECK(!k.has("final_logit_softcapping") && !k.has("attn_logit_softcapping"), f.name(),
            ": logit soft-capping keys are not supported for gemma3 GGUF files");
  return c;
}

}  // namespace

ModelConfig modelConfigFromGguf(const GgufFile& file) {
  MOE_CHECK(file.has("general.architecture"), file.name(), ": required key 'general.architecture' is missing");
  const std::string arch = file.getString("general.architecture");
  if (arch == "llama") return llamaConfig(file);
  if (arch == "gemma3") return gemma3Config(file);
  MOE_THROW(file.name(), ": general.architecture '", arch, "' is not supported (supported: llama, gemma3)");
}

GgufModelWeights::GgufModelWeights(const std::string& path) : GgufModelWeights(GgufFile::open(path)) {}

GgufModelWeights::GgufModelWeights(GgufFile file)
    : weights_(std::move(file)), config_(modelConfigFromGguf(weights_.gguf())) {
  const GgufFile& f = weights_.gguf();
  const bool gemma = config_.family == ModelFamily::Gemma3;
  // Tensors the engine never reads would silently change the model: refuse them by name.
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::string& n = t.name;
    MOE_CHECK(n.size() < 5 || n.compare(n.size() - 5, 5, ".bias") != 0, f.name(), ": tensor '", n,
              "': biases are not supported for ", config_.modelType, " GGUF files");
  }
  // normShift: llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w; Hugging Face's
  // checkpoints (and so the engine) hold w, and transformers' GGUF loader subtracts 1 too.
  auto add = [&](const std::string& hf, const std::string& gguf, int64_t ropeHeads, bool required,
                 bool normShift = false) {
    if (!weights_.has(gguf)) {
      MOE_CHECK(!required, f.name(), ": missing tensor '", gguf, "' (for ", hf, ")");
      return;
    }
    TensorMeta m = weights_.meta(gguf);  // throws naming the tensor and type when unsupported
    m.name = hf;
    if (ropeHeads > 0) {
      MOE_CHECK(m.shape.size() == 2 && m.shape[0] % (2 * ropeHeads) == 0, f.name(), ": tensor '", gguf,
                "': ", m.shape.empty() ? 0 : m.shape[0], " rows cannot be split into ", ropeHeads,
                " rotary heads of even size");
    }
    order_.push_back(hf);
    entries_.emplace(hf, Entry{gguf, ropeHeads, normShift, std::move(m)});
  };
  // Llama files carry Q and K permuted for ggml's pairwise rope; Gemma's (NeoX-style rope) do not.
  const int64_t qHeads = gemma ? 0 : config_.numHeads, kHeads = gemma ? 0 : config_.numKvHeads;
  add("model.embed_tokens.weight", "token_embd.weight", 0, true);
  for (int64_t l = 0; l < config_.numLayers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const std::string h = "model.layers." + std::to_string(l) + ".";
    add(h + "input_layernorm.weight", b + "attn_norm.weight", 0, true, gemma);
    add(h + "self_attn.q_proj.weight", b + "attn_q.weight", qHeads, true);
    add(h + "self_attn.k_proj.weight", b + "attn_k.weight", kHeads, true);
    add(h + "self_attn.v_proj.weight", b + "attn_v.weight", 0, true);
    add(h + "self_attn.o_proj.weight", b + "attn_output.weight", 0, true);
    if (gemma) {
      add(h + "self_attn.q_norm.weight", b + "attn_q_norm.weight", 0, true, true);
      add(h + "self_attn.k_norm.weight", b + "attn_k_norm.weight", 0, true, true);
      add(h + "post_attention_layernorm.weight", b + "post_attention_norm.weight", 0, true, true);
      add(h + "pre_feedforward_layernorm.weight", b + "ffn_norm.weight", 0, true, true);
      add(h + "post_feedforward_layernorm.weight", b + "post_ffw_norm.weight", 0, true, true);
    } else {
      add(h + "post_attention_layernorm.weight", b + "ffn_norm.weight", 0, true);
    }
    add(h + "mlp.gate_proj.weight", b + "ffn_gate.weight", 0, true);
    add(h + "mlp.up_proj.weight", b + "ffn_up.weight", 0, true);
    add(h + "mlp.down_proj.weight", b + "ffn_down.weight", 0, true);
  }
  add("model.norm.weight", "output_norm.weight", 0, true, gemma);
  add("lm_head.weight", "output.weight", 0, false);
  // Any other tensor is one the engine would ignore: refuse it rather than compute another model.
  std::unordered_map<std::string, bool> used;
  for (const auto& [hf, e] : entries_) used[e.ggufName] = true;
  for (const GgufTensorInfo& t : f.tensors())
    MOE_CHECK(used.count(t.name) != 0, f.name(), ": tensor '", t.name, "' is not part of a ", config_.modelType,
              " model as moe-dist computes it (unsupported feature)");
}

const GgufModelWeights::Entry& GgufModelWeights::entry(const std::string& name) const {
  auto it = entries_.find(name);
  MOE_CHECK(it != entries_.end(), origin(), ": no tensor maps to '", name, "' (", config_.modelType,
            " GGUF file)");
  return it->second;
}

std::vector<std::string> GgufModelWeights::names() const { return order_; }
bool GgufModelWeights::has(const std::string& name) const { return entries_.count(name) != 0; }
const TensorMeta& GgufModelWeights::meta(const std::string& name) const { return entry(name).meta; }

void GgufModelWeights::readF32(const std::string& name, float* out) const {
  const Entry& e = entry(name);
  if (e.ropeHeads == 0) {
    weights_.readF32(e.ggufName, out);
    if (e.normShift) {
      int64_t n = 1;
      for (int64_t d : e.meta.shape) n *= d;
      for (int64_t i = 0; i < n; ++i) out[i] -= 1.0f;
    }
    return;
  }
  const int64_t rows = e.meta.shape[0];
  const int64_t cols = e.meta.shape[1];
  std::vector<float> stored(static_cast<size_t>(rows * cols));
  weights_.readF32(e.ggufName, stored.data());
  const int64_t headDim = rows / e.ropeHeads;
  const int64_t half = headDim / 2;
  for (int64_t h = 0; h < e.ropeHeads; ++h) {
    for (int64_t j = 0; j < 2; ++j) {
      for (int64_t i = 0; i < half; ++i) {
        const int64_t to = h * headDim + j * half + i;
        const int64_t from = h * headDim + 2 * i + j;
        std::memcpy(out + to * cols, stored.data() + from * cols, static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
}

const void* GgufModelWeights::rawData(const std::string& name) const {
  const Entry& e = entry(name);
  if (e.ropeHeads > 0 || e.normShift) return nullptr;
  return weights_.rawData(e.ggufName);
}

}  // namespace moe
