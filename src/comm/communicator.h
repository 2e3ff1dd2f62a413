// Communicator: the collectives a replica group needs, one backend per library
// (MpiCommunicator on host memory, NcclCommunicator on device memory).
//
// Contract: every rank of the group calls the same collectives in the same order with the same
// counts; buffers are in the backend's memory space (host for MPI, device for NCCL). A failure
// throws moe::Error; the caller ends the job, since the other ranks cannot continue alone.
#pragma once

#include <cstddef>
#include <string>

namespace moe {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual const char* backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place element-wise sum over the group.
  virtual void allreduceSum(float* data, size_t count) = 0;
  virtual void allreduceSum(double* data, size_t count) = 0;
  // Root's `bytes` bytes at `data` are copied to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Rank i's `count` floats land at recv[i*count .. (i+1)*count).
  virtual void allgather(const float* send, float* recv, size_t count) = 0;
  virtual void barrier() = 0;
};

}  // namespace moe
