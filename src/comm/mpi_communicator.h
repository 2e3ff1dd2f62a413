// MpiCommunicator: Communicator over an MPI communicator (host memory). Owns the communicator
// it is given (split from MPI_COMM_WORLD for one replica group) and frees it.
#pragma once

#include <mpi.h>

#include "comm/communicator.h"

namespace moe {

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` unless it is MPI_COMM_WORLD.
  explicit MpiCommunicator(MPI_Comm comm);
  // The ranks of MPI_COMM_WORLD with the same `color` form one communicator, ordered by `key`.
  static MpiCommunicator split(int color, int key);
  ~MpiCommunicator() override;
  MpiCommunicator(MpiCommunicator&& other) noexcept;
  MpiCommunicator& operator=(MpiCommunicator&&) = delete;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  const char* backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduceSum(float* data, size_t count) override;
  void allreduceSum(double* data, size_t count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void allgather(const float* send, float* recv, size_t count) override;
  void barrier() override;
  MPI_Comm handle() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace moe
