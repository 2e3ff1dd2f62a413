// The prefix cache (EngineOptions::prefixCache, worker/torch/expert.cpp): for every architecture
// fixture, batches of prompts that share a long prefix (as 5-shot prompts of one subject do) give
// the same last-token logits, hidden states and Mixtral router counts with the cache as without
// it, within 1e-4 in float32: batch sizes 1 and 7, padded suffixes of different lengths, prefixes
// longer than the sliding windows (Mistral, Gemma 3: 16 tokens), a later batch reusing the cached
// prefix and a batch of another prefix replacing it. ForwardStats account for every token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "worker/expert.h"

namespace moe {
namespace {

const std::string kModels = std::string(MOE_SOURCE_DIR) + "/tests/fixtures/models/";

using Batch = std::vector<std::vector<int32_t>>;

// Prompts made of the fixture's own token ids: a shared prefix of `prefixLen` tokens (from the
// golden's longest prompt), then per question a suffix of 3..17 tokens from another prompt.
Batch makeBatch(const std::string& name, int64_t prefixLen, int rows, int salt) {
  nlohmann::json g = nlohmann::json::parse(std::ifstream(kModels + name + "/golden.json"));
  auto ps = g["prompts"].get<Batch>();
  const auto& longest = ps.back();
  Batch out;
  for (int r = 0; r < rows; ++r) {
    std::vector<int32_t> p(longest.begin(), longest.begin() + prefixLen);
    const auto& src = ps[3];
    const int n = 3 + (r * 5 + salt) % 15;
    for (int i = 0; i < n; ++i) p.push_back(src[static_cast<size_t>((r * 7 + i + salt) % src.size())]);
    out.push_back(std::move(p));
  }
  return out;
}

struct Out {
  std::vector<float> logits, hidden;
  std::vector<int32_t> counts;
  ForwardStats stats;
};

Out run(Expert& e, const Batch& b) {
  Out o;
  e.forward(b, o.logits, &o.hidden);
  o.counts = e.routerCounts();
  o.stats = e.lastForwardStats();
  return o;
}

double maxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

int64_t tokens(const Batch& b) {
  int64_t n = 0;
  for (const auto& p : b) n += static_cast<int64_t>(p.size());
  return n;
}

void checkArchitecture(const std::string& name) {
  EngineOptions on, off;
  on.dtype = off.dtype = "fp32";
  off.prefixCache = false;
  auto cached = Expert::load(kModels + name, on);
  auto plain = Expert::load(kModels + name, off);
  const int64_t P = 60;  // longer than the 16-token windows, within GPT-2's 192 positions
  double worst = 0;
  for (int rows : {1, 7}) {
    for (int salt : {0, 1}) {  // the second batch of the same prefix reuses the cache
      Batch b = makeBatch(name, P, rows, salt + rows);
      Out c = run(*cached, b), u = run(*plain, b);
      const std::string what = name + " rows " + std::to_string(rows) + " salt " + std::to_string(salt);
      worst = std::max({worst, maxDiff(c.logits, u.logits), maxDiff(c.hidden, u.hidden)});
      EXPECT_LE(maxDiff(c.logits, u.logits), 1e-4) << what;
      EXPECT_LE(maxDiff(c.hidden, u.hidden), 1e-4) << what;
      EXPECT_EQ(c.counts, u.counts) << what;
      // Accounting: without the cache every token is computed; with it the prefix once at most.
      EXPECT_EQ(u.stats.promptTokens, tokens(b)) << what;
      EXPECT_EQ(u.stats.computedTokens, tokens(b)) << what;
      EXPECT_EQ(u.stats.cachedTokens, 0) << what;
      EXPECT_EQ(c.stats.promptTokens, tokens(b)) << what;
      EXPECT_EQ(c.stats.computedTokens + c.stats.cachedTokens, c.stats.promptTokens) << what;
      const int64_t shared = rows == 1 ? static_cast<int64_t>(b[0].size()) - 1 : P;
      if (salt == 0) {
        // A new prefix: computed once (the batch's whole shared prefix), saved for the other rows.
        EXPECT_GE(c.stats.cachedTokens, (rows - 1) * P) << what;
        EXPECT_LE(c.stats.computedTokens, tokens(b) - (rows - 1) * shared) << what;
      } else {
        // The same prefix again: served from the cache for every row.
        EXPECT_GE(c.stats.cachedTokens, rows * P) << what;
      }
      EXPECT_GT(c.stats.seconds, 0.0) << what;
    }
  }
  // Another prefix replaces the cached one (and still agrees).
  Batch other = makeBatch(name, 30, 4, 3);
  for (auto& p : other) std::reverse(p.begin(), p.begin() + 30);
  Out c = run(*cached, other), u = run(*plain, other);
  EXPECT_LE(maxDiff(c.logits, u.logits), 1e-4) << name << " new prefix";
  EXPECT_EQ(c.counts, u.counts) << name << " new prefix";
  EXPECT_EQ(c.stats.cachedTokens, 3 * 30) << name << " new prefix";
  // And a batch sharing too little is computed whole.
  Batch unrelated = {other[0], std::vector<int32_t>(other[1].rbegin(), other[1].rend())};
  c = run(*cached, unrelated);
  u = run(*plain, unrelated);
  EXPECT_LE(maxDiff(c.logits, u.logits), 1e-4) << name << " unrelated";
  std::printf("%-8s max |cached - uncached| %.3g\n", name.c_str(), worst);
}

TEST(PrefixCache, Llama) { checkArchitecture("llama"); }
TEST(PrefixCache, Mistral) { checkArchitecture("mistral"); }
TEST(PrefixCache, Qwen2) { checkArchitecture("qwen2"); }
TEST(PrefixCache, Mixtral) { checkArchitecture("mixtral"); }
TEST(PrefixCache, Gpt2) { checkArchitecture("gpt2"); }
TEST(PrefixCache, Gemma3) { checkArchitecture("gemma3"); }

}  // namespace
}  // namespace moe
