#include "worker/model_config.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"

namespace moe {

using Json = nlohmann::json;

const char* activationName(Activation a) {
  switch (a) {
    case Activation::Silu: return "silu";
    case Activation::GeluTanh: return "gelu_tanh";
    case Activation::GeluExact: return "gelu";
    case Activation::Relu: return "relu";
  }
  return "?";
}

namespace {

// Typed access to config.json keys with transformers' defaults. A key that is absent or null
// takes the default; a present key of the wrong type or out of range is an error naming the file,
// the key and the value.
class Keys {
 public:
  Keys(const Json& j, const std::string& file) : j_(j), file_(file) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const Json& at(const char* key) const { return j_.at(key); }
  const std::string& file() const { return file_; }

  [[noreturn]] void bad(const char* key, const std::string& expected) const {
    MOE_THROW(file_, ": key '", key, "': expected ", expected, ", got ", j_.at(key).dump());
  }

  int64_t integer(const char* key, int64_t def, int64_t min) const {
    if (!has(key)) {
      MOE_CHECK(def >= min, file_, ": required key '", key, "' is missing");
      return def;
    }
    const Json& v = j_.at(key);
    if (!v.is_number_integer()) bad(key, min > 0 ? "a positive integer" : "an integer");
    int64_t x = v.get<int64_t>();
    if (x < min) bad(key, str("an integer >= ", min));
    return x;
  }
  // A window size: absent -> def, explicit null -> 0 (no window), else a positive integer.
  int64_t window(const char* key, int64_t def) const {
    if (!has(key)) return j_.contains(key) ? 0 : def;
    return integer(key, def, 1);
  }
  int64_t required(const char* key, int64_t min = 1) const {
    MOE_CHECK(has(key), file_, ": required key '", key, "' is missing");
    return integer(key, 0, min);
  }
  double positive(const char* key, double def) const {
    if (!has(key)) return def;
    const Json& v = j_.at(key);
    if (!v.is_number()) bad(key, "a positive number");
    double x = v.get<double>();
    if (!(x > 0) || !std::isfinite(x)) bad(key, "a positive number");
    return x;
  }
  bool boolean(const char* key, bool def) const {
    if (!has(key)) return def;
    const Json& v = j_.at(key);
    if (!v.is_boolean()) bad(key, "true or false");
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    const Json& v = j_.at(key);
    if (!v.is_string()) bad(key, "a string");
    return v.get<std::string>();
  }
  // An integer id or a list of them (eos_token_id); -1 / empty when absent.
  std::vector<int64_t> idList(const char* key, std::vector<int64_t> def) const {
    if (j_.contains(key) && j_.at(key).is_null()) return {};  // explicitly none
    if (!has(key)) return def;
    const Json& v = j_.at(key);
    std::vector<int64_t> out;
    if (v.is_number_integer()) {
      out.push_back(v.get<int64_t>());
    } else if (v.is_array()) {
      for (const Json& e : v) {
        if (!e.is_number_integer()) bad(key, "a token id or a list of token ids");
        out.push_back(e.get<int64_t>());
      }
    } else {
      bad(key, "a token id or a list of token ids");
    }
    return out;
  }

