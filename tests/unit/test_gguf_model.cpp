// GGUF models through the engine (src/worker/gguf_model.*): the config from llama.* metadata, the
// tensor names, the Q/K un-permutation, tied output, clear errors; and logits of a tiny llama GGUF
// (tests/fixtures/gguf_models/tiny_llama.gguf, the tiny Llama fixture's tensors permuted as
// llama.cpp's converter does) through Expert::load equal to transformers' from the same file
// (tests/fixtures/make_gguf_model_goldens.py tiny).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "worker/expert.h"
#include "worker/gguf.h"
#include "worker/gguf_model.h"
#include "worker/safetensors.h"

namespace moe {
namespace {

const std::string kFixtures = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/";
const std::string kTiny = kFixtures + "gguf_models/tiny_llama.gguf";
const std::string kTinyGemma = kFixtures + "gguf_models/tiny_gemma3.gguf";

// A GGUF v3 image in memory: metadata (u32, f32, string) and F32 tensors.
class GgufBuilder {
 public:
  GgufBuilder& u32(const std::string& key, uint32_t v) {
    kv_.push_back({key, 4, bytesOf(v)});
    return *this;
  }
  GgufBuilder& f32(const std::string& key, float v) {
    kv_.push_back({key, 6, bytesOf(v)});
    return *this;
  }
  GgufBuilder& str(const std::string& key, const std::string& v) {
    std::string b = bytesOf(static_cast<uint64_t>(v.size())) + v;
    kv_.push_back({key, 8, b});
    return *this;
  }
  // shape outermost first, as PyTorch sees it.
  GgufBuilder& tensor(const std::string& name, std::vector<int64_t> shape, std::vector<float> data) {
    tensors_.push_back({name, std::move(shape), std::move(data)});
    return *this;
  }
  std::vector<uint8_t> build() const {
    std::string out = "GGUF" + bytesOf(uint32_t{3}) + bytesOf(static_cast<uint64_t>(tensors_.size())) +
                      bytesOf(static_cast<uint64_t>(kv_.size()));
    for (const Kv& kv : kv_) out += bytesOf(static_cast<uint64_t>(kv.key.size())) + kv.key + bytesOf(kv.type) + kv.value;
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      out += bytesOf(static_cast<uint64_t>(t.name.size())) + t.name + bytesOf(static_cast<uint32_t>(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) out += bytesOf(static_cast<uint64_t>(*it));
      out += bytesOf(uint32_t{0}) + bytesOf(offset);  // F32
      offset += (t.data.size() * 4 + 31) / 32 * 32;
    }
    out.resize((out.size() + 31) / 32 * 32, '\0');
    for (const Tensor& t : tensors_) {
      std::string d(t.data.size() * 4, '\0');
      std::memcpy(d.data(), t.data.data(), d.size());
      d.resize((d.size() + 31) / 32 * 32, '\0');
      out += d;
    }
    return std::vector<uint8_t>(out.begin(), out.end());
  }

