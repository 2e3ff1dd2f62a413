// weighted_softmax: the CPU reference against closed forms, and the CUDA kernel against the CPU
// reference where a device exists (skipped with a reason otherwise).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/weighted_softmax.h"

#if MOE_USE_CUDA
#include <cuda_runtime.h>
#endif

TEST(WeightedSoftmaxCpu, UniformLogitsGiveUniformProbs) {
  const int64_t V = 1000;
  std::vector<float> logits(2 * V, 3.0f), probs(2 * V), lse(2), ent(2);
  const float w[2] = {1.0f, 0.25f};
  moe::kernels::weightedSoftmaxCpu(logits.data(), 2, V, 1.0f, w, probs.data(), lse.data(), ent.data());
  for (int64_t v = 0; v < V; ++v) {
    EXPECT_NEAR(probs[v], 1.0 / V, 1e-9);
    EXPECT_NEAR(probs[V + v], 0.25 / V, 1e-9);
  }
  EXPECT_NEAR(lse[0], 3.0 + std::log(1000.0), 1e-5);
  EXPECT_NEAR(ent[0], std::log(1000.0), 1e-5);
}

TEST(WeightedSoftmaxCpu, TemperatureAndEntropyClosedForm) {
  // Two logits 0 and ln 3 at T = 1 give p = (1/4, 3/4); at T = 2 they give (1, sqrt 3) / (1 + sqrt 3).
  const float logits[2] = {0.0f, static_cast<float>(std::log(3.0))};
  float p[2], lse, ent;
  moe::kernels::weightedSoftmaxCpu(logits, 1, 2, 1.0f, nullptr, p, &lse, &ent);
  EXPECT_NEAR(p[0], 0.25, 1e-7);
  EXPECT_NEAR(p[1], 0.75, 1e-7);
  EXPECT_NEAR(ent, -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), 1e-6);
  moe::kernels::weightedSoftmaxCpu(logits, 1, 2, 2.0f, nullptr, p, &lse, &ent);
  EXPECT_NEAR(p[0], 1.0 / (1.0 + std::sqrt(3.0)), 1e-6);
  EXPECT_THROW(moe::kernels::weightedSoftmaxCpu(logits, 1, 2, 0.0f, nullptr, p, &lse, &ent), std::exception);
}

TEST(WeightedSoftmaxCpu, LargeLogitsDoNotOverflowAndSumToWeight) {
  const int64_t V = 50257;
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 30.0f);
  std::vector<float> logits(3 * V), probs(3 * V);
  for (auto& x : logits) x = 1000.0f + n(rng);
  const float w[3] = {0.2f, 0.3f, 0.5f};
  moe::kernels::weightedSoftmaxCpu(logits.data(), 3, V, 1.0f, w, probs.data(), nullptr, nullptr);
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) {
      ASSERT_TRUE(std::isfinite(probs[r * V + v]));
      s += probs[r * V + v];
    }
    EXPECT_NEAR(s, w[r], 1e-5);
  }
}

TEST(WeightedSoftmaxCuda, MatchesCpuReference) {
#if MOE_USE_CUDA
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    GTEST_SKIP() << "no CUDA device on this machine: the CUDA kernel is compiled but not run";
  for (int64_t V : {1, 7, 4096, 50257, 262144}) {
    const int64_t B = 5;
    std::mt19937 rng(static_cast<unsigned>(V));
    std::normal_distribution<float> n(0.0f, 5.0f);
    std::vector<float> logits(B * V), w(B), ref(B * V), got(B * V), lseRef(B), lseGot(B), entRef(B), entGot(B);
    for (auto& x : logits) x = n(rng);
    for (int64_t b = 0; b < B; ++b) w[b] = 0.1f * static_cast<float>(b + 1);
    moe::kernels::weightedSoftmaxCpu(logits.data(), B, V, 0.7f, w.data(), ref.data(), lseRef.data(), entRef.data());
    float *dL, *dW, *dP, *dLse, *dEnt;
    cudaMalloc(&dL, B * V * 4); cudaMalloc(&dW, B * 4); cudaMalloc(&dP, B * V * 4);
    cudaMalloc(&dLse, B * 4); cudaMalloc(&dEnt, B * 4);
    cudaMemcpy(dL, logits.data(), B * V * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dW, w.data(), B * 4, cudaMemcpyHostToDevice);
    moe::kernels::weightedSoftmaxCuda(dL, B, V, 0.7f, dW, dP, dLse, dEnt, nullptr);
    cudaMemcpy(got.data(), dP, B * V * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(lseGot.data(), dLse, B * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(entGot.data(), dEnt, B * 4, cudaMemcpyDeviceToHost);
    cudaFree(dL); cudaFree(dW); cudaFree(dP); cudaFree(dLse); cudaFree(dEnt);
    int shown = 0;
    for (int64_t i = 0; i < B * V; ++i) {
      const float d = std::fabs(got[i] - ref[i]);
      if (d > 1e-7f + 1e-4f * std::fabs(ref[i]) && shown++ < 5)
        ADD_FAILURE() << "V=" << V << " i=" << i << " got " << got[i] << " ref " << ref[i];
    }
    for (int64_t b = 0; b < B; ++b) {
      EXPECT_NEAR(lseGot[b], lseRef[b], 1e-4 + 1e-5 * std::fabs(lseRef[b]));
      EXPECT_NEAR(entGot[b], entRef[b], 1e-3);
    }
  }
#else
  GTEST_SKIP() << "built without CUDA (MOE_CUDA=OFF)";
#endif
}
