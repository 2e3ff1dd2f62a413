// Each CUDA kernel against its CPU reference (the spec) on the same inputs, by
// |got - ref| <= atol + rtol |ref| (the first mismatches are printed), plus: every softmax row sums
// to its weight, V in {1, 7, 4096, 32000, 50257 (odd), 128256, 151936, 262144} x B in {1, 7, 64} x
// fp32/bf16/fp16 logits, masked (-inf) logits, misaligned base pointers, ties in the arg-maxes. Without a CUDA device the device
// cases GTEST_SKIP with the reason; the launchers' argument checks run everywhere.
//   ctest --test-dir build -R kernels_gpu --output-on-failure
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/finalize.h"
#include "kernels/gate.h"
#include "kernels/weighted_log_softmax.h"
#include "kernels/weighted_softmax.h"

#if MOE_USE_CUDA
#include "comm/cuda_stream.h"
#endif

namespace mk = moe::kernels;

#if MOE_USE_CUDA
namespace {

std::string noDeviceReason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device on this machine (cudaGetDeviceCount: ") + cudaGetErrorString(e) +
           "): the kernels are compiled but not run";
  }
  if (n == 0) return "no CUDA device on this machine: the kernels are compiled but not run";
  return "";
}
#define REQUIRE_DEVICE()                                     \
  do {                                                       \
    const std::string why = noDeviceReason();                \
    if (!why.empty()) GTEST_SKIP() << why;                   \
  } while (0)

// Counts elements outside atol + rtol |ref| (equal infinities and NaN == NaN count as equal) and
// reports the first few.
template <typename T>
int64_t expectClose(const std::string& what, const std::vector<T>& got, const std::vector<T>& ref, double atol,
                    double rtol, int64_t rowLen = 0) {
  EXPECT_EQ(got.size(), ref.size()) << what;
  int64_t bad = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (g == r || (std::isnan(g) && std::isnan(r))) continue;
    if (std::fabs(g - r) <= atol + rtol * std::fabs(r)) continue;
    if (bad++ < 5) {
      if (rowLen > 0)
        ADD_FAILURE() << what << ": [" << i / rowLen << ", " << i % rowLen << "] got " << g << " ref " << r
                      << " (|d| = " << std::fabs(g - r) << ")";
      else
        ADD_FAILURE() << what << ": [" << i << "] got " << g << " ref " << r;
    }
  }
  if (bad > 5) ADD_FAILURE() << what << ": " << bad << " mismatches in all";
  return bad;
}

// Logits as fp32 values (what the CPU reference sees after widening) and their raw bytes in `type`.
struct Logits {
  std::vector<float> values;
  std::vector<uint8_t> bytes;
};

Logits makeLogits(int64_t B, int64_t V, mk::DType type, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 4.0f);
  Logits l;
  l.values.resize(B * V);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t v = 0; v < V; ++v) {
      float x = n(rng) + (b % 3 == 2 ? 900.0f : 0.0f);  // large logits: no loss expected
      if (V > 1 && v % 97 == 5) x = -INFINITY;          // masked vocabulary entries
      l.values[b * V + v] = x;
    }
  l.bytes.resize(B * V * mk::dtypeSize(type));
  for (int64_t i = 0; i < B * V; ++i) {
    if (type == mk::DType::F32) {
      std::memcpy(&l.bytes[i * 4], &l.values[i], 4);
      continue;
    }
    const uint16_t h = type == mk::DType::BF16 ? mk::floatToBf16(l.values[i]) : mk::floatToHalf(l.values[i]);
    std::memcpy(&l.bytes[i * 2], &h, 2);
    l.values[i] = type == mk::DType::BF16 ? mk::bf16ToFloat(h) : mk::halfToFloat(h);
  }
  return l;
}

std::vector<float> rowWeights(int64_t B) {
  std::vector<float> w(B);
  for (int64_t b = 0; b < B; ++b) w[b] = 0.05f + 0.9f * static_cast<float>(b % 5) / 4.0f;
  return w;
}

}  // namespace

using Shape = std::tuple<int64_t, int64_t, mk::DType>;  // V, B, dtype

class KernelsGpu : public ::testing::TestWithParam<Shape> {};

