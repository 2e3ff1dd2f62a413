// The top-k gate's CPU reference (the spec of the CUDA kernel) against closed forms: plain softmax
// with temperature, top-k renormalisation, k = 1 one-hot, ties to the lower expert index, the
// expert-major layout, masked experts, and the refused inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/gate.h"

namespace mk = moe::kernels;

namespace {
struct Gate {
  std::vector<float> w;
  std::vector<int32_t> top;
};
Gate gate(const std::vector<float>& scores, int E, float T, int k) {
  const int64_t rows = static_cast<int64_t>(scores.size()) / E;
  Gate g{std::vector<float>(scores.size()), std::vector<int32_t>(rows * k)};
  mk::gateTopKCpu(scores.data(), rows, E, E, 1, T, k, g.w.data(), g.top.data());
  return g;
}
}  // namespace

TEST(GateCpu, KEqualsEIsSoftmaxWithTemperature) {
  // exp(s / 2) = 1, 2, 3 for s = 0, 2 ln 2, 2 ln 3: weights 1/6, 2/6, 3/6.
  const std::vector<float> s = {0.0f, static_cast<float>(2 * std::log(2.0)), static_cast<float>(2 * std::log(3.0))};
  const Gate g = gate(s, 3, 2.0f, 3);
  EXPECT_NEAR(g.w[0], 1.0 / 6, 1e-7);
  EXPECT_NEAR(g.w[1], 2.0 / 6, 1e-7);
  EXPECT_NEAR(g.w[2], 3.0 / 6, 1e-7);
  EXPECT_EQ(g.top, (std::vector<int32_t>{2, 1, 0}));
}

TEST(GateCpu, TopKRenormalisesOverTheChosenExperts) {
  const std::vector<float> s = {0.0f, static_cast<float>(2 * std::log(2.0)), static_cast<float>(2 * std::log(3.0))};
  const Gate g = gate(s, 3, 2.0f, 2);
  EXPECT_EQ(g.w[0], 0.0f);
  EXPECT_NEAR(g.w[1], 2.0 / 5, 1e-7);
  EXPECT_NEAR(g.w[2], 3.0 / 5, 1e-7);
  EXPECT_EQ(g.top, (std::vector<int32_t>{2, 1}));
}

TEST(GateCpu, KOneIsOneHotOnTheBestExpert) {
  const std::vector<float> s = {0.3f, -1.0f, 2.5f, 2.4f,   // row 0: expert 2
                                7.0f, 1.0f, 1.0f, 6.99f};  // row 1: expert 0
  const Gate g = gate(s, 4, 0.1f, 1);
  EXPECT_EQ(g.w, (std::vector<float>{0, 0, 1, 0, 1, 0, 0, 0}));
  EXPECT_EQ(g.top, (std::vector<int32_t>{2, 0}));
}

TEST(GateCpu, TiesGoToTheLowerExpertIndex) {
  const std::vector<float> s = {1.0f, 3.0f, 3.0f, 0.0f, 3.0f};
  Gate g = gate(s, 5, 1.0f, 2);
  EXPECT_EQ(g.top, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(g.w, (std::vector<float>{0, 0.5f, 0.5f, 0, 0}));
  g = gate(s, 5, 1.0f, 1);
  EXPECT_EQ(g.top, (std::vector<int32_t>{1}));
  g = gate(s, 5, 1.0f, 4);
  EXPECT_EQ(g.top, (std::vector<int32_t>{1, 2, 4, 0}));
  const double e = std::exp(-2.0);  // expert 0 is 2 below the three tied experts
  EXPECT_NEAR(g.w[0], e / (3 + e), 1e-7);
  EXPECT_NEAR(g.w[4], 1 / (3 + e), 1e-7);
  EXPECT_EQ(g.w[3], 0.0f);
}

TEST(GateCpu, TemperatureSharpensAndFlattens) {
  const std::vector<float> s = {0.0f, 1.0f};
  EXPECT_NEAR(gate(s, 2, 1.0f, 2).w[1], 1 / (1 + std::exp(-1.0)), 1e-7);
  EXPECT_NEAR(gate(s, 2, 0.01f, 2).w[1], 1 / (1 + std::exp(-100.0)), 1e-7);  // nearly one-hot
  EXPECT_NEAR(gate(s, 2, 1e6f, 2).w[0], 0.5, 1e-6);                         // nearly uniform
}

TEST(GateCpu, MaskedExpertsGetNoWeight) {
  const std::vector<float> s = {-INFINITY, 0.0f, 0.0f};
  const Gate g = gate(s, 3, 1.0f, 3);
  EXPECT_EQ(g.w, (std::vector<float>{0, 0.5f, 0.5f}));
  EXPECT_EQ(g.top, (std::vector<int32_t>{1, 2, 0}));
}

TEST(GateCpu, ExpertMajorLayoutGivesTheSameWeights) {
  // [E = 3, rows = 4] as allgather leaves it (each rank's column of scores after the previous one).
  std::mt19937 rng(3);
  std::normal_distribution<float> n;
  const int E = 3, rows = 4;
  std::vector<float> rowMajor(rows * E), expertMajor(rows * E);
  for (int r = 0; r < rows; ++r)
    for (int e = 0; e < E; ++e) expertMajor[e * rows + r] = rowMajor[r * E + e] = n(rng);
  std::vector<float> a(rows * E), b(rows * E);
  std::vector<int32_t> ta(rows * 2), tb(rows * 2);
  mk::gateTopKCpu(rowMajor.data(), rows, E, E, 1, 0.8f, 2, a.data(), ta.data());
  mk::gateTopKCpu(expertMajor.data(), rows, E, 1, rows, 0.8f, 2, b.data(), tb.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(ta, tb);
  for (int r = 0; r < rows; ++r) {
    double sum = 0;
    int zeros = 0;
    for (int e = 0; e < E; ++e) {
      sum += a[r * E + e];
      zeros += a[r * E + e] == 0.0f;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    EXPECT_EQ(zeros, 1);
  }
}

TEST(GateCpu, RefusesBadArguments) {
  std::vector<float> s = {0.0f, 1.0f}, w(2);
  EXPECT_THROW(mk::gateTopKCpu(s.data(), 1, 2, 2, 1, 1.0f, 0, w.data(), nullptr), moe::Error);
  EXPECT_THROW(mk::gateTopKCpu(s.data(), 1, 2, 2, 1, 1.0f, 3, w.data(), nullptr), moe::Error);
  EXPECT_THROW(mk::gateTopKCpu(s.data(), 1, 2, 2, 1, 0.0f, 1, w.data(), nullptr), moe::Error);
  EXPECT_THROW(mk::gateTopKCpu(s.data(), 1, 2, 2, 1, INFINITY, 1, w.data(), nullptr), moe::Error);
  s[1] = NAN;
  EXPECT_THROW(mk::gateTopKCpu(s.data(), 1, 2, 2, 1, 1.0f, 1, w.data(), nullptr), moe::Error);
  s = {-INFINITY, -INFINITY};
  EXPECT_THROW(mk::gateTopKCpu(s.data(), 1, 2, 2, 1, 1.0f, 1, w.data(), nullptr), moe::Error);
}