 private:
  const Json& j_;
  const std::string& file_;
};

std::pair<int64_t, int64_t> lineColumn(const std::string& text, size_t byte) {
  int64_t line = 1, col = 1;
  for (size_t i = 0; i < text.size() && i + 1 < byte; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

Activation parseActivation(const Keys& k, const char* key, const std::string& def) {
  std::string a = k.string(key, def);
  if (a == "silu" || a == "swish") return Activation::Silu;
  // gelu_new, gelu_pytorch_tanh and gelu_fast are the same tanh approximation.
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") return Activation::GeluTanh;
  if (a == "gelu") return Activation::GeluExact;
  if (a == "relu") return Activation::Relu;
  MOE_THROW(k.file(), ": key '", key, "': unsupported activation \"", a,
            "\" (supported: silu, swish, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)");
}

RopeScaling parseRopeScaling(const Keys& k) {
  RopeScaling r;
  if (!k.has("rope_scaling")) return r;
  const Json& s = k.at("rope_scaling");
  if (!s.is_object()) k.bad("rope_scaling", "null or an object");
  // transformers accepts "rope_type" and the older "type".
  std::string type;
  if (s.contains("rope_type") && s["rope_type"].is_string()) type = s["rope_type"].get<std::string>();
  else if (s.contains("type") && s["type"].is_string()) type = s["type"].get<std::string>();
  Keys sk(s, k.file());
  auto field = [&](const char* key, double def) {
    if (!sk.has(key)) return def;
    const Json& v = s.at(key);
    if (!v.is_number() || !(v.get<double>() > 0))
      MOE_THROW(k.file(), ": key 'rope_scaling.", key, "': expected a positive number, got ", v.dump());
    return v.get<double>();
  };
  if (type == "default") return r;
  if (type == "linear") {
    r.type = RopeScalingType::Linear;
    r.factor = field("factor", 1.0);
    return r;
  }
  if (type == "llama3") {
    r.type = RopeScalingType::Llama3;
    r.factor = field("factor", 8.0);
    r.lowFreqFactor = field("low_freq_factor", 1.0);
    r.highFreqFactor = field("high_freq_factor", 4.0);
    r.originalMaxPositions = static_cast<int64_t>(field("original_max_position_embeddings", 8192));
    MOE_CHECK(r.highFreqFactor > r.lowFreqFactor, k.file(),
              ": key 'rope_scaling': high_freq_factor must be greater than low_freq_factor, got ", s.dump());
    return r;
  }
  MOE_THROW(k.file(), ": key 'rope_scaling': unsupported rope scaling ", s.dump(),
            " (supported: null, \"default\", \"linear\", \"llama3\")");
}

// Llama, Mistral, Qwen2, Mixtral: the shared keys, with per-architecture defaults.
struct LlamaDefaults {
  int64_t maxPositions;
  double normEps;
  double ropeTheta;
};

void parseLlamaLike(const Keys& k, ModelConfig& c, const LlamaDefaults& d) {
  c.vocabSize = k.required("vocab_size");
  c.hiddenSize = k.required("hidden_size");
  c.intermediateSize = k.required("intermediate_size");
  c.numLayers = k.required("num_hidden_layers");
  c.numHeads = k.required("num_attention_heads");
  c.numKvHeads = k.integer("num_key_value_heads", c.numHeads, 1);
  c.maxPositions = k.integer("max_position_embeddings", d.maxPositions, 1);
  c.normEps = k.positive("rms_norm_eps", d.normEps);
  c.ropeTheta = k.positive("rope_theta", d.ropeTheta);
  c.ropeScaling = parseRopeScaling(k);
  if (k.has("partial_rotary_factor") && k.positive("partial_rotary_factor", 1.0) != 1.0)
    k.bad("partial_rotary_factor", "1.0 (partial rotary embeddings are not supported)");
  c.hiddenAct = parseActivation(k, "hidden_act", "silu");
  if (k.has("head_dim")) {
    c.headDim = k.integer("head_dim", 0, 1);
  } else {
    MOE_CHECK(c.hiddenSize % c.numHeads == 0, k.file(), ": key 'hidden_size': ", c.hiddenSize,
              " is not a multiple of num_attention_heads ", c.numHeads, " (and no head_dim is given)");
    c.headDim = c.hiddenSize / c.numHeads;
  }
  MOE_CHECK(c.headDim % 2 == 0, k.file(), ": key 'head_dim': rotary embeddings need an even head_dim, got ",
            c.headDim);
  auto bos = k.idList("bos_token_id", {1});
  c.bosTokenId = bos.empty() ? -1 : bos[0];
  c.eosTokenIds = k.idList("eos_token_id", {2});
}

void parseLlama(const Keys& k, ModelConfig& c) {
  parseLlamaLike(k, c, {2048, 1e-6, 10000.0});
  c.attentionBias = k.boolean("attention_bias", false);
  c.qkvBias = c.attentionBias;
  c.mlpBias = k.boolean("mlp_bias", false);
  c.tieWordEmbeddings = k.boolean("tie_word_embeddings", false);
}

void parseMistral(const Keys& k, ModelConfig& c) {
  parseLlamaLike(k, c, {4096 * 32, 1e-6, 10000.0});
  c.tieWordEmbeddings = k.boolean("tie_word_embeddings", false);
  c.slidingWindow = k.window("sliding_window", 4096);
}

void parseQwen2(const Keys& k, ModelConfig& c) {
  parseLlamaLike(k, c, {32768, 1e-6, 10000.0});
  c.qkvBias = true;
  c.tieWordEmbeddings = k.boolean("tie_word_embeddings", false);
  auto bos = k.idList("bos_token_id", {});
  c.bosTokenId = bos.empty() ? -1 : bos[0];
  c.eosTokenIds = k.idList("eos_token_id", {});
  if (k.boolean("use_sliding_window", false)) {
    c.slidingWindow = k.window("sliding_window", 4096);
    c.slidingWindowFromLayer = k.integer("max_window_layers", 28, 0);
  }
}

void parseMixtral(const Keys& k, ModelConfig& c) {
  parseLlamaLike(k, c, {4096 * 32, 1e-5, 1e6});
  c.tieWordEmbeddings = k.boolean("tie_word_embeddings", false);
  c.slidingWindow = k.window("sliding_window", 0);
  c.numExperts = k.integer("num_local_experts", 8, 1);
  c.expertsPerToken = k.integer("num_experts_per_tok", 2, 1);
  MOE_CHECK(c.expertsPerToken <= c.numExperts, k.file(), ": key 'num_experts_per_tok': ", c.expertsPerToken,
            " is more than num_local_experts ", c.numExperts);
  if (k.has("router_jitter_noise")) {
    const Json& v = k.at("router_jitter_noise");
    if (!v.is_number() || v.get<double>() < 0) k.bad("router_jitter_noise", "a number >= 0");
    // Jitter is applied in training only: inference ignores it, as transformers does.
  }
}

void parseGpt2(const Keys& k, ModelConfig& c) {
  c.vocabSize = k.integer("vocab_size", 50257, 1);
  c.maxPositions = k.integer("n_positions", 1024, 1);
  c.hiddenSize = k.integer("n_embd", 768, 1);
  c.numLayers = k.integer("n_layer", 12, 1);
  c.numHeads = k.integer("n_head", 12, 1);
  c.numKvHeads = c.numHeads;
  MOE_CHECK(c.hiddenSize % c.numHeads == 0, k.file(), ": key 'n_embd': ", c.hiddenSize,
            " is not a multiple of n_head ", c.numHeads);
  c.headDim = c.hiddenSize / c.numHeads;
  c.intermediateSize = k.integer("n_inner", 4 * c.hiddenSize, 1);
  c.hiddenAct = parseActivation(k, "activation_function", "gelu_new");
  c.normEps = k.positive("layer_norm_epsilon", 1e-5);
  c.tieWordEmbeddings = k.boolean("tie_word_embeddings", true);
  c.attentionBias = true;
  c.qkvBias = true;
  c.mlpBias = true;
  c.scaleAttnByInverseLayerIdx = k.boolean("scale_attn_by_inverse_layer_idx", false);
  MOE_CHECK(k.boolean("scale_attn_weights", true), k.file(),
            ": key 'scale_attn_weights': false is not supported (expected true)");
  // reorder_and_upcast_attn only changes the precision of the attention product, which the
  // engine computes in the run dtype with float32 softmax either way: accepted.
  k.boolean("reorder_and_upcast_attn", false);
  auto bos = k.idList("bos_token_id", {50256});
  c.bosTokenId = bos.empty() ? -1 : bos[0];
  c.eosTokenIds = k.idList("eos_token_id", {50256});
}

// Gemma3ForCausalLM (model_type gemma3_text), with Gemma3TextConfig's defaults.
void parseGemma3(const Keys& k, ModelConfig& c) {
  parseLlamaLike(k, c, {131072, 1e-6, 1e6});
  // Gemma's activation key is hidden_activation (hidden_act is an older alias transformers ignores).
  c.hiddenAct = parseActivation(k, "hidden_activation", "gelu_pytorch_tanh");
  if (!k.has("head_dim")) c.headDim = 256;
  c.attentionBias = k.boolean("attention_bias", false);
  c.qkvBias = c.attentionBias;
  c.tieWordEmbeddings = k.boolean("tie_word_embeddings", true);
  c.embedScale = std::sqrt(static_cast<double>(c.hiddenSize));
  c.queryScale = 1.0 / std::sqrt(k.positive("query_pre_attn_scalar", 256));
  c.ropeLocalTheta = k.positive("rope_local_base_freq", 10000.0);
  c.slidingWindow = k.window("sliding_window", 4096);
  c.finalLogitSoftcap = k.has("final_logit_softcapping") ? k.positive("final_logit_softcapping", 0) : 0;
  if (k.has("attn_logit_softcapping"))
    k.bad("attn_logit_softcapping", "null (attention logit soft-capping is not supported)");
  if (k.boolean("use_bidirectional_attention", false))
    k.bad("use_bidirectional_attention", "false (bidirectional attention is not a causal LM)");
  c.layerSliding.assign(static_cast<size_t>(c.numLayers), 0);
  if (k.has("layer_types")) {
    const Json& types = k.at("layer_types");
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.numLayers)
      k.bad("layer_types", str("a list of ", c.numLayers, " layer types (num_hidden_layers)"));
    for (size_t l = 0; l < types.size(); ++l) {
      const std::string t = types[l].is_string() ? types[l].get<std::string>() : "";
      if (t != "sliding_attention" && t != "full_attention")
        k.bad("layer_types", "entries \"sliding_attention\" or \"full_attention\"");
      c.layerSliding[l] = t == "sliding_attention";
    }
  } else {
    // transformers before layer_types: layer l slides unless (l + 1) is a multiple of the pattern.
    const int64_t pattern = k.integer("sliding_window_pattern", 6, 1);
    for (int64_t l = 0; l < c.numLayers; ++l) c.layerSliding[static_cast<size_t>(l)] = (l + 1) % pattern != 0;
  }
  auto bos = k.idList("bos_token_id", {2});
  c.bosTokenId = bos.empty() ? -1 : bos[0];
  c.eosTokenIds = k.idList("eos_token_id", {1});
}

struct ArchitectureEntry {
  ModelFamily family;
  std::function<void(const Keys&, ModelConfig&)> parse;
};

const std::map<std::string, ArchitectureEntry>& architectures() {
  static const std::map<std::string, ArchitectureEntry> table = {
      {"LlamaForCausalLM", {ModelFamily::Llama, parseLlama}},
      {"MistralForCausalLM", {ModelFamily::Llama, parseMistral}},
      {"Qwen2ForCausalLM", {ModelFamily::Llama, parseQwen2}},
      {"MixtralForCausalLM", {ModelFamily::Mixtral, parseMixtral}},
      {"GPT2LMHeadModel", {ModelFamily::Gpt2, parseGpt2}},
      {"Gemma3ForCausalLM", {ModelFamily::Gemma3, parseGemma3}},
  };
  return table;
}

std::string supportedArchitectures() {
  std::string s;
  for (const auto& [name, e] : architectures()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace

ModelConfig parseModelConfigText(const std::string& text, const std::string& sourceName) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    auto [line, col] = lineColumn(text, e.byte);
    MOE_THROW(sourceName, ": malformed JSON at line ", line, ", column ", col, " (byte ", e.byte, "): ", e.what());
  }
  MOE_CHECK(j.is_object(), sourceName, ": expected a JSON object at the top level, got ", j.type_name());
  Keys k(j, sourceName);

  ModelConfig c;
  c.file = sourceName;
  MOE_CHECK(k.has("architectures"), sourceName, ": required key 'architectures' is missing");
  const Json& archs = j["architectures"];
  if (!archs.is_array() || archs.empty() || !archs[0].is_string())
    k.bad("architectures", "a non-empty list of architecture names");
  c.architecture = archs[0].get<std::string>();
  auto it = architectures().find(c.architecture);
  MOE_CHECK(it != architectures().end(), sourceName, ": key 'architectures': unsupported architecture \"",
            c.architecture, "\" (supported: ", supportedArchitectures(), ")");
  c.family = it->second.family;
  c.modelType = k.string("model_type", "");
  c.torchDtype = k.string("torch_dtype", "");

  if (k.has("quantization_config")) {
    const Json& q = j["quantization_config"];
    std::string method = q.is_object() && q.contains("quant_method") ? q["quant_method"].dump() : q.dump();
    MOE_THROW(sourceName, ": key 'quantization_config': quantized checkpoints are not supported (quant_method ",
              method, "); use an unquantized model or a GGUF file");
  }

  it->second.parse(k, c);

  MOE_CHECK(c.numHeads % c.numKvHeads == 0, sourceName, ": key 'num_key_value_heads': ", c.numKvHeads,
            " does not divide num_attention_heads ", c.numHeads);
  return c;
}

ModelConfig parseModelConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOE_CHECK(in.good(), path, ": cannot open model config");
  std::ostringstream ss;
  ss << in.rdbuf();
  MOE_CHECK(!in.bad(), path, ": cannot read model config");
  return parseModelConfigText(ss.str(), path);
}

std::string describe(const ModelConfig& c) {
  std::string s = str(c.architecture, ", ", c.numLayers, " layers, hidden ", c.hiddenSize, ", ", c.numHeads,
                      " heads (", c.numKvHeads, " KV, dim ", c.headDim, "), vocab ", c.vocabSize);
  if (c.numExperts > 0) s += str(", ", c.numExperts, " experts top-", c.expertsPerToken);
  if (c.slidingWindow > 0) {
    s += str(", sliding window ", c.slidingWindow);
    if (!c.layerSliding.empty()) {
      int64_t n = 0;
      for (char x : c.layerSliding) n += x != 0;
      s += str(" on ", n, " of ", c.numLayers, " layers");
    }
  }
  return s;
}

}  // namespace moe
