#include "comm/mpi_session.h"

#include <mpi.h>

#include <cstdio>

#include "common/log.h"

namespace moe {

std::string mpiErrorString(int code) {
  char buf[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return str("MPI error code ", code);
  return std::string(buf, len);
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  MOE_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // Errors come back as codes (checked by MOE_MPI_CHECK) instead of aborting inside MPI.
  MOE_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  MOE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  MOE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  MPI_Comm local;
  MOE_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
  MOE_MPI_CHECK(MPI_Comm_rank(local, &localRank_));
  MOE_MPI_CHECK(MPI_Comm_size(local, &localSize_));
  MPI_Comm_free(&local);
  host_ = hostName();
  setProcessContext(rank_, size_, host_);
  setLogRank(size_ > 1 ? rank_ : -1);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abortJob(const std::string& message, int code) const {
  std::fprintf(stderr, "moe-dist: error on rank %d of %d (%s): %s\n", rank_, size_, host_.c_str(), message.c_str());
  std::fflush(stderr);
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  MPI_Finalize();
  std::exit(code);
}

}  // namespace moe
