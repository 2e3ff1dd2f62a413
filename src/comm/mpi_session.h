// MpiSession: owns MPI_Init/MPI_Finalize for the process, records rank and host for error
// messages, and ends the whole job (MPI_Abort) on an error that one rank cannot recover from:
// a rank that exits alone would leave the others blocked in a collective until a time limit.
#pragma once

#include <string>

#include "common/error.h"

namespace moe {

std::string mpiErrorString(int code);

}  // namespace moe

#define MOE_MPI_CHECK(stmt) \
  MOE_CHECK_GEN("MPI", stmt, int, [](int s) { return s == 0; }, ::moe::mpiErrorString)

namespace moe {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int localRank() const { return localRank_; }  // rank among the processes on this node
  int localSize() const { return localSize_; }
  const std::string& host() const { return host_; }

  // Prints "moe-dist: error on rank R (host): message" and ends every rank of the job with `code`.
  [[noreturn]] void abortJob(const std::string& message, int code = 1) const;

 private:
  int rank_ = 0, size_ = 1, localRank_ = 0, localSize_ = 1;
  std::string host_;
};

}  // namespace moe
