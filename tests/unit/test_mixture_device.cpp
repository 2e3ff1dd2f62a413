// computeMixtureDevice (the device mixture, src/worker/mixture_device.h) against computeMixture (the
// CPU path) on the same logits, every rank one expert: V in {32000, 151936, 32001 (odd)} x B in
// {1, 7} x fp32/bf16/fp16 logits x mean/weighted/geometric x full vocabulary / answer letters, through
// both kinds of Communicator: MpiCommunicator (host memory: the device path stages through pinned
// memory) and, where built and one device per rank exists, NcclCommunicator (device buffers).
// ctest runs it on 2 ranks and on 1 rank. Probabilities, masses and entropies by
// |got - ref| <= atol + rtol |ref|; predictions and vocabulary choices exactly (the logits give every
// row clear winners, so no comparison rests on a near-tie). Without a CUDA device the device cases
// GTEST_SKIP with the reason; the argument checks, which run before anything touches a device, are
// tested everywhere.
//   ctest --test-dir build -R mixture_device --output-on-failure
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "comm/cuda_stream.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "kernels/dtype.h"
#include "mpi_test_main.h"
#include "worker/mixture.h"
#include "worker/mixture_device.h"

#if MOE_USE_NCCL
#include "comm/nccl_communicator.h"
#endif

namespace mk = moe::kernels;

namespace {
std::string g_skipDevice;  // why no device case can run here ("" when they can)
std::string g_skipNccl;    // why the NCCL backend cannot ("" when it can)
#if MOE_USE_NCCL
std::unique_ptr<moe::NcclCommunicator> g_nccl;  // one bootstrap for the whole run
#endif

constexpr int kMaxChoices = 4;

// Letter token ids: one map for a full-vocabulary mixture (the experts share a vocabulary), one
// per expert for the answer-letter mixture (their vocabularies differ).
std::vector<int32_t> lettersFor(int64_t vocab, bool full, int expert) {
  const int32_t base = full ? 1000 : 1000 + 37 * expert;
  return {base, base + 3, base + 11, static_cast<int32_t>(vocab - 2 - (full ? 0 : expert))};
}

// Expert `e`'s logits: N(0, 2) noise, then per row clear winners shared by every expert, so the
// mixtures inherit them: letters ranked 0.7 logits apart in a row-dependent order; even rows: the
// top letter also tops the vocabulary by 3 (vocabChoice = that letter); odd rows: a non-letter token
// does (vocabChoice = -1).
std::vector<float> logitsFor(int64_t rows, int64_t vocab, bool full, int e, int choices) {
  std::mt19937 rng(static_cast<unsigned>(vocab * 131 + rows * 17 + e));
  std::normal_distribution<float> noise(0.f, 2.f);
  std::vector<float> x(rows * vocab);
  for (auto& v : x) v = noise(rng);
  const auto letters = lettersFor(vocab, full, e);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * vocab;
    const float top = *std::max_element(row, row + vocab);
    for (int c = 0; c < choices; ++c) row[letters[c]] = top - 1.0f - 0.7f * static_cast<float>((c + r) % choices);
    const int best = static_cast<int>((choices - r % choices) % choices);
    if (r % 2 == 0) {
      row[letters[best]] = top + 3.0f;
    } else {
      int64_t t = (r * 7919 + 13) % vocab;
      while (std::find(letters.begin(), letters.end(), t) != letters.end()) t = (t + 1) % vocab;
      row[t] = top + 3.0f;
    }
  }
  return x;
}

// Rows of weights [B, E] summing to 1: uniform for Mean, row- and expert-dependent otherwise.
std::vector<float> weightsFor(int64_t rows, int experts, moe::MixtureMode mode) {
  std::vector<float> w(rows * experts);
  for (int64_t b = 0; b < rows; ++b) {
    float sum = 0;
    for (int e = 0; e < experts; ++e)
      sum += w[b * experts + e] = mode == moe::MixtureMode::Mean ? 1.f : 1.f + static_cast<float>((b + 2 * e) % 3);
    for (int e = 0; e < experts; ++e) w[b * experts + e] /= sum;
  }
  return w;
}

