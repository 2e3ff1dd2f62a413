// NcclCommunicator on 2 ranks (ctest runs it under mpiexec -n 2). Closed-form collectives in the
// nccl-tests style (rank r contributes values derived from r, so every result is known exactly),
// compute-stream ordering through events, and one mixture step entirely on the GPU checked
// against the CPU references. Every rank needs its own device (2 on this node); otherwise those
// cases GTEST_SKIP with the reason, and where there is no device at all the bootstrap's failure
// path runs instead: every rank must throw a clear error, none may hang.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "comm/mpi_session.h"
#include "comm/nccl_communicator.h"
#include "kernels/finalize.h"
#include "kernels/weighted_softmax.h"

namespace {
std::string g_skip;  // why the device cases cannot run here ("" when they can)
const moe::MpiSession* g_session = nullptr;

#define REQUIRE_DEVICES() \
  if (!g_skip.empty()) GTEST_SKIP() << g_skip

std::unique_ptr<moe::NcclCommunicator> makeWorld() {
  return std::make_unique<moe::NcclCommunicator>(MPI_COMM_WORLD, *g_session);
}
}  // namespace

TEST(NcclCommunicatorBootstrap, WithoutADeviceEveryRankThrowsAndNoneHangs) {
  if (moe::cudaDeviceCountOrZero() > 0) GTEST_SKIP() << "this machine has a CUDA device: the no-device path is not taken";
  try {
    moe::NcclCommunicator comm(MPI_COMM_WORLD, *g_session);
    ADD_FAILURE() << "constructed an NCCL communicator without a device";
  } catch (const moe::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("device selection failed on rank"), std::string::npos) << what;
    // Rank 0 fails first, so it reports its own reason; the other ranks name rank 0.
    if (g_session->rank() == 0) {
      EXPECT_NE(what.find("no CUDA device"), std::string::npos) << what;
    }
  }
  // Both ranks got here: nobody is stuck in the bootstrap.
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(NcclCommunicator, AllreduceBroadcastAllgatherBarrier) {
  REQUIRE_DEVICES();
  auto comm = makeWorld();
  const int n = comm->size(), r = comm->rank();
  EXPECT_STREQ(comm->backend(), "nccl");
  ASSERT_EQ(n, 2);
  // Odd, large count: not a multiple of any chunk or vector width.
  const size_t count = (size_t{1} << 20) + 3;
  std::vector<float> x(count);
  for (size_t i = 0; i < count; ++i) x[i] = static_cast<float>(r + 1) * static_cast<float>(i % 1000);
  moe::DeviceBuffer<float> dx(count);
  dx.upload(x.data(), count);
  comm->allreduceSum(dx.get(), count);
  comm->waitStream(comm->computeStream());
  dx.download(x.data(), count);
  for (size_t i = 0; i < count; ++i) ASSERT_EQ(x[i], 3.0f * static_cast<float>(i % 1000)) << i;

  std::vector<double> d = {0.5 * r, 1.0, 1e300 * (r == 0 ? 1 : -1)};
  moe::DeviceBuffer<double> dd(3);
  dd.upload(d.data(), 3);
  comm->allreduceSum(dd.get(), 3);
  comm->waitStream(nullptr);
  dd.download(d.data(), 3);
  EXPECT_EQ(d, (std::vector<double>{0.5, 2.0, 0.0}));

  int64_t token = r == 1 ? 424242 : -1;
  moe::DeviceBuffer<int64_t> dt(1);
  dt.upload(&token, 1);
  comm->broadcast(dt.get(), sizeof(token), 1);
  comm->synchronize();
  dt.download(&token, 1);
  EXPECT_EQ(token, 424242);

  const float mine[3] = {static_cast<float>(r), static_cast<float>(10 * r), -1.0f};
  moe::DeviceBuffer<float> send(3), recv(6);
  send.upload(mine, 3);
  comm->allgather(send.get(), recv.get(), 3);
  comm->synchronize();
  std::vector<float> all(6);
  recv.download(all.data(), 6);
  EXPECT_EQ(all, (std::vector<float>{0, 0, -1, 1, 10, -1}));

  comm->barrier();
  EXPECT_FALSE(comm->aborted());
}

