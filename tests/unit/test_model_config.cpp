// parseModelConfig: the fixtures' configs as transformers wrote them, transformers' defaults for
// absent keys, and errors that name the file, the key and the value.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "common/error.h"
#include "worker/model_config.h"
#include "test_util.h"

using moe::test::errorOf;

using moe::Activation;
using moe::ModelConfig;
using moe::ModelFamily;
using moe::parseModelConfig;
using moe::parseModelConfigText;

namespace {
const std::string kModels = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/models/";

ModelConfig parse(const std::string& json) { return parseModelConfigText(json, "cfg.json"); }
std::string parseError(const std::string& json) { return errorOf([&] { parse(json); }); }

const char* kLlamaMinimal = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4)";
std::string llama(const std::string& extra) { return std::string(kLlamaMinimal) + extra + "}"; }
}  // namespace

TEST(ModelConfig, LlamaFixture) {
  ModelConfig c = parseModelConfig(kModels + "llama/config.json");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.family, ModelFamily::Llama);
  EXPECT_EQ(c.vocabSize, 1000);
  EXPECT_EQ(c.hiddenSize, 64);
  EXPECT_EQ(c.intermediateSize, 128);
  EXPECT_EQ(c.numLayers, 2);
  EXPECT_EQ(c.numHeads, 4);
  EXPECT_EQ(c.numKvHeads, 2);
  EXPECT_EQ(c.headDim, 16);
  EXPECT_EQ(c.maxPositions, 256);
  EXPECT_DOUBLE_EQ(c.normEps, 1e-6);
  EXPECT_DOUBLE_EQ(c.ropeTheta, 10000.0);
  EXPECT_EQ(c.ropeScaling.type, moe::RopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(c.ropeScaling.factor, 4.0);
  EXPECT_EQ(c.ropeScaling.originalMaxPositions, 32);
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_FALSE(c.qkvBias);
  EXPECT_EQ(c.hiddenAct, Activation::Silu);
  EXPECT_EQ(c.slidingWindow, 0);
  EXPECT_EQ(c.bosTokenId, 1);
  EXPECT_EQ(c.eosTokenIds, std::vector<int64_t>{2});
}

TEST(ModelConfig, MistralQwen2MixtralGpt2Fixtures) {
  ModelConfig m = parseModelConfig(kModels + "mistral/config.json");
  EXPECT_EQ(m.headDim, 24);  // explicit, not hidden / heads
  EXPECT_EQ(m.slidingWindow, 16);
  EXPECT_EQ(m.slidingWindowFromLayer, 0);
  EXPECT_DOUBLE_EQ(m.normEps, 1e-5);

  ModelConfig q = parseModelConfig(kModels + "qwen2/config.json");
  EXPECT_EQ(q.family, ModelFamily::Llama);
  EXPECT_TRUE(q.qkvBias);
  EXPECT_FALSE(q.attentionBias);  // o_proj has none
  EXPECT_TRUE(q.tieWordEmbeddings);
  EXPECT_EQ(q.slidingWindow, 0);  // sliding_window 16 but use_sliding_window false
  EXPECT_DOUBLE_EQ(q.ropeTheta, 1e6);

  ModelConfig x = parseModelConfig(kModels + "mixtral/config.json");
  EXPECT_EQ(x.family, ModelFamily::Mixtral);
  EXPECT_EQ(x.numExperts, 4);
  EXPECT_EQ(x.expertsPerToken, 2);
  EXPECT_EQ(x.intermediateSize, 48);
  EXPECT_EQ(x.slidingWindow, 0);  // null

  ModelConfig g = parseModelConfig(kModels + "gpt2/config.json");
  EXPECT_EQ(g.family, ModelFamily::Gpt2);
  EXPECT_EQ(g.hiddenSize, 64);
  EXPECT_EQ(g.numKvHeads, 4);
  EXPECT_EQ(g.intermediateSize, 128);
  EXPECT_EQ(g.maxPositions, 192);
  EXPECT_EQ(g.hiddenAct, Activation::GeluTanh);
  EXPECT_TRUE(g.tieWordEmbeddings);
  EXPECT_DOUBLE_EQ(g.normEps, 1e-5);
}

