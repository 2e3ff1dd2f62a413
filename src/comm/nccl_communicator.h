// NcclCommunicator: Communicator on device memory over NCCL (built only with MOE_USE_NCCL).
//
// Contract (as for every Communicator): every rank of the group calls the same collectives in the
// same order with the same counts; buffers are device pointers on this rank's device. Each
// collective is ordered after the work already enqueued on the compute stream and before the work
// enqueued there afterwards, without the host waiting:
//     cudaEventRecord(ready, compute) -> cudaStreamWaitEvent(comm, ready) -> nccl op on comm
//     -> cudaEventRecord(done, comm) -> cudaStreamWaitEvent(compute, done)
// so a worker enqueues softmax, allreduceSum and finalize on its compute stream and waits once,
// for the results it copies to the host, with waitStream(compute) (not cudaStreamSynchronize:
// that would hang forever behind a collective whose peer has died).
//
// Failures: the communicator is non-blocking (ncclConfig_t.blocking = 0), so no NCCL call can
// block the host; after each call ncclCommGetAsyncError is polled until the operation is issued,
// and every host wait (waitStream, synchronize, barrier) polls it too, with a timeout. An error or
// a timeout aborts the communicator (ncclCommAbort: pending collectives are cancelled instead of
// hanging) and throws moe::Error naming the operation, rank, device and NCCL's message; later calls
// throw at once. The caller ends the job (MpiSession::abortJob), as for any Communicator error.
//
// Bootstrap over MPI (nccl-tests style): every rank selects its device, rank 0 of the group calls
// ncclGetUniqueId, MPI_Bcast sends its bytes, all call ncclCommInitRankConfig. Each stage ends in
// an MPI agreement, so a rank that fails (no device, bad id, init error) makes every rank throw
// rather than leaving the others blocked in the next collective.
#pragma once

#include "common/version.h"

#if MOE_USE_NCCL
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <optional>
#include <string>

#include "comm/communicator.h"
#include "comm/cuda_stream.h"

namespace moe {

// "<ncclGetErrorString>" for MOE_NCCL_CHECK.
std::string ncclErrorText(ncclResult_t result);

}  // namespace moe

#define MOE_NCCL_CHECK(stmt) \
  MOE_CHECK_GEN("NCCL", stmt, ncclResult_t, [](ncclResult_t s) { return s == ncclSuccess; }, ::moe::ncclErrorText)

namespace moe {

class MpiSession;

class NcclCommunicator final : public DeviceCommunicator {
 public:
  // localRank % (devices this process sees); throws when it sees none.
  static int deviceForLocalRank(int localRank);

  // Collective over the ranks of `group` (not owned: only the bootstrap uses it). Makes `device`
  // current for the calling thread.
  NcclCommunicator(MPI_Comm group, int device);
  // The device is deviceForLocalRank(session.localRank()).
  NcclCommunicator(MPI_Comm group, const MpiSession& session);
  // Finalizes and destroys the NCCL communicator (aborts it instead after an error, or when
  // destroyed during exception unwinding, so that a failing job never waits on its peers).
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  NcclCommunicator(NcclCommunicator&&) = delete;
  NcclCommunicator& operator=(NcclCommunicator&&) = delete;

  const char* backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduceSum(float* data, size_t count) override;
  void allreduceSum(double* data, size_t count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void allgather(const float* send, float* recv, size_t count) override;
  // A one-element all-reduce, then the host waits for it: every rank has reached the barrier.
  void barrier() override;

  // The stream the caller's kernels run on (a cudaStream_t, e.g. libtorch's current stream);
  // nullptr is the legacy default stream, which is also the initial value.
  void setComputeStream(void* stream) override { compute_ = static_cast<cudaStream_t>(stream); }
  void* computeStream() const override { return compute_; }
  void* commStream() const { return commStream_ ? commStream_->get() : nullptr; }
  int device() const { return device_; }

  // The host waits until the work enqueued on `stream` is done, watching NCCL for errors.
  void waitStream(void* stream) override;
  // waitStream(commStream()).
  void synchronize();
  // How long a host wait (or an operation being issued) may take before it counts as a failed
  // peer. Default 10 minutes.
  void setTimeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  bool aborted() const { return aborted_; }

 private:
  template <typename Enqueue>
  void collective(const char* what, Enqueue&& enqueue);
  void requireDevicePointer(const char* what, const void* p) const;
  void waitIssued(const char* what);
  void checkAsync(const char* what);
  [[noreturn]] void fail(const char* what, const std::string& detail);
  void abort();
  std::string where() const;

  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = -1;
  bool aborted_ = false;
  cudaStream_t compute_ = nullptr;
  std::optional<CudaStream> commStream_;
  std::optional<CudaEvent> computeReady_, commDone_;
  std::optional<DeviceBuffer<float>> barrierValue_;
  std::chrono::milliseconds timeout_{std::chrono::minutes(10)};
};

}  // namespace moe

#endif  // MOE_USE_NCCL