// The logits as the device sees them (bytes of `type`) and as the CPU path sees them (widened).
struct Logits {
  std::vector<uint8_t> bytes;
  std::vector<float> widened;
};
Logits encode(const std::vector<float>& x, mk::DType type) {
  Logits l;
  l.bytes.resize(x.size() * mk::dtypeSize(type));
  l.widened.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (type == mk::DType::F32) {
      std::memcpy(l.bytes.data() + 4 * i, &x[i], 4);
      l.widened[i] = x[i];
    } else {
      const uint16_t h = type == mk::DType::BF16 ? mk::floatToBf16(x[i]) : mk::floatToHalf(x[i]);
      std::memcpy(l.bytes.data() + 2 * i, &h, 2);
      l.widened[i] = type == mk::DType::BF16 ? mk::bf16ToFloat(h) : mk::halfToFloat(h);
    }
  }
  return l;
}

template <typename T>
void expectClose(const std::string& what, const std::vector<T>& got, const std::vector<T>& ref, double atol,
                 double rtol) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (g == r || (std::isnan(g) && std::isnan(r))) continue;
    if (std::fabs(g - r) <= atol + rtol * std::fabs(r)) continue;
    if (bad++ < 5) ADD_FAILURE() << what << "[" << i << "]: device " << g << ", cpu " << r;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " outside " << atol << " + " << rtol << " |ref|";
}

void expectSameStats(const std::string& what, const moe::ChoiceStats& got, const moe::ChoiceStats& ref) {
  expectClose(what + " letterProbs", got.letterProbs, ref.letterProbs, 1e-7, 5e-4);
  expectClose(what + " choiceProbs", got.choiceProbs, ref.choiceProbs, 1e-7, 5e-4);
  expectClose(what + " letterMass", got.letterMass, ref.letterMass, 1e-7, 5e-4);
  expectClose(what + " entropy", got.entropy, ref.entropy, 2e-4, 2e-4);
  EXPECT_EQ(got.prediction, ref.prediction) << what << " prediction";
  EXPECT_EQ(got.vocabChoice, ref.vocabChoice) << what << " vocabChoice";
}

const char* modeName(moe::MixtureMode m) {
  return m == moe::MixtureMode::Mean ? "mean" : m == moe::MixtureMode::Weighted ? "weighted" : "geometric";
}
}  // namespace

class MixtureDevice : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, mk::DType>> {};

