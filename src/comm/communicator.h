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

// A Communicator whose buffers live in device memory (NcclCommunicator). Its collectives are ordered
// on the caller's compute stream without host waits: each one runs after the work enqueued on that
// stream before it, and the work enqueued there afterwards sees its result. Code that holds a plain
// Communicator& asks `dynamic_cast<DeviceCommunicator*>` whether it may pass device pointers
// (src/worker/mixture_device.cpp); a host-memory Communicator needs host buffers.
class DeviceCommunicator : public Communicator {
 public:
  // The stream (a cudaStream_t; nullptr is the legacy default stream) collectives are ordered on.
  virtual void setComputeStream(void* stream) = 0;
  virtual void* computeStream() const = 0;
  // The host waits until the work enqueued on `stream` is done; unlike cudaStreamSynchronize it
  // throws instead of hanging when a peer of a pending collective has failed.
  virtual void waitStream(void* stream) = 0;
};

}  // namespace moe