 private:
  template <typename T>
  static std::string bytesOf(T v) {
    std::string b(sizeof(T), '\0');
    std::memcpy(b.data(), &v, sizeof(T));
    return b;
  }
  struct Kv {
    std::string key;
    uint32_t type;
    std::string value;
  };
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> data;
  };
  std::vector<Kv> kv_;
  std::vector<Tensor> tensors_;
};

std::vector<float> iota(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

// A one-layer llama: hidden 8, 2 heads of 4, 1 KV head, feed-forward 4, vocabulary 3, no
// output.weight. Q and K rows hold their row number in every column.
GgufBuilder syntheticLlama(uint32_t blocks = 1) {
  GgufBuilder b;
  b.str("general.architecture", "llama")
      .u32("llama.context_length", 64)
      .u32("llama.embedding_length", 8)
      .u32("llama.block_count", blocks)
      .u32("llama.feed_forward_length", 4)
      .u32("llama.attention.head_count", 2)
      .u32("llama.attention.head_count_kv", 1)
      .f32("llama.rope.freq_base", 500.0f)
      .f32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
      .u32("tokenizer.ggml.bos_token_id", 1)
      .u32("tokenizer.ggml.eos_token_id", 2);
  auto rows = [](int64_t r, int64_t c) {
    std::vector<float> v;
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) v.push_back(static_cast<float>(i));
    return v;
  };
  b.tensor("token_embd.weight", {3, 8}, iota(24, 0))
      .tensor("blk.0.attn_norm.weight", {8}, iota(8, 1))
      .tensor("blk.0.attn_q.weight", {8, 8}, rows(8, 8))
      .tensor("blk.0.attn_k.weight", {4, 8}, rows(4, 8))
      .tensor("blk.0.attn_v.weight", {4, 8}, iota(32, 0))
      .tensor("blk.0.attn_output.weight", {8, 8}, iota(64, 0))
      .tensor("blk.0.ffn_norm.weight", {8}, iota(8, 2))
      .tensor("blk.0.ffn_gate.weight", {4, 8}, iota(32, 0))
      .tensor("blk.0.ffn_up.weight", {4, 8}, iota(32, 1))
      .tensor("blk.0.ffn_down.weight", {8, 4}, iota(32, 2))
      .tensor("output_norm.weight", {8}, iota(8, 3));
  return b;
}

std::string errorOf(const std::vector<uint8_t>& image) {
  try {
    GgufModelWeights w(GgufFile::parse(image.data(), image.size(), "model.gguf"));
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GgufModel, SyntheticConfigNamesAndUnpermutation) {
  std::vector<uint8_t> image = syntheticLlama().build();
  GgufModelWeights w(GgufFile::parse(image.data(), image.size(), "synthetic.gguf"));
  const ModelConfig& c = w.config();
  EXPECT_EQ(c.family, ModelFamily::Llama);
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.file, "synthetic.gguf");
  EXPECT_EQ(c.vocabSize, 3);  // from token_embd rows: no vocab_size key, no tokens
  EXPECT_EQ(c.hiddenSize, 8);
  EXPECT_EQ(c.intermediateSize, 4);
  EXPECT_EQ(c.numLayers, 1);
  EXPECT_EQ(c.numHeads, 2);
  EXPECT_EQ(c.numKvHeads, 1);
  EXPECT_EQ(c.headDim, 4);
  EXPECT_EQ(c.maxPositions, 64);
  EXPECT_DOUBLE_EQ(c.ropeTheta, 500.0);
  EXPECT_NEAR(c.normEps, 1e-5, 1e-12);
  EXPECT_TRUE(c.tieWordEmbeddings);
  EXPECT_EQ(c.bosTokenId, 1);
  ASSERT_EQ(c.eosTokenIds.size(), 1u);
  EXPECT_EQ(c.eosTokenIds[0], 2);

  EXPECT_FALSE(w.has("lm_head.weight"));
  EXPECT_EQ(w.names().size(), 1u + 9u + 1u);
  EXPECT_EQ(w.meta("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(w.meta("model.layers.0.mlp.down_proj.weight").name, "model.layers.0.mlp.down_proj.weight");
  EXPECT_NE(w.rawData("model.layers.0.mlp.down_proj.weight"), nullptr);
  EXPECT_EQ(w.rawData("model.layers.0.self_attn.q_proj.weight"), nullptr);

  // Q: 2 heads of 4; GGUF row h*4 + 2i + j holds HF row h*4 + 2j + i... i.e. HF rows of a head are
  // GGUF rows (0, 2, 1, 3).
  std::vector<float> q(64);
  w.readF32("model.layers.0.self_attn.q_proj.weight", q.data());
  const int wantQ[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r)
    for (int col = 0; col < 8; ++col) ASSERT_EQ(q[r * 8 + col], static_cast<float>(wantQ[r])) << "row " << r;
  std::vector<float> k(32);
  w.readF32("model.layers.0.self_attn.k_proj.weight", k.data());
  const int wantK[4] = {0, 2, 1, 3};
  for (int r = 0; r < 4; ++r) ASSERT_EQ(k[r * 8], static_cast<float>(wantK[r])) << "row " << r;
  std::vector<float> v(32);
  w.readF32("model.layers.0.self_attn.v_proj.weight", v.data());
  EXPECT_EQ(v, iota(32, 0));

  try {
    w.readF32("model.layers.3.mlp.up_proj.weight", v.data());
    FAIL() << "no error for an unmapped name";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("synthetic.gguf"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.layers.3.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
}

// Every tensor of the GGUF file under its Hugging Face name equals the checkpoint's: exactly, but
// norm weights within normTol.
void expectSameTensors(const GgufModelWeights& g, const WeightSource& hf, double normTol) {
  std::vector<std::string> names = g.names();
  EXPECT_EQ(names.size(), hf.names().size());
  for (const std::string& n : names) {
    ASSERT_TRUE(hf.has(n)) << n;
    ASSERT_EQ(g.meta(n).shape, hf.meta(n).shape) << n;
    std::vector<float> a(static_cast<size_t>(numel(g.meta(n).shape))), b(a.size());
    g.readF32(n, a.data());
    hf.readF32(n, b.data());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    ASSERT_LE(worst, n.find("norm") != std::string::npos ? normTol : 0.0) << n;
  }
}

TEST(GgufModel, Errors) {
  auto expectError = [](const std::vector<uint8_t>& image, const std::string& part) {
    std::string e = errorOf(image);
    EXPECT_NE(e.find("model.gguf"), std::string::npos) << e;
    EXPECT_NE(e.find(part), std::string::npos) << "expected '" << part << "' in: " << e;
  };
  expectError(GgufBuilder().str("general.architecture", "gpt2").build(), "general.architecture 'gpt2' is not supported");
  expectError(GgufBuilder().u32("llama.block_count", 1).build(), "'general.architecture' is missing");
  expectError(GgufBuilder().str("general.architecture", "llama").build(), "'llama.embedding_length' is missing");

  GgufBuilder noQ = syntheticLlama();
  noQ.tensor("blk.0.attn_q.bias", {8}, iota(8, 0));
  expectError(noQ.build(), "blk.0.attn_q.bias");

  GgufBuilder freqs = syntheticLlama();
  freqs.tensor("rope_freqs.weight", {2}, iota(2, 1));
  expectError(freqs.build(), "rope_freqs.weight");

  GgufBuilder scaling = syntheticLlama();
  scaling.str("llama.rope.scaling.type", "yarn");
  expectError(scaling.build(), "llama.rope.scaling.type");

  GgufBuilder partial = syntheticLlama();
  partial.u32("llama.attention.key_length", 4).u32("llama.rope.dimension_count", 2);
  expectError(partial.build(), "partial rotary");

  GgufBuilder vocab = syntheticLlama();
  vocab.u32("llama.vocab_size", 5);
  expectError(vocab.build(), "token_embd.weight");

  // A missing layer tensor: block_count 2 with one layer's tensors.
  std::string e = errorOf(syntheticLlama(2).build());
  EXPECT_NE(e.find("blk.1.attn_norm.weight"), std::string::npos) << e;

  // A tensor the mapping does not use would be silently ignored: refused by name.
  GgufBuilder extra = syntheticLlama();
  extra.tensor("blk.0.attn_q_norm.weight", {4}, iota(4, 1));
  expectError(extra.build(), "tensor 'blk.0.attn_q_norm.weight' is not part of a llama model");

  // gemma3 names its own missing keys.
  expectError(GgufBuilder().str("general.architecture", "gemma3").build(), "'gemma3.embedding_length' is missing");
}

// The tiny Gemma 3 GGUF (norms stored as 1 + w, Q/K unpermuted) reads back as the Hugging Face
// checkpoint it was written from, exactly.
TEST(GgufModel, TinyGemma3TensorsEqualTheHuggingFaceCheckpoint) {
  GgufModelWeights g(kTinyGemma);
  std::unique_ptr<WeightSource> hf = openSafetensors(kFixtures + "models/gemma3");
  const ModelConfig& c = g.config();
  EXPECT_EQ(c.family, ModelFamily::Gemma3);
  EXPECT_EQ(c.architecture, "Gemma3ForCausalLM");
  EXPECT_EQ(c.headDim, 32);
  EXPECT_EQ(c.slidingWindow, 16);
  EXPECT_EQ(c.layerSliding, (std::vector<char>{1, 1, 1}));  // GGUF: transformers' default pattern 6
  EXPECT_DOUBLE_EQ(c.queryScale, 1.0 / 16.0);                // and query_pre_attn_scalar 256
  EXPECT_DOUBLE_EQ(c.embedScale, 8.0);
  EXPECT_TRUE(c.tieWordEmbeddings);
  // (1 + w) - 1 in float32 rounds w to the spacing of numbers near 1.
  expectSameTensors(g, *hf, 1.2e-7);
}

TEST(GgufModel, TinyTensorsEqualTheHuggingFaceCheckpoint) {
  GgufModelWeights g(kTiny);
  std::unique_ptr<WeightSource> hf = openSafetensors(kFixtures + "models/llama");
  ModelConfig ref = parseModelConfig(kFixtures + "models/llama/config.json");
  const ModelConfig& c = g.config();
  EXPECT_EQ(c.vocabSize, ref.vocabSize);
  EXPECT_EQ(c.hiddenSize, ref.hiddenSize);
  EXPECT_EQ(c.intermediateSize, ref.intermediateSize);
  EXPECT_EQ(c.numLayers, ref.numLayers);
  EXPECT_EQ(c.numHeads, ref.numHeads);
  EXPECT_EQ(c.numKvHeads, ref.numKvHeads);
  EXPECT_EQ(c.headDim, ref.headDim);
  EXPECT_EQ(c.maxPositions, ref.maxPositions);
  EXPECT_DOUBLE_EQ(c.ropeTheta, ref.ropeTheta);
  EXPECT_NEAR(c.normEps, ref.normEps, 1e-12);
  EXPECT_FALSE(c.tieWordEmbeddings);

  expectSameTensors(g, *hf, 0.0);  // float32 both sides: the un-permutation restores every row exactly
}

TEST(GgufModel, TinyLogitsEqualTransformersFromTheSameFile) {
  nlohmann::json golden = nlohmann::json::parse(std::ifstream(kFixtures + "gguf_models/tiny_llama.json"));
  EngineOptions options;
  options.dtype = "fp32";
  std::unique_ptr<Expert> expert = Expert::load(kTiny, options);
  EXPECT_EQ(expert->vocabSize(), 1000);
  std::vector<std::vector<int32_t>> prompts = golden["prompts"].get<std::vector<std::vector<int32_t>>>();
  std::vector<std::vector<float>> want = golden["logits"].get<std::vector<std::vector<float>>>();
  ASSERT_EQ(prompts.size(), want.size());
  double maxDiff = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<float> logits;
    expert->forward({prompts[p]}, logits);
    ASSERT_EQ(logits.size(), want[p].size());
    for (size_t i = 0; i < logits.size(); ++i) maxDiff = std::max(maxDiff, std::fabs(double(logits[i]) - want[p][i]));
  }
  // The batch as one left-padded forward gives the same numbers.
  std::vector<float> batch;
  expert->forward(prompts, batch);
  for (size_t p = 0; p < prompts.size(); ++p)
    for (size_t i = 0; i < want[p].size(); ++i)
      maxDiff = std::max(maxDiff, std::fabs(double(batch[p * want[p].size() + i]) - want[p][i]));
  std::cout << "tiny llama GGUF: max |logit - transformers| = " << maxDiff << "\n";
  EXPECT_LT(maxDiff, 1e-4);
}

TEST(GgufModel, TinyGemma3LogitsEqualTransformersFromTheSameFile) {
  nlohmann::json golden = nlohmann::json::parse(std::ifstream(kFixtures + "gguf_models/tiny_gemma3.json"));
  EngineOptions options;
  options.dtype = "fp32";
  std::unique_ptr<Expert> expert = Expert::load(kTinyGemma, options);
  std::vector<std::vector<int32_t>> prompts = golden["prompts"].get<std::vector<std::vector<int32_t>>>();
  std::vector<std::vector<float>> want = golden["logits"].get<std::vector<std::vector<float>>>();
  ASSERT_EQ(prompts.size(), want.size());
  double maxDiff = 0;
  std::vector<float> batch;
  expert->forward(prompts, batch);
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<float> logits;
    expert->forward({prompts[p]}, logits);
    ASSERT_EQ(logits.size(), want[p].size());
    for (size_t i = 0; i < logits.size(); ++i) {
      maxDiff = std::max(maxDiff, std::fabs(double(logits[i]) - want[p][i]));
      maxDiff = std::max(maxDiff, std::fabs(double(batch[p * want[p].size() + i]) - want[p][i]));
    }
  }
  std::cout << "tiny gemma3 GGUF: max |logit - transformers| = " << maxDiff << "\n";
  EXPECT_LT(maxDiff, 1e-4);
}

}  // namespace
}  // namespace moe
