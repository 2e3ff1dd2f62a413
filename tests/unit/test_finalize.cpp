#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/finalize.h"
#include "kernels/weighted_log_softmax.h"
#include "kernels/weighted_softmax.h"

TEST(FinalizeChoicesCpu, LettersChoicesMassPredictionEntropy) {
  // vocab 6, letters A..C at tokens 4, 1, 5; row 0 puts most mass on a non-letter token 0.
  const std::vector<float> dist = {0.5f, 0.1f, 0.0f, 0.05f, 0.15f, 0.2f,   // row 0
                                   0.0f, 0.7f, 0.0f, 0.0f, 0.1f, 0.2f};    // row 1
  const int32_t tokens[3] = {4, 1, 5};
  std::vector<float> letter(2 * 4), choice(2 * 4), mass(2), ent(2);
  std::vector<int32_t> pred(2), vc(2);
  moe::kernels::finalizeChoicesCpu(dist.data(), 2, 6, tokens, 3, 4, letter.data(), choice.data(), mass.data(),
                                   pred.data(), vc.data(), ent.data());
  EXPECT_FLOAT_EQ(letter[0], 0.15f);
  EXPECT_FLOAT_EQ(letter[1], 0.1f);
  EXPECT_FLOAT_EQ(letter[2], 0.2f);
  EXPECT_TRUE(std::isnan(letter[3]));
  EXPECT_TRUE(std::isnan(choice[3]));
  EXPECT_NEAR(mass[0], 0.45, 1e-7);
  EXPECT_NEAR(choice[0], 0.15 / 0.45, 1e-7);
  EXPECT_EQ(pred[0], 2);
  EXPECT_EQ(vc[0], -1);  // argmax of the vocabulary is token 0, not a letter
  EXPECT_EQ(pred[1], 1);
  EXPECT_EQ(vc[1], 1);
  double h0 = 0;
  for (int v = 0; v < 6; ++v)
    if (dist[v] > 0) h0 -= dist[v] * std::log(static_cast<double>(dist[v]));
  EXPECT_NEAR(ent[0], h0, 1e-6);
}

TEST(GeometricPooling, LogSoftmaxSumThenSoftmaxIsNormalisedProduct) {
  // Two experts over a vocabulary of 3; equal weights: p ~ sqrt(p1 * p2).
  const float l1[3] = {1.0f, 2.0f, 0.5f}, l2[3] = {0.0f, -1.0f, 3.0f};
  float a[3], b[3], sum[3], p[3];
  const float w = 0.5f;
  moe::kernels::weightedLogSoftmaxCpu(l1, 1, 3, 1.0f, &w, a);
  moe::kernels::weightedLogSoftmaxCpu(l2, 1, 3, 1.0f, &w, b);
  for (int i = 0; i < 3; ++i) sum[i] = a[i] + b[i];
  moe::kernels::weightedSoftmaxCpu(sum, 1, 3, 1.0f, nullptr, p, nullptr, nullptr);
  float p1[3], p2[3];
  moe::kernels::weightedSoftmaxCpu(l1, 1, 3, 1.0f, nullptr, p1, nullptr, nullptr);
  moe::kernels::weightedSoftmaxCpu(l2, 1, 3, 1.0f, nullptr, p2, nullptr, nullptr);
  double z = 0;
  for (int i = 0; i < 3; ++i) z += std::sqrt(static_cast<double>(p1[i]) * p2[i]);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], std::sqrt(static_cast<double>(p1[i]) * p2[i]) / z, 1e-6);
}
