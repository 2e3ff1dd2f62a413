// ModelConfig: what a Hugging Face config.json says about a causal LM, checked and normalised.
//
// One struct for every supported architecture; each architecture's parser fills it with that
// architecture's own keys and the defaults transformers' config class has (e.g. Mixtral's
// rms_norm_eps is 1e-5, GPT-2 ties its embeddings unless told otherwise), so the model code never
// looks at JSON. What the engine cannot compute faithfully is refused here, at load time, with the
// file, the key and the value: an unknown architecture or activation, a rope_scaling type other
// than default/linear/llama3, a quantization_config. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// Model families: one decoder implementation each (Mistral and Qwen2 are Llama with options).
enum class ModelFamily { Llama, Mixtral, Gpt2, Gemma3 };

enum class Activation { Silu, GeluTanh, GeluExact, Relu };
const char* activationName(Activation a);

enum class RopeScalingType { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  // llama3 only.
  double lowFreqFactor = 1.0;
  double highFreqFactor = 4.0;
  int64_t originalMaxPositions = 8192;
};

struct ModelConfig {
  std::string file;          // the config.json it came from (for messages)
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string modelType;     // model_type, e.g. "llama" (informational)
  ModelFamily family = ModelFamily::Llama;

  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;  // MLP width (per expert for Mixtral; GPT-2 n_inner)
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;  // grouped-query attention: numHeads % numKvHeads == 0
  int64_t headDim = 0;     // explicit head_dim or hiddenSize / numHeads
  int64_t maxPositions = 0;

  double normEps = 1e-6;  // rms_norm_eps (RMSNorm) or layer_norm_epsilon (LayerNorm)
  Activation hiddenAct = Activation::Silu;

  // Rotary embeddings (not GPT-2).
  double ropeTheta = 10000.0;
  RopeScaling ropeScaling;

  bool tieWordEmbeddings = false;
  bool attentionBias = false;  // bias on q/k/v/o (Llama attention_bias)
  bool qkvBias = false;        // bias on q/k/v only (Qwen2, and Llama with attention_bias)
  bool mlpBias = false;        // bias on gate/up/down (Llama mlp_bias)

  // Sliding-window attention: a query attends to the last `slidingWindow` keys (itself
  // included); 0 = full causal attention. Applies to layers >= slidingWindowFromLayer (Qwen2's
  // max_window_layers; 0 for Mistral and Mixtral).
  int64_t slidingWindow = 0;
  int64_t slidingWindowFromLayer = 0;

  // Mixtral.
  int64_t numExperts = 0;
  int64_t expertsPerToken = 0;

  // GPT-2.
  bool scaleAttnByInverseLayerIdx = false;

  // Gemma 3 (family Gemma3): RMSNorm weights stored as an offset from 1 (scale = 1 + w, applied in
  // float32), q/k norms, norms after attention and after the MLP; embeddings scaled by
  // sqrt(hidden_size); sliding-window layers (layerSliding[l] != 0, from layer_types or
  // sliding_window_pattern) use the local rope base, the others rope_theta with rope_scaling.
  double embedScale = 0;       // > 0: token embeddings multiplied by it
  double queryScale = 0;       // > 0: attention score scale (query_pre_attn_scalar ** -0.5), else 1/sqrt(headDim)
  std::vector<char> layerSliding;  // per layer, when the architecture says per layer (else slidingWindowFromLayer)
  double ropeLocalTheta = 0;       // > 0: rope base of the sliding-window layers (default rope, no scaling)
  double finalLogitSoftcap = 0;    // > 0: logits = cap * tanh(logits / cap)

  // Special tokens (-1 when absent); eos may be a list.
  int64_t bosTokenId = -1;
  std::vector<int64_t> eosTokenIds;

  std::string torchDtype;  // torch_dtype as written ("float32", "bfloat16", ...), may be empty
};

// Reads and checks a config.json. Throws moe::Error naming the file and, for a bad value, the key
// and the value; malformed JSON names the line and column.
ModelConfig parseModelConfig(const std::string& configJsonPath);
// The same from text (sourceName stands for the file in messages).
ModelConfig parseModelConfigText(const std::string& json, const std::string& sourceName);

// "LlamaForCausalLM, 2 layers, hidden 64, 4 heads (2 KV), vocab 1000"
std::string describe(const ModelConfig& c);

}  // namespace moe
