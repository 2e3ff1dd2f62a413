// CPU references of the GPU path's kernels: the 16-bit conversions, softmax and log-softmax of
// bf16/fp16 logits against closed forms, masked (-inf) logits, and multi-threaded rows equal to
// rows computed one at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/finalize.h"
#include "kernels/weighted_log_softmax.h"
#include "kernels/weighted_softmax.h"

namespace mk = moe::kernels;

TEST(DType, SixteenBitConversionsRoundToNearestEven) {
  EXPECT_EQ(mk::floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(mk::floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(mk::floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(mk::floatToHalf(65504.0f), 0x7bff);  // largest half
  EXPECT_EQ(mk::floatToHalf(65520.0f), 0x7c00);  // rounds up to inf
  EXPECT_EQ(mk::floatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(mk::floatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // a tie, to even (0)
  EXPECT_EQ(mk::floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even: down
  EXPECT_EQ(mk::floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even: up
  EXPECT_EQ(mk::floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even: down
  EXPECT_EQ(mk::floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(mk::floatToBf16(-INFINITY), 0xff80);
  EXPECT_EQ(mk::floatToHalf(-INFINITY), 0xfc00);
  EXPECT_TRUE(std::isnan(mk::bf16ToFloat(mk::floatToBf16(NAN))));
  EXPECT_TRUE(std::isnan(mk::halfToFloat(mk::floatToHalf(NAN))));
  EXPECT_EQ(mk::halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(mk::halfToFloat(0x8000), 0.0f);
  EXPECT_TRUE(std::signbit(mk::halfToFloat(0x8000)));
  // Every finite 16-bit value survives a round trip through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto b = static_cast<uint16_t>(h);
    if ((b & 0x7c00) != 0x7c00) {
      ASSERT_EQ(mk::floatToHalf(mk::halfToFloat(b)), b) << std::hex << h;
    }
    if ((b & 0x7f80) != 0x7f80) {
      ASSERT_EQ(mk::floatToBf16(mk::bf16ToFloat(b)), b) << std::hex << h;
    }
  }
}

class SoftmaxDType : public ::testing::TestWithParam<mk::DType> {};

std::vector<uint16_t> encode(const std::vector<float>& x, mk::DType t) {
  std::vector<uint16_t> out;
  for (float v : x) out.push_back(t == mk::DType::BF16 ? mk::floatToBf16(v) : mk::floatToHalf(v));
  return out;
}

TEST_P(SoftmaxDType, ClosedFormWithMaskAndTemperature) {
  const mk::DType t = GetParam();
  // 0, 1, 2 and a masked entry are exact in both formats; at T = 1/2 the weights are 1, e^2, e^4.
  const std::vector<float> x = {0.0f, 1.0f, -INFINITY, 2.0f};
  const auto h = encode(x, t);
  float p[4], lse, ent;
  const float w = 0.5f;
  mk::weightedSoftmaxCpu(h.data(), t, 1, 4, 0.5f, &w, p, &lse, &ent);
  const double z = 1 + std::exp(2.0) + std::exp(4.0);
  EXPECT_NEAR(p[0], 0.5 / z, 1e-8);
  EXPECT_NEAR(p[1], 0.5 * std::exp(2.0) / z, 1e-7);
  EXPECT_EQ(p[2], 0.0f);
  EXPECT_NEAR(p[3], 0.5 * std::exp(4.0) / z, 1e-7);
  EXPECT_NEAR(lse, std::log(z), 1e-6);
  double h0 = 0;
  for (double q : {1 / z, std::exp(2.0) / z, std::exp(4.0) / z}) h0 -= q * std::log(q);
  EXPECT_NEAR(ent, h0, 1e-6);  // the masked entry adds 0 log 0 = 0

  float lp[4];
  mk::weightedLogSoftmaxCpu(h.data(), t, 1, 4, 0.5f, &w, lp);
  EXPECT_NEAR(lp[0], 0.5 * (0 - std::log(z)), 1e-6);
  EXPECT_NEAR(lp[3], 0.5 * (4 - std::log(z)), 1e-6);
  EXPECT_EQ(lp[2], -INFINITY);
}

TEST_P(SoftmaxDType, EqualsFp32SoftmaxOfTheWidenedValues) {
  const mk::DType t = GetParam();
  const int64_t B = 5, V = 3001;
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.0f, 6.0f);
  std::vector<float> x(B * V);
  for (auto& v : x) v = n(rng) + 300.0f;  // large logits: bf16 keeps 8 bits of them
  const auto h = encode(x, t);
  std::vector<float> widened(B * V);
  for (int64_t i = 0; i < B * V; ++i) widened[i] = t == mk::DType::BF16 ? mk::bf16ToFloat(h[i]) : mk::halfToFloat(h[i]);
  std::vector<float> a(B * V), b(B * V), la(B), lb(B), ea(B), eb(B);
  mk::weightedSoftmaxCpu(h.data(), t, B, V, 1.5f, nullptr, a.data(), la.data(), ea.data());
  mk::weightedSoftmaxCpu(widened.data(), B, V, 1.5f, nullptr, b.data(), lb.data(), eb.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(ea, eb);
  for (int64_t r = 0; r < B; ++r) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += a[r * V + v];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(SixteenBit, SoftmaxDType, ::testing::Values(mk::DType::BF16, mk::DType::F16),
                         [](const auto& info) { return std::string(mk::dtypeName(info.param)); });

TEST(WeightedSoftmaxCpu, RowWithoutAFiniteLogitIsNaN) {
  const float x[3] = {-INFINITY, -INFINITY, -INFINITY};
  float p[3], lse, ent;
  mk::weightedSoftmaxCpu(x, 1, 3, 1.0f, nullptr, p, &lse, &ent);
  EXPECT_TRUE(std::isnan(p[0]) && std::isnan(ent));
}

TEST(KernelsCpu, ThreadedRowsEqualRowsComputedAlone) {
  // 16 rows x 20011: enough work for the references to use every hardware thread.
  const int64_t B = 16, V = 20011;
  std::mt19937 rng(2);
  std::normal_distribution<float> n(0.0f, 3.0f);
  std::vector<float> x(B * V), w(B);
  for (auto& v : x) v = n(rng);
  for (int64_t b = 0; b < B; ++b) w[b] = 0.1f * (b + 1);
  std::vector<float> all(B * V), lse(B), ent(B), logAll(B * V);
  mk::weightedSoftmaxCpu(x.data(), B, V, 0.9f, w.data(), all.data(), lse.data(), ent.data());
  mk::weightedLogSoftmaxCpu(x.data(), B, V, 0.9f, w.data(), logAll.data());
  const int32_t letters[4] = {3, 17, 20010, 9};
  std::vector<float> lp(B * 4), ent2(B);
  std::vector<int32_t> pred(B), vc(B);
  mk::finalizeChoicesCpu(all.data(), B, V, letters, 4, 4, lp.data(), nullptr, nullptr, pred.data(), vc.data(),
                         ent2.data());
  for (int64_t b = 0; b < B; ++b) {
    std::vector<float> one(V), logOne(V), lp1(4), e2(1);
    float l1, e1;
    int32_t p1, v1;
    mk::weightedSoftmaxCpu(x.data() + b * V, 1, V, 0.9f, &w[b], one.data(), &l1, &e1);
    mk::weightedLogSoftmaxCpu(x.data() + b * V, 1, V, 0.9f, &w[b], logOne.data());
    mk::finalizeChoicesCpu(all.data() + b * V, 1, V, letters, 4, 4, lp1.data(), nullptr, nullptr, &p1, &v1, e2.data());
    ASSERT_EQ(std::vector<float>(all.begin() + b * V, all.begin() + (b + 1) * V), one) << "row " << b;
    ASSERT_EQ(std::vector<float>(logAll.begin() + b * V, logAll.begin() + (b + 1) * V), logOne) << "row " << b;
    EXPECT_EQ(lse[b], l1);
    EXPECT_EQ(ent[b], e1);
    EXPECT_EQ(pred[b], p1);
    EXPECT_EQ(vc[b], v1);
    EXPECT_EQ(ent2[b], e2[0]);
  }
}