TEST(NcclCommunicator, OrderedOnTheComputeStreamWithoutHostWaits) {
  REQUIRE_DEVICES();
  auto comm = makeWorld();
  const int r = comm->rank();
  moe::CudaStream compute;
  comm->setComputeStream(compute.get());
  // Upload, reduce and download are all enqueued before the host waits once: the events alone
  // must order them (the upload before the reduction, the download after it).
  const size_t count = 1 << 18;
  float* host = nullptr;
  MOE_CUDA_CHECK(cudaMallocHost(&host, count * sizeof(float)));
  for (size_t i = 0; i < count; ++i) host[i] = static_cast<float>(r + 1);
  moe::DeviceBuffer<float> dx(count);
  for (int round = 0; round < 3; ++round) {
    MOE_CUDA_CHECK(cudaMemcpyAsync(dx.get(), host, count * sizeof(float), cudaMemcpyHostToDevice, compute.get()));
    comm->allreduceSum(dx.get(), count);
    MOE_CUDA_CHECK(cudaMemcpyAsync(host, dx.get(), count * sizeof(float), cudaMemcpyDeviceToHost, compute.get()));
    comm->waitStream(compute.get());
    const float expected = round == 0 ? 3.0f : round == 1 ? 6.0f : 12.0f;  // both ranks hold the sum
    for (size_t i = 0; i < count; i += 4099) ASSERT_EQ(host[i], expected) << "round " << round;
  }
  cudaFreeHost(host);
}

TEST(NcclCommunicator, RefusesHostPointersOnEveryRank) {
  REQUIRE_DEVICES();
  auto comm = makeWorld();
  std::vector<float> host(4, 1.0f);
  EXPECT_THROW(comm->allreduceSum(host.data(), host.size()), moe::Error);
  comm->barrier();  // still usable: the check ran before anything was enqueued
}

TEST(NcclCommunicator, MixtureStepOnTheGpuEqualsTheCpuReferences) {
  REQUIRE_DEVICES();
  auto comm = makeWorld();
  const int r = comm->rank();
  const int64_t B = 3, V = 50257;
  const int32_t letters[4] = {32, 33, 34, 35};
  auto logitsOf = [&](int e) {
    std::mt19937 rng(40 + e);
    std::normal_distribution<float> nd(0.f, 3.f);
    std::vector<float> x(B * V);
    for (auto& v : x) v = nd(rng);
    return x;
  };
  const float w[2] = {0.25f, 0.75f};
  std::vector<float> weights(B, w[r]);
  moe::CudaStream compute;
  comm->setComputeStream(compute.get());
  auto x = logitsOf(r);
  moe::DeviceBuffer<float> dx(B * V), dw(B), dp(B * V), dlp(B * 4);
  moe::DeviceBuffer<int32_t> dpred(B);
  dx.upload(x.data(), x.size());
  dw.upload(weights.data(), B);
  moe::kernels::weightedSoftmaxCuda(dx.get(), B, V, 1.0f, dw.get(), dp.get(), nullptr, nullptr, compute.get());
  comm->allreduceSum(dp.get(), B * V);
  moe::kernels::finalizeChoicesCuda(dp.get(), B, V, letters, 4, 4, dlp.get(), nullptr, nullptr, dpred.get(), nullptr,
                                    nullptr, compute.get());
  comm->waitStream(compute.get());
  std::vector<float> lp(B * 4);
  std::vector<int32_t> pred(B);
  dlp.download(lp.data(), lp.size());
  dpred.download(pred.data(), B);

  std::vector<float> mix(B * V, 0.f), p(B * V);
  for (int e = 0; e < 2; ++e) {
    std::vector<float> we(B, w[e]);
    moe::kernels::weightedSoftmaxCpu(logitsOf(e).data(), B, V, 1.0f, we.data(), p.data(), nullptr, nullptr);
    for (size_t i = 0; i < mix.size(); ++i) mix[i] += p[i];
  }
  std::vector<float> lpRef(B * 4);
  std::vector<int32_t> predRef(B);
  moe::kernels::finalizeChoicesCpu(mix.data(), B, V, letters, 4, 4, lpRef.data(), nullptr, nullptr, predRef.data(),
                                   nullptr, nullptr);
  for (size_t i = 0; i < lp.size(); ++i) EXPECT_NEAR(lp[i], lpRef[i], 1e-7 + 1e-4 * lpRef[i]) << i;
  EXPECT_EQ(pred, predRef);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  moe::MpiSession mpi(&argc, &argv);
  g_session = &mpi;
  // Every rank must agree on skipping, or one would wait in a collective the other never joins.
  const int devices = moe::cudaDeviceCountOrZero();
  int fewest = 0;
  MPI_Allreduce(&devices, &fewest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (fewest < mpi.localSize())
    g_skip = "the NCCL collectives need one CUDA device per rank: " + std::to_string(mpi.localSize()) +
             " ranks on this node, " + std::to_string(fewest) + " device(s) visible";
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  } else if (!g_skip.empty()) {
    std::printf("test_nccl_communicator: skipped the NCCL collectives: %s\n", g_skip.c_str());
    std::fflush(stdout);
  }
  int failed = RUN_ALL_TESTS();
  int anyFailed = 0;
  MPI_Allreduce(&failed, &anyFailed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return anyFailed;
}
