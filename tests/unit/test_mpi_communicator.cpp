// Closed-form collectives on 3 ranks (run by ctest under mpiexec -n 3): rank r contributes values
// derived from r, so every reduced value is known exactly.
#include <gtest/gtest.h>
#include <mpi.h>

#include <numeric>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "mpi_test_main.h"

TEST(MpiCommunicator, AllreduceBroadcastAllgather) {
  moe::MpiCommunicator world(MPI_COMM_WORLD);
  const int n = world.size(), r = world.rank();
  ASSERT_EQ(n, 3);
  std::vector<float> x(1001);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r + 1) * static_cast<float>(i);
  world.allreduceSum(x.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], 6.0f * static_cast<float>(i));

  std::vector<double> d = {0.5 * r, 1.0};
  world.allreduceSum(d.data(), d.size());
  EXPECT_DOUBLE_EQ(d[0], 1.5);
  EXPECT_DOUBLE_EQ(d[1], 3.0);

  int64_t token = r == 2 ? 424242 : -1;
  world.broadcast(&token, sizeof(token), 2);
  EXPECT_EQ(token, 424242);

  float mine[2] = {static_cast<float>(r), static_cast<float>(10 * r)};
  std::vector<float> all(6);
  world.allgather(mine, all.data(), 2);
  EXPECT_EQ(all, (std::vector<float>{0, 0, 1, 10, 2, 20}));
}

TEST(MpiCommunicator, SplitIntoGroups) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // Ranks {0, 2} and {1} form two groups.
  auto group = moe::MpiCommunicator::split(rank % 2, rank);
  EXPECT_EQ(group.size(), rank % 2 == 0 ? 2 : 1);
  float v = static_cast<float>(rank);
  group.allreduceSum(&v, 1);
  EXPECT_EQ(v, rank % 2 == 0 ? 2.0f : 1.0f);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  moe::MpiSession mpi(&argc, &argv);
  return moe::test::runAllTestsOnAllRanks(mpi.rank());
}