TEST(ModelConfig, TransformersDefaults) {
  ModelConfig c = parse(llama(""));
  EXPECT_EQ(c.numKvHeads, 4);
  EXPECT_EQ(c.headDim, 8);
  EXPECT_EQ(c.maxPositions, 2048);
  EXPECT_DOUBLE_EQ(c.normEps, 1e-6);
  EXPECT_DOUBLE_EQ(c.ropeTheta, 10000.0);
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_EQ(c.bosTokenId, 1);
  EXPECT_EQ(c.eosTokenIds, std::vector<int64_t>{2});
  EXPECT_EQ(c.ropeScaling.type, moe::RopeScalingType::None);

  EXPECT_TRUE(parse(llama(R"(, "attention_bias": true, "mlp_bias": true)")).qkvBias);
  EXPECT_TRUE(parse(llama(R"(, "attention_bias": true)")).attentionBias);
  EXPECT_EQ(parse(llama(R"(, "eos_token_id": [2, 7], "bos_token_id": null)")).eosTokenIds,
            (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(parse(llama(R"(, "bos_token_id": null)")).bosTokenId, -1);
  EXPECT_EQ(parse(llama(R"(, "rope_scaling": null)")).ropeScaling.type, moe::RopeScalingType::None);
  moe::RopeScaling lin = parse(llama(R"(, "rope_scaling": {"type": "linear", "factor": 2.0})")).ropeScaling;
  EXPECT_EQ(lin.type, moe::RopeScalingType::Linear);
  EXPECT_DOUBLE_EQ(lin.factor, 2.0);
  EXPECT_EQ(parse(llama(R"(, "hidden_act": "gelu_pytorch_tanh")")).hiddenAct, Activation::GeluTanh);

  auto mistral = [](const std::string& extra) {
    std::string s = llama(extra);
    return parse(s.replace(s.find("LlamaForCausalLM"), 16, "MistralForCausalLM"));
  };
  EXPECT_EQ(mistral("").slidingWindow, 4096);
  EXPECT_EQ(mistral(R"(, "sliding_window": null)").slidingWindow, 0);
  EXPECT_EQ(mistral("").maxPositions, 4096 * 32);

  auto qwen2 = [](const std::string& extra) {
    std::string s = llama(extra);
    return parse(s.replace(s.find("LlamaForCausalLM"), 16, "Qwen2ForCausalLM"));
  };
  ModelConfig q = qwen2(R"(, "use_sliding_window": true, "sliding_window": 64, "max_window_layers": 1)");
  EXPECT_EQ(q.slidingWindow, 64);
  EXPECT_EQ(q.slidingWindowFromLayer, 1);
  EXPECT_EQ(qwen2("").slidingWindow, 0);
  EXPECT_EQ(qwen2("").bosTokenId, -1);

  ModelConfig m = parse(R"({"architectures": ["MixtralForCausalLM"], "vocab_size": 100, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2})");
  EXPECT_EQ(m.numExperts, 8);
  EXPECT_EQ(m.expertsPerToken, 2);
  EXPECT_DOUBLE_EQ(m.normEps, 1e-5);
  EXPECT_DOUBLE_EQ(m.ropeTheta, 1e6);

  ModelConfig g = parse(R"({"architectures": ["GPT2LMHeadModel"], "vocab_size": 100, "n_embd": 32, "n_head": 4,
    "n_layer": 2})");
  EXPECT_EQ(g.intermediateSize, 128);
  EXPECT_EQ(g.maxPositions, 1024);
  EXPECT_TRUE(g.tieWordEmbeddings);
  EXPECT_EQ(g.hiddenAct, Activation::GeluTanh);
}

TEST(ModelConfig, ErrorsNameFileKeyAndValue) {
  std::string e = parseError(R"({"architectures": ["BertForMaskedLM"], "vocab_size": 10})");
  EXPECT_NE(e.find("cfg.json: key 'architectures': unsupported architecture \"BertForMaskedLM\""), std::string::npos)
      << e;
  EXPECT_NE(e.find("LlamaForCausalLM"), std::string::npos) << e;  // lists the supported ones

  e = parseError(llama(R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4.0})"));
  EXPECT_NE(e.find("cfg.json: key 'rope_scaling': unsupported rope scaling"), std::string::npos) << e;
  EXPECT_NE(e.find("yarn"), std::string::npos) << e;

  e = parseError(llama(R"(, "quantization_config": {"quant_method": "gptq", "bits": 4})"));
  EXPECT_NE(e.find("cfg.json: key 'quantization_config'"), std::string::npos) << e;
  EXPECT_NE(e.find("gptq"), std::string::npos) << e;

  e = parseError(llama(R"(, "hidden_act": "gelu_foo")"));
  EXPECT_NE(e.find("key 'hidden_act': unsupported activation \"gelu_foo\""), std::string::npos) << e;

  e = parseError(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": "64"})");
  EXPECT_NE(e.find("cfg.json: key 'hidden_size': expected a positive integer, got \"64\""), std::string::npos) << e;

  e = parseError(llama(R"(, "num_key_value_heads": 3)"));
  EXPECT_NE(e.find("key 'num_key_value_heads': 3 does not divide num_attention_heads 4"), std::string::npos) << e;

  e = parseError(llama(R"(, "rms_norm_eps": -1)"));
  EXPECT_NE(e.find("key 'rms_norm_eps': expected a positive number, got -1"), std::string::npos) << e;

  e = parseError(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 32})");
  EXPECT_NE(e.find("required key 'vocab_size' is missing"), std::string::npos) << e;

  e = parseError(llama(R"(, "partial_rotary_factor": 0.5)"));
  EXPECT_NE(e.find("key 'partial_rotary_factor'"), std::string::npos) << e;

  e = parseError(llama(R"(, "eos_token_id": "</s>")"));
  EXPECT_NE(e.find("key 'eos_token_id': expected a token id or a list of token ids, got \"</s>\""), std::string::npos)
      << e;

  e = parseError(R"({"architectures": ["MixtralForCausalLM"], "vocab_size": 100, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_local_experts": 2,
    "num_experts_per_tok": 3})");
  EXPECT_NE(e.find("key 'num_experts_per_tok': 3 is more than num_local_experts 2"), std::string::npos) << e;
}