TEST_P(MixtureDevice, EqualsTheCpuPath) {
  if (!g_skipDevice.empty()) GTEST_SKIP() << g_skipDevice;
  const auto [V, B, type] = GetParam();
  moe::MpiCommunicator world(MPI_COMM_WORLD);
  const int E = world.size(), me = world.rank();
  const int choices = B == 1 ? 4 : 3;  // 3 of 4 columns used: the NaN padding is compared too
  const float temperature = B == 1 ? 1.0f : 0.8f;
  moe::CudaStream stream;

  std::vector<std::pair<const char*, moe::Communicator*>> backends = {{"mpi", &world}};
#if MOE_USE_NCCL
  if (g_nccl) backends.push_back({"nccl", g_nccl.get()});
#endif
  for (const bool full : {true, false}) {
    const auto letters = lettersFor(V, full, me);
    const Logits logits = encode(logitsFor(B, V, full, me, choices), type);
    moe::DeviceBuffer<uint8_t> dLogits(logits.bytes.size());
    dLogits.upload(logits.bytes.data(), logits.bytes.size());
    for (const auto mode : {moe::MixtureMode::Mean, moe::MixtureMode::Weighted, moe::MixtureMode::Geometric}) {
      const moe::MixtureSpec spec{mode, full, E, kMaxChoices, temperature};
      const auto weights = weightsFor(B, E, mode);
      moe::ChoiceStats mineRef, mixRef;
      moe::computeMixture(world, spec, logits.widened.data(), B, V, letters, choices, weights, me, mineRef, mixRef);
      for (const auto& [name, comm] : backends) {
        const std::string what = std::string(name) + " " + modeName(mode) + (full ? " full" : " letters") + " " +
                                 mk::dtypeName(type) + " V=" + std::to_string(V) + " B=" + std::to_string(B);
        moe::ChoiceStats mine, mix;
        moe::computeMixtureDevice(*comm, spec, dLogits.get(), type, B, V, letters, choices, weights, me,
                                  stream.get(), mine, mix);
        expectSameStats(what + " mine", mine, mineRef);
        expectSameStats(what + " mixture", mix, mixRef);
        // The entropy gate's input: the very values stored as this expert's entropy.
        if (mode == moe::MixtureMode::Mean) {
          EXPECT_EQ(moe::expertEntropyDevice(spec, dLogits.get(), type, B, V, letters, choices, stream.get()),
                    mine.entropy)
              << what << " expertEntropyDevice";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MixtureDevice,
                         ::testing::Combine(::testing::Values<int64_t>(32000, 151936, 32001),
                                            ::testing::Values<int64_t>(1, 7),
                                            ::testing::Values(mk::DType::F32, mk::DType::BF16, mk::DType::F16)),
                         [](const auto& info) {
                           return "V" + std::to_string(std::get<0>(info.param)) + "_B" +
                                  std::to_string(std::get<1>(info.param)) + "_" +
                                  mk::dtypeName(std::get<2>(info.param));
                         });

// The premise of the exact comparisons above, checked on the CPU path (so it runs everywhere): the
// logits give every row, for each expert and for every mixture, a clear letter winner and the
// planned vocabulary winner.
TEST(MixtureDeviceInputs, EveryRowHasClearWinners) {
  moe::MpiCommunicator world(MPI_COMM_WORLD);
  const int E = world.size(), me = world.rank();
  for (const int64_t V : {32000, 32001})
    for (const bool full : {true, false})
      for (const auto mode : {moe::MixtureMode::Mean, moe::MixtureMode::Weighted, moe::MixtureMode::Geometric}) {
        const int64_t B = 7;
        const int choices = 3;
        const auto x = logitsFor(B, V, full, me, choices);
        const moe::MixtureSpec spec{mode, full, E, kMaxChoices, 0.8f};
        moe::ChoiceStats mine, mix;
        moe::computeMixture(world, spec, x.data(), B, V, lettersFor(V, full, me), choices, weightsFor(B, E, mode), me,
                            mine, mix);
        for (int64_t r = 0; r < B; ++r) {
          const int best = static_cast<int>((choices - r % choices) % choices);
          for (const auto* s : {&mine, &mix}) {
            const bool isMix = s == &mix;
            EXPECT_EQ(s->prediction[r], best) << "row " << r << (isMix ? " mixture" : " mine");
            if (!isMix || full) {
              EXPECT_EQ(s->vocabChoice[r], r % 2 == 0 ? best : -1) << "row " << r;
            }
            // The runner-up letter is far behind: a 1e-3 relative error cannot swap them.
            std::vector<float> p(s->letterProbs.begin() + r * kMaxChoices,
                                 s->letterProbs.begin() + r * kMaxChoices + choices);
            std::sort(p.begin(), p.end());
            EXPECT_GT(p[choices - 1], 1.3f * p[choices - 2]) << "row " << r;
          }
        }
      }
}

// The argument checks come before anything is enqueued or allocated: they hold on every machine
// (no device is touched, so these run here too) and every rank throws alike.
TEST(MixtureDeviceArguments, RefusedBeforeTheDeviceIsTouched) {
  moe::MpiCommunicator world(MPI_COMM_WORLD);
  const int E = world.size(), me = world.rank();
  const int64_t B = 2, V = 100;
  const moe::MixtureSpec spec{moe::MixtureMode::Weighted, true, E, kMaxChoices, 1.0f};
  const auto weights = weightsFor(B, E, spec.mode);
  const std::vector<int32_t> letters = {1, 2, 3, 4};
  const float* fake = reinterpret_cast<const float*>(0x1000);  // never dereferenced: the checks fail first
  moe::ChoiceStats mine, mix;
  auto errorOf = [&](auto&& call) -> std::string {
    try {
      call();
    } catch (const moe::Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(errorOf([&] {
              moe::computeMixtureDevice(world, spec, fake, mk::DType::F32, B, V, letters, 4,
                                        std::vector<float>(B * E + 1, 0.f), me, nullptr, mine, mix);
            }).find("weights has " + std::to_string(B * E + 1) + " values, expected " + std::to_string(B * E)),
            std::string::npos);
  EXPECT_NE(errorOf([&] {
              moe::computeMixtureDevice(world, spec, fake, mk::DType::F32, B, V, {1, 2, 3, 100}, 4, weights, me,
                                        nullptr, mine, mix);
            }).find("letter token 100 outside the vocabulary of 100"),
            std::string::npos);
  EXPECT_NE(errorOf([&] {
              moe::computeMixtureDevice(world, spec, fake, mk::DType::F32, B, V, letters, 5, weights, me, nullptr,
                                        mine, mix);
            }).find("5 choices, room for 4"),
            std::string::npos);
  EXPECT_NE(errorOf([&] {
              moe::computeMixtureDevice(world, spec, fake, mk::DType::F32, B, V, letters, 4, weights, E, nullptr,
                                        mine, mix);
            }).find("expert " + std::to_string(E) + " of " + std::to_string(E)),
            std::string::npos);
  moe::MixtureSpec many = spec;
  many.maxChoices = 33;
  EXPECT_NE(errorOf([&] {
              moe::computeMixtureDevice(world, many, fake, mk::DType::F32, B, V, letters, 4, weights, me, nullptr,
                                        mine, mix);
            }).find("at most 32 choices"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { moe::expertEntropyDevice(spec, fake, mk::DType::F32, B, 0, letters, 4, nullptr); })
                .find("expert entropy: bad logits shape [2, 0]"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { moe::expertEntropyDevice(spec, nullptr, mk::DType::BF16, B, V, letters, 4, nullptr); })
                .find("expert entropy: null logits"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { moe::expertEntropyDevice(spec, fake, mk::DType::F16, B, V, {1, 2, 3, 100}, 4, nullptr); })
                .find("letter token 100 outside the vocabulary of 100"),
            std::string::npos);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  moe::MpiSession mpi(&argc, &argv);
  // Every rank must agree on what runs, or one would wait in a collective the other never joins.
  const int devices = moe::cudaDeviceCountOrZero();
  int fewest = 0;
  MPI_Allreduce(&devices, &fewest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  int perRank = devices >= mpi.localSize() ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &perRank, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (fewest == 0) {
    g_skipDevice = "no CUDA device on this machine: the device mixture is compiled but not run";
    g_skipNccl = g_skipDevice;
  } else {
    MOE_CUDA_CHECK(cudaSetDevice(mpi.localRank() % devices));
#if MOE_USE_NCCL
    if (perRank) g_nccl = std::make_unique<moe::NcclCommunicator>(MPI_COMM_WORLD, mpi);
    else
      g_skipNccl = "the NCCL backend needs one CUDA device per rank: " + std::to_string(mpi.localSize()) +
                   " ranks on this node, " + std::to_string(devices) + " device(s)";
#else
    g_skipNccl = "built without NCCL";
#endif
  }
  if (mpi.rank() == 0) {
    if (!g_skipDevice.empty()) std::printf("test_mixture_device: skipped the device cases: %s\n", g_skipDevice.c_str());
    else if (!g_skipNccl.empty()) std::printf("test_mixture_device: MPI backend only: %s\n", g_skipNccl.c_str());
    std::fflush(stdout);
  }
  const int failed = moe::test::runAllTestsOnAllRanks(mpi.rank());
#if MOE_USE_NCCL
  g_nccl.reset();
#endif
  return failed;
}
