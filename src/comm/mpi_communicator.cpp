#include "comm/mpi_communicator.h"

#include <climits>

#include "comm/mpi_session.h"

namespace moe {
namespace {
// MPI counts are int: large buffers go in chunks.
constexpr size_t kChunk = static_cast<size_t>(INT_MAX) / 2;
}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MOE_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MOE_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MOE_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator MpiCommunicator::split(int color, int key) {
  MPI_Comm comm;
  MOE_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, key, &comm));
  return MpiCommunicator(comm);
}

MpiCommunicator::MpiCommunicator(MpiCommunicator&& other) noexcept
    : comm_(other.comm_), rank_(other.rank_), size_(other.size_) {
  other.comm_ = MPI_COMM_NULL;
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
}

void MpiCommunicator::allreduceSum(float* data, size_t count) {
  for (size_t off = 0; off < count; off += kChunk) {
    int n = static_cast<int>(std::min(kChunk, count - off));
    MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, n, MPI_FLOAT, MPI_SUM, comm_));
  }
}

void MpiCommunicator::allreduceSum(double* data, size_t count) {
  for (size_t off = 0; off < count; off += kChunk) {
    int n = static_cast<int>(std::min(kChunk, count - off));
    MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, n, MPI_DOUBLE, MPI_SUM, comm_));
  }
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  auto* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += kChunk) {
    int n = static_cast<int>(std::min(kChunk, bytes - off));
    MOE_MPI_CHECK(MPI_Bcast(p + off, n, MPI_BYTE, root, comm_));
  }
}

void MpiCommunicator::allgather(const float* send, float* recv, size_t count) {
  MOE_CHECK(count <= static_cast<size_t>(INT_MAX), "allgather of ", count, " floats per rank exceeds MPI's int count");
  MOE_MPI_CHECK(MPI_Allgather(send, static_cast<int>(count), MPI_FLOAT, recv, static_cast<int>(count), MPI_FLOAT, comm_));
}

void MpiCommunicator::barrier() { MOE_MPI_CHECK(MPI_Barrier(comm_)); }

}  // namespace moe