TEST_P(KernelsGpu, WeightedSoftmaxMatchesCpu) {
  REQUIRE_DEVICE();
  const auto [V, B, type] = GetParam();
  const Logits l = makeLogits(B, V, type, static_cast<unsigned>(V * 131 + B));
  const auto w = rowWeights(B);
  const float T = 0.7f;
  std::vector<float> ref(B * V), lseRef(B), entRef(B);
  mk::weightedSoftmaxCpu(l.bytes.data(), type, B, V, T, w.data(), ref.data(), lseRef.data(), entRef.data());

  moe::DeviceBuffer<uint8_t> dL(l.bytes.size());
  moe::DeviceBuffer<float> dW(B), dP(B * V), dLse(B), dEnt(B);
  dL.upload(l.bytes.data(), l.bytes.size());
  dW.upload(w.data(), B);
  moe::CudaStream stream;
  mk::weightedSoftmaxCuda(dL.get(), type, B, V, T, dW.get(), dP.get(), dLse.get(), dEnt.get(), stream.get());
  stream.synchronize();
  std::vector<float> got(B * V), lse(B), ent(B);
  dP.download(got.data(), got.size());
  dLse.download(lse.data(), B);
  dEnt.download(ent.data(), B);
  const std::string tag = std::string("softmax ") + mk::dtypeName(type) + " V=" + std::to_string(V) +
                          " B=" + std::to_string(B);
  expectClose(tag + " probs", got, ref, 1e-7, 1e-4, V);
  expectClose(tag + " lse", lse, lseRef, 1e-5, 1e-6);
  expectClose(tag + " entropy", ent, entRef, 1e-4, 1e-4);
  for (int64_t b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += got[b * V + v];
    EXPECT_NEAR(s, w[b], 1e-4 * w[b]) << tag << " row " << b << " does not sum to its weight";
  }

  // Unweighted: each row is a distribution that sums to 1.
  mk::weightedSoftmaxCuda(dL.get(), type, B, V, 1.0f, nullptr, dP.get(), nullptr, nullptr, stream.get());
  stream.synchronize();
  dP.download(got.data(), got.size());
  for (int64_t b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += got[b * V + v];
    EXPECT_NEAR(s, 1.0, 1e-4) << tag << " unweighted row " << b;
  }
}

TEST_P(KernelsGpu, WeightedLogSoftmaxMatchesCpu) {
  REQUIRE_DEVICE();
  const auto [V, B, type] = GetParam();
  const Logits l = makeLogits(B, V, type, static_cast<unsigned>(V * 7 + B));
  const auto w = rowWeights(B);
  const float T = 1.3f;
  std::vector<float> ref(B * V), got(B * V);
  mk::weightedLogSoftmaxCpu(l.bytes.data(), type, B, V, T, w.data(), ref.data());
  moe::DeviceBuffer<uint8_t> dL(l.bytes.size());
  moe::DeviceBuffer<float> dW(B), dOut(B * V);
  dL.upload(l.bytes.data(), l.bytes.size());
  dW.upload(w.data(), B);
  mk::weightedLogSoftmaxCuda(dL.get(), type, B, V, T, dW.get(), dOut.get(), nullptr);
  dOut.download(got.data(), got.size());
  expectClose(std::string("log-softmax ") + mk::dtypeName(type) + " V=" + std::to_string(V) + " B=" +
                  std::to_string(B),
              got, ref, 2e-5, 1e-5, V);
}

