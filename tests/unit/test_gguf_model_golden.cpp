// SmolLM2-135M-Instruct (GGUF: Q4_1 blocks, Q8_0 embedding, tied output) and Gemma-3-270M on real
// 5-shot MMLU prompts: the prompts are built here with moe-dist's prompt builder from ../shared/mmlu/data,
// tokenized with the GGUF file's own tokenizer, and run through Expert::load(file.gguf); the
// last-token logits (top 20 and the answer letters) must equal transformers' from the same file
// (dequantized, float32) within 1e-3, and the answer-letter probabilities within 1e-4.
// Expected values: tests/fixtures/gguf_models/{smollm2,gemma3}.json (make_gguf_model_goldens.py),
// which holds no MMLU text, only token counts and a hash of the ids.
// Skips, saying why, when the model (scripts/get-models.sh) or the MMLU data is absent. Label `slow`.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"
#include "worker/expert.h"
#include "worker/gguf_tokenizer.h"

namespace moe {
namespace {

std::string modelsDir() {
  if (const char* d = std::getenv("MOE_MODELS_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/moe-dist/models";
}

std::string mmluDir() {
  if (const char* d = std::getenv("MOE_MMLU_DIR"); d && *d) return d;
  return std::string(MOE_SOURCE_DIR) + "/../shared/mmlu/data";
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The same hash as make_gguf_model_goldens.py: FNV-1a 64 over each id's 4 little-endian bytes.
std::string fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ULL;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<double> softmax(const std::vector<double>& x) {
  const double m = *std::max_element(x.begin(), x.end());
  std::vector<double> p(x.size());
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += p[i] = std::exp(x[i] - m);
  for (double& v : p) v /= s;
  return p;
}

struct RealModel {
  std::string file;    // in the models cache
  std::string golden;  // tests/fixtures/gguf_models/<golden>
  int64_t vocab;
  int64_t layers;
};

// Every golden prompt alone, then all of them as one left-padded batch (the job's path: padding,
// and for Gemma prompts longer than its 512-token window on both sides of the padding).
void checkRealModel(const RealModel& m) {
  const std::string model = modelsDir() + "/" + m.file;
  if (!exists(model)) GTEST_SKIP() << model << " is absent (run scripts/get-models.sh)";
  if (!exists(mmluDir() + "/dev")) GTEST_SKIP() << "no MMLU data at " << mmluDir() << " (set MOE_MMLU_DIR)";
  nlohmann::json golden =
      nlohmann::json::parse(std::ifstream(std::string(MOE_SOURCE_DIR) + "/tests/fixtures/gguf_models/" + m.golden));

  std::unique_ptr<Tokenizer> tok = tokenizerFromGguf(model);
  EngineOptions options;
  options.dtype = "fp32";
  options.threads = 2;
  std::unique_ptr<Expert> expert = Expert::load(model, options);
  EXPECT_TRUE(expert->config().tieWordEmbeddings);
  EXPECT_EQ(expert->vocabSize(), m.vocab);
  EXPECT_EQ(expert->numLayers(), m.layers);
  const std::vector<int64_t> letterIds = golden["letter_ids"].get<std::vector<int64_t>>();
  for (size_t j = 0; j < letterIds.size(); ++j) {
    std::vector<int32_t> ids = tok->encode(std::string(" ") + static_cast<char>('A' + j), false);
    ASSERT_EQ(ids, std::vector<int32_t>{static_cast<int32_t>(letterIds[j])}) << "letter " << j;
  }

  ASSERT_GE(golden["prompts"].size(), 5u);
  std::vector<std::vector<int32_t>> batch;
  for (const auto& row : golden["prompts"]) {
    const std::string subject = row["subject"];
    const int64_t index = row["index"];
    MmluDataset data = loadMmlu(mmluDir(), "test", {subject}, index + 1, 5);
    const SubjectData& s = data.subjects.at(0);
    const Prompt prompt = buildPrompt(s, s.eval.at(static_cast<size_t>(index)), 5, PromptStyle::Original);
    ASSERT_EQ(prompt.shots, 5);
    std::vector<int32_t> ids = tok->encode(prompt.text(), true);
    ASSERT_EQ(static_cast<int64_t>(ids.size()), row["tokens"].get<int64_t>()) << subject << " " << index;
    ASSERT_EQ(fnv1a64(ids), row["ids_fnv1a64"].get<std::string>()) << subject << " " << index;
    batch.push_back(std::move(ids));
  }

  auto compare = [&](const float* logits, const nlohmann::json& row, const std::string& what, double& maxLogit,
                     double& maxProb) {
    const auto topIds = row["top_ids"].get<std::vector<int64_t>>();
    const auto topLogits = row["top_logits"].get<std::vector<double>>();
    double diff = 0;
    for (size_t i = 0; i < topIds.size(); ++i)
      diff = std::max(diff, std::fabs(logits[static_cast<size_t>(topIds[i])] - topLogits[i]));
    // The top 20 are the top 20 here too: nothing else is above the 20th expected logit.
    std::vector<float> sorted(logits, logits + m.vocab);
    std::nth_element(sorted.begin(), sorted.begin() + 19, sorted.end(), std::greater<float>());
    EXPECT_NEAR(sorted[19], topLogits[19], 1e-3) << what;

    const auto wantLetters = row["letter_logits"].get<std::vector<double>>();
    std::vector<double> gotLetters;
    for (size_t j = 0; j < letterIds.size(); ++j) {
      gotLetters.push_back(logits[static_cast<size_t>(letterIds[j])]);
      diff = std::max(diff, std::fabs(gotLetters[j] - wantLetters[j]));
    }
    const std::vector<double> p = softmax(gotLetters), q = softmax(wantLetters);
    double pdiff = 0;
    for (size_t j = 0; j < p.size(); ++j) pdiff = std::max(pdiff, std::fabs(p[j] - q[j]));
    std::cout << what << ": max |logit diff| " << diff << ", max |letter prob diff| " << pdiff << "\n";
    EXPECT_LT(diff, 1e-3) << what;
    EXPECT_LT(pdiff, 1e-4) << what;
    maxLogit = std::max(maxLogit, diff);
    maxProb = std::max(maxProb, pdiff);
  };

  double maxLogit = 0, maxProb = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& row = golden["prompts"][i];
    std::vector<float> logits;
    expert->forward({batch[i]}, logits);
    compare(logits.data(), row, str(row["subject"].get<std::string>(), " #", row["index"].get<int64_t>(), " (",
                                    batch[i].size(), " tokens)"),
            maxLogit, maxProb);
  }
  std::vector<float> all;
  expert->forward(batch, all);
  for (size_t i = 0; i < batch.size(); ++i)
    compare(all.data() + i * static_cast<size_t>(m.vocab), golden["prompts"][i], str("batch row ", i), maxLogit,
            maxProb);
  std::cout << m.file << " vs transformers: max |logit diff| " << maxLogit << ", max |letter prob diff| " << maxProb
            << "\n";
}

TEST(GgufModelGolden, SmolLM2OnRealMmluEqualsTransformers) {
  checkRealModel({"smollm2-135m-instruct.gguf", "smollm2.json", 49152, 30});
}

// Gemma-3-270M (Q4_K / Q5_0 / Q6_K / Q8_0 blocks), prompts of 600+ tokens: beyond the sliding window.
TEST(GgufModelGolden, Gemma3OnRealMmluEqualsTransformers) {
  checkRealModel({"gemma-3-270m.gguf", "gemma3.json", 262144, 18});
}

}  // namespace
}  // namespace moe