TEST(ModelConfig, MalformedJsonNamesLineAndColumn) {
  std::string e = parseError("{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"vocab_size\": 10,,\n}");
  EXPECT_NE(e.find("cfg.json: malformed JSON at line 3, column 20"), std::string::npos) << e;
  e = errorOf([] { parseModelConfig("/nonexistent/config.json"); });
  EXPECT_NE(e.find("/nonexistent/config.json: cannot open"), std::string::npos) << e;
}

TEST(ModelConfig, Gemma3FixtureAndDefaults) {
  ModelConfig c = parseModelConfig(kModels + "gemma3/config.json");
  EXPECT_EQ(c.family, ModelFamily::Gemma3);
  EXPECT_EQ(c.architecture, "Gemma3ForCausalLM");
  EXPECT_EQ(c.headDim, 32);
  EXPECT_EQ(c.hiddenAct, Activation::GeluTanh);
  EXPECT_DOUBLE_EQ(c.queryScale, 1.0 / std::sqrt(24.0));
  EXPECT_DOUBLE_EQ(c.embedScale, 8.0);
  EXPECT_DOUBLE_EQ(c.ropeLocalTheta, 10000.0);
  EXPECT_DOUBLE_EQ(c.ropeTheta, 1e6);
  EXPECT_EQ(c.ropeScaling.type, moe::RopeScalingType::Linear);
  EXPECT_DOUBLE_EQ(c.finalLogitSoftcap, 30.0);
  EXPECT_EQ(c.slidingWindow, 16);
  EXPECT_EQ(c.layerSliding, (std::vector<char>{1, 1, 0}));  // sliding_window_pattern 3
  EXPECT_TRUE(c.tieWordEmbeddings);

  const std::string base = R"({"architectures": ["Gemma3ForCausalLM"], "vocab_size": 100, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 7, "num_attention_heads": 2, "num_key_value_heads": 1)";
  auto gemma = [&](const std::string& extra) { return parse(base + extra + "}"); };
  ModelConfig d = gemma("");
  EXPECT_EQ(d.headDim, 256);
  EXPECT_DOUBLE_EQ(d.queryScale, 1.0 / 16.0);  // query_pre_attn_scalar 256
  EXPECT_EQ(d.slidingWindow, 4096);
  EXPECT_EQ(d.layerSliding, (std::vector<char>{1, 1, 1, 1, 1, 0, 1}));  // pattern 6
  EXPECT_EQ(d.bosTokenId, 2);
  EXPECT_EQ(d.eosTokenIds, std::vector<int64_t>{1});
  EXPECT_DOUBLE_EQ(d.finalLogitSoftcap, 0.0);
  ModelConfig t = gemma(R"(, "layer_types": ["full_attention", "sliding_attention", "full_attention",
    "sliding_attention", "sliding_attention", "full_attention", "full_attention"])");
  EXPECT_EQ(t.layerSliding, (std::vector<char>{0, 1, 0, 1, 1, 0, 0}));

  std::string e = errorOf([&] { gemma(R"(, "layer_types": ["full_attention"])"); });
  EXPECT_NE(e.find("cfg.json: key 'layer_types': expected a list of 7 layer types"), std::string::npos) << e;
  e = errorOf([&] { gemma(R"(, "layer_types": ["full_attention", "x", "x", "x", "x", "x", "x"])"); });
  EXPECT_NE(e.find("key 'layer_types': expected entries"), std::string::npos) << e;
  e = errorOf([&] { gemma(R"(, "attn_logit_softcapping": 50.0)"); });
  EXPECT_NE(e.find("key 'attn_logit_softcapping': expected null"), std::string::npos) << e;
  e = errorOf([&] { gemma(R"(, "hidden_activation": "swiglu")"); });
  EXPECT_NE(e.find("key 'hidden_activation': unsupported activation \"swiglu\""), std::string::npos) << e;
}