TEST_P(KernelsGpu, FinalizeMatchesCpu) {
  REQUIRE_DEVICE();
  const auto [V, B, type] = GetParam();
  if (type != mk::DType::F32) GTEST_SKIP() << "finalize reads the fp32 reduced distribution only";
  // A distribution from the reference softmax, with a letter as the arg-max in some rows and an
  // exact tie between two letters in another.
  Logits l = makeLogits(B, V, mk::DType::F32, static_cast<unsigned>(V + 3 * B));
  const int choices = V >= 4 ? 4 : static_cast<int>(V), maxChoices = 5;
  std::vector<int32_t> letters;
  for (int c = 0; c < choices; ++c) letters.push_back(static_cast<int32_t>((V - 1 - c * (V / 4 + 1) + V) % V));
  for (int64_t b = 0; b < B; ++b) {
    if (b % 2 == 1) l.values[b * V + letters[b % choices]] = 1e4f;
    if (b % 4 == 2 && choices >= 3) l.values[b * V + letters[1]] = l.values[b * V + letters[2]] = 2e4f;
  }
  std::vector<float> dist(B * V);
  mk::weightedSoftmaxCpu(l.values.data(), B, V, 1.0f, nullptr, dist.data(), nullptr, nullptr);

  const int64_t BC = B * maxChoices;
  std::vector<float> lp(BC), cp(BC), mass(B), ent(B);
  std::vector<int32_t> pred(B), vc(B);
  mk::finalizeChoicesCpu(dist.data(), B, V, letters.data(), choices, maxChoices, lp.data(), cp.data(), mass.data(),
                         pred.data(), vc.data(), ent.data());
  moe::DeviceBuffer<float> dDist(B * V), dLp(BC), dCp(BC), dMass(B), dEnt(B);
  moe::DeviceBuffer<int32_t> dPred(B), dVc(B);
  dDist.upload(dist.data(), dist.size());
  mk::finalizeChoicesCuda(dDist.get(), B, V, letters.data(), choices, maxChoices, dLp.get(), dCp.get(),
                          dMass.get(), dPred.get(), dVc.get(), dEnt.get(), nullptr);
  std::vector<float> glp(BC), gcp(BC), gmass(B), gent(B);
  std::vector<int32_t> gpred(B), gvc(B);
  dLp.download(glp.data(), BC);
  dCp.download(gcp.data(), BC);
  dMass.download(gmass.data(), B);
  dEnt.download(gent.data(), B);
  dPred.download(gpred.data(), B);
  dVc.download(gvc.data(), B);
  const std::string tag = "finalize V=" + std::to_string(V) + " B=" + std::to_string(B);
  expectClose(tag + " letterProbs", glp, lp, 0, 0, maxChoices);  // the same floats and double sums
  expectClose(tag + " choiceProbs", gcp, cp, 0, 0, maxChoices);
  expectClose(tag + " letterMass", gmass, mass, 0, 0);
  expectClose(tag + " entropy", gent, ent, 1e-4, 1e-4);
  EXPECT_EQ(gpred, pred) << tag;
  EXPECT_EQ(gvc, vc) << tag;

  // Letters only (no vocabulary scan) must give the same letter statistics.
  mk::finalizeChoicesCuda(dDist.get(), B, V, letters.data(), choices, maxChoices, dLp.get(), nullptr, nullptr,
                          dPred.get(), nullptr, nullptr, nullptr);
  dLp.download(glp.data(), BC);
  dPred.download(gpred.data(), B);
  expectClose(tag + " letters-only letterProbs", glp, lp, 0, 0, maxChoices);
  EXPECT_EQ(gpred, pred) << tag;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KernelsGpu,
    ::testing::Combine(::testing::Values<int64_t>(1, 7, 4096, 32000, 50257, 128256, 151936, 262144),
                       ::testing::Values<int64_t>(1, 7, 64),
                       ::testing::Values(mk::DType::F32, mk::DType::BF16, mk::DType::F16)),
    [](const ::testing::TestParamInfo<Shape>& info) {
      return "V" + std::to_string(std::get<0>(info.param)) + "_B" + std::to_string(std::get<1>(info.param)) + "_" +
             mk::dtypeName(std::get<2>(info.param));
    });

TEST(KernelsGpuAlignment, MisalignedBasePointersUseTheScalarHeadAndTail) {
  REQUIRE_DEVICE();
  // Rows start 1 element past a 16-byte boundary (input) and 2 elements past (output): the vector
  // middle of a row is aligned differently for input and output, so stores fall back to scalars.
  const int64_t B = 3, V = 4099;
  for (mk::DType type : {mk::DType::F32, mk::DType::BF16, mk::DType::F16}) {
    const Logits l = makeLogits(B, V, type, 99);
    const size_t es = mk::dtypeSize(type);
    std::vector<float> ref(B * V), got(B * V);
    mk::weightedSoftmaxCpu(l.bytes.data(), type, B, V, 1.0f, nullptr, ref.data(), nullptr, nullptr);
    moe::DeviceBuffer<uint8_t> dL(l.bytes.size() + 16);
    moe::DeviceBuffer<float> dP(B * V + 4);
    MOE_CUDA_CHECK(cudaMemcpy(dL.get() + es, l.bytes.data(), l.bytes.size(), cudaMemcpyHostToDevice));
    mk::weightedSoftmaxCuda(dL.get() + es, type, B, V, 1.0f, nullptr, dP.get() + 2, nullptr, nullptr, nullptr);
    MOE_CUDA_CHECK(cudaMemcpy(got.data(), dP.get() + 2, got.size() * 4, cudaMemcpyDeviceToHost));
    expectClose(std::string("misaligned softmax ") + mk::dtypeName(type), got, ref, 1e-7, 1e-4, V);
    mk::weightedLogSoftmaxCpu(l.bytes.data(), type, B, V, 1.0f, nullptr, ref.data());
    mk::weightedLogSoftmaxCuda(dL.get() + es, type, B, V, 1.0f, nullptr, dP.get() + 1, nullptr);
    MOE_CUDA_CHECK(cudaMemcpy(got.data(), dP.get() + 1, got.size() * 4, cudaMemcpyDeviceToHost));
    expectClose(std::string("misaligned log-softmax ") + mk::dtypeName(type), got, ref, 2e-5, 1e-5, V);
  }
}

