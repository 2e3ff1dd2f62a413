// The end of an MPI GoogleTest main: only rank 0 prints, and the process fails when any rank's
// tests failed, so ctest sees one verdict for the whole mpiexec launch.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

namespace moe::test {

inline int runAllTestsOnAllRanks(int rank) {
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  int anyFailed = 0;
  MPI_Allreduce(&failed, &anyFailed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return anyFailed;
}

}  // namespace moe::test