TEST(KernelsGpuGate, MatchesCpuIncludingTiesAndLayouts) {
  REQUIRE_DEVICE();
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> coarse(-3, 3);  // integer scores: many exact ties
  for (int E : {1, 3, 8, 33, 100}) {
    for (int64_t rows : {1, 7, 64}) {
      std::vector<float> scores(rows * E);
      for (auto& s : scores) s = static_cast<float>(coarse(rng)) * 0.5f;
      if (E > 2) scores[1] = -INFINITY;  // a masked expert in row 0
      // The same scores expert-major ([E, rows], as allgather leaves them).
      std::vector<float> byExpert(rows * E);
      for (int64_t r = 0; r < rows; ++r)
        for (int e = 0; e < E; ++e) byExpert[e * rows + r] = scores[r * E + e];
      moe::DeviceBuffer<float> dS(rows * E), dT(rows * E), dW(rows * E);
      dS.upload(scores.data(), scores.size());
      dT.upload(byExpert.data(), byExpert.size());
      for (int k : {1, 2, E}) {
        if (k > E) continue;
        for (float T : {0.5f, 1.0f, 3.0f}) {
          std::vector<float> ref(rows * E), got(rows * E);
          std::vector<int32_t> refTop(rows * k), gotTop(rows * k);
          mk::gateTopKCpu(scores.data(), rows, E, E, 1, T, k, ref.data(), refTop.data());
          moe::DeviceBuffer<int32_t> dTop(rows * k);
          const std::string tag = "gate E=" + std::to_string(E) + " rows=" + std::to_string(rows) +
                                  " k=" + std::to_string(k) + " T=" + std::to_string(T);
          mk::gateTopKCuda(dS.get(), rows, E, E, 1, T, k, dW.get(), dTop.get(), nullptr);
          dW.download(got.data(), got.size());
          dTop.download(gotTop.data(), gotTop.size());
          expectClose(tag, got, ref, 1e-7, 1e-5, E);
          EXPECT_EQ(gotTop, refTop) << tag;
          mk::gateTopKCuda(dT.get(), rows, E, 1, rows, T, k, dW.get(), dTop.get(), nullptr);
          dW.download(got.data(), got.size());
          dTop.download(gotTop.data(), gotTop.size());
          expectClose(tag + " expert-major", got, ref, 1e-7, 1e-5, E);
          EXPECT_EQ(gotTop, refTop) << tag << " expert-major";
        }
      }
    }
  }
}
#endif  // MOE_USE_CUDA

// Argument errors are thrown by the launchers on the host before anything touches a device, so
// these run on every machine.
TEST(KernelsGpuArguments, LaunchersRefuseBadArgumentsWithoutADevice) {
#if MOE_USE_CUDA
  float x = 0;
  int32_t tok[2] = {0, 5};
  EXPECT_THROW(mk::weightedSoftmaxCuda(&x, 1, 0, 1.0f, nullptr, &x, nullptr, nullptr, nullptr), moe::Error);
  EXPECT_THROW(mk::weightedSoftmaxCuda(&x, 1, 4, 0.0f, nullptr, &x, nullptr, nullptr, nullptr), moe::Error);
  EXPECT_THROW(mk::weightedSoftmaxCuda(&x, mk::DType::F32, 1, 4, NAN, nullptr, &x, nullptr, nullptr, nullptr),
               moe::Error);
  EXPECT_THROW(mk::weightedLogSoftmaxCuda(&x, -1, 4, 1.0f, nullptr, &x, nullptr), moe::Error);
  EXPECT_THROW(mk::finalizeChoicesCuda(&x, 1, 4, tok, 2, 4, &x, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
               moe::Error);  // token 5 outside a vocabulary of 4
  EXPECT_THROW(mk::finalizeChoicesCuda(&x, 1, 4, tok, 3, 2, &x, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
               moe::Error);  // 3 choices, room for 2
  EXPECT_THROW(mk::gateTopKCuda(&x, 1, 4, 4, 1, 1.0f, 5, &x, nullptr, nullptr), moe::Error);  // k > E
  EXPECT_THROW(mk::gateTopKCuda(&x, 1, 4, 4, 1, -1.0f, 2, &x, nullptr, nullptr), moe::Error);
#else
  GTEST_SKIP() << "built without CUDA (MOE_CUDA=OFF)";
#endif
}
