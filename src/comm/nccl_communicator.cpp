// NcclCommunicator (contract and failure handling in nccl_communicator.h).
#include "comm/nccl_communicator.h"

#include <climits>
#include <exception>
#include <thread>

#include "comm/mpi_session.h"

namespace moe {

std::string ncclErrorText(ncclResult_t result) { return ncclGetErrorString(result); }

namespace {
using Clock = std::chrono::steady_clock;

// Every rank learns whether any rank failed at `stage`; all throw if one did. The first failing
// rank's own message is in its own exception; the others name it.
void agree(MPI_Comm group, int rank, const std::string& localError, const char* stage) {
  const int mine = localError.empty() ? INT_MAX : rank;
  int first = INT_MAX;
  MOE_MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, group));
  if (first == INT_MAX) return;
  if (!localError.empty()) MOE_THROW("NcclCommunicator: ", stage, " failed on rank ", rank, ": ", localError);
  MOE_THROW("NcclCommunicator: ", stage, " failed on rank ", first, " of the group (its error says why); rank ", rank,
            " stops too");
}
}  // namespace

int NcclCommunicator::deviceForLocalRank(int localRank) {
  const int devices = cudaDeviceCountOrZero();
  MOE_CHECK(devices > 0, "NcclCommunicator: no CUDA device visible to this process (local rank ", localRank, ")");
  return localRank % devices;
}

NcclCommunicator::NcclCommunicator(MPI_Comm group, const MpiSession& session)
    : NcclCommunicator(group, [&] {
        // A rank without a device must still reach the agreement below: -1 fails there.
        try {
          return deviceForLocalRank(session.localRank());
        } catch (const Error&) {
          return -1;
        }
      }()) {}

NcclCommunicator::NcclCommunicator(MPI_Comm group, int device) : device_(device) {
  MOE_MPI_CHECK(MPI_Comm_rank(group, &rank_));
  MOE_MPI_CHECK(MPI_Comm_size(group, &size_));
  ncclUniqueId id{};
  std::string error;
  try {
    const int devices = cudaDeviceCountOrZero();
    MOE_CHECK(devices > 0, "no CUDA device visible to this process");
    MOE_CHECK(device_ >= 0 && device_ < devices, "device ", device_, " requested, ", devices, " visible");
    MOE_CUDA_CHECK(cudaSetDevice(device_));
    int leastPriority = 0, greatestPriority = 0;
    MOE_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&leastPriority, &greatestPriority));
    commStream_.emplace(greatestPriority);  // collectives overtake queued compute work
    computeReady_.emplace();
    commDone_.emplace();
    barrierValue_.emplace(1);
    if (rank_ == 0) MOE_NCCL_CHECK(ncclGetUniqueId(&id));
  } catch (const std::exception& e) {
    error = e.what();
  }
  agree(group, rank_, error, "device selection");
  MOE_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, group));
  try {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const ncclResult_t r = ncclCommInitRankConfig(&comm_, size_, id, rank_, &config);
    if (r != ncclSuccess && r != ncclInProgress) fail("ncclCommInitRankConfig", ncclGetErrorString(r));
    waitIssued("ncclCommInitRankConfig");
  } catch (const std::exception& e) {
    error = e.what();
  }
  try {
    agree(group, rank_, error, "ncclCommInitRank");
  } catch (...) {
    abort();  // the destructor does not run for a constructor that throws
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() {
  if (!comm_) return;
  if (std::uncaught_exceptions() > 0) {
    abort();
    return;
  }
  try {
    CudaDeviceGuard guard(device_);
    // Finalize flushes this rank's pending operations; on a non-blocking communicator it returns
    // ncclInProgress and completes in the background, watched with the usual timeout.
    const ncclResult_t r = ncclCommFinalize(comm_);
    if (r != ncclSuccess && r != ncclInProgress) fail("ncclCommFinalize", ncclGetErrorString(r));
    waitIssued("ncclCommFinalize");
    ncclCommDestroy(comm_);
    comm_ = nullptr;
  } catch (...) {
    abort();
  }
}

std::string NcclCommunicator::where() const {
  return str("rank ", rank_, "/", size_, " on ", hostName(), ", device ", device_);
}

void NcclCommunicator::abort() {
  if (comm_) ncclCommAbort(comm_);
  comm_ = nullptr;
  aborted_ = true;
}

void NcclCommunicator::fail(const char* what, const std::string& detail) {
  std::string last;
  if (comm_) last = ncclGetLastError(comm_);
  abort();
  MOE_THROW("NCCL error in ", what, " (", where(), "): ", detail, last.empty() ? "" : ": ", last,
            "; the communicator was aborted");
}

void NcclCommunicator::checkAsync(const char* what) {
  ncclResult_t state = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
  if (r != ncclSuccess) fail(what, str("ncclCommGetAsyncError: ", ncclGetErrorString(r)));
  if (state != ncclSuccess && state != ncclInProgress) fail(what, ncclGetErrorString(state));
}

// A non-blocking communicator's call returns before it is issued; the next call may only follow
// once ncclCommGetAsyncError no longer says ncclInProgress.
void NcclCommunicator::waitIssued(const char* what) {
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) fail(what, str("ncclCommGetAsyncError: ", ncclGetErrorString(r)));
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) fail(what, ncclGetErrorString(state));
    if (Clock::now() > deadline)
      fail(what, str("still in progress after ", timeout_.count(), " ms: a peer rank has probably failed"));
    std::this_thread::yield();
  }
}

void NcclCommunicator::waitStream(void* stream) {
  MOE_CHECK(!aborted_, "NcclCommunicator (", where(), "): used after an error aborted it");
  CudaDeviceGuard guard(device_);
  const auto s = static_cast<cudaStream_t>(stream);
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    const cudaError_t e = cudaStreamQuery(s);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) fail("waiting for a stream", str("CUDA: ", cudaGetErrorString(e)));
    checkAsync("waiting for a stream");
    if (Clock::now() > deadline)
      fail("waiting for a stream", str("not done after ", timeout_.count(), " ms: a peer rank has probably failed"));
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void NcclCommunicator::synchronize() { waitStream(commStream()); }

void NcclCommunicator::requireDevicePointer(const char* what, const void* p) const {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    attr.type = cudaMemoryTypeUnregistered;
  }
  MOE_CHECK(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged, "NcclCommunicator::", what,
            " (", where(), "): needs device memory, got a host pointer");
}

template <typename Enqueue>
void NcclCommunicator::collective(const char* what, Enqueue&& enqueue) {
  MOE_CHECK(!aborted_, "NcclCommunicator::", what, " (", where(), "): used after an error aborted it");
  CudaDeviceGuard guard(device_);
  const cudaStream_t comm = commStream_->get();
  computeReady_->record(compute_);
  computeReady_->block(comm);
  const ncclResult_t r = enqueue(comm);
  if (r != ncclSuccess && r != ncclInProgress) fail(what, ncclGetErrorString(r));
  waitIssued(what);
  commDone_->record(comm);
  commDone_->block(compute_);
}

void NcclCommunicator::allreduceSum(float* data, size_t count) {
  if (count == 0) return;
  requireDevicePointer("allreduceSum", data);
  collective("ncclAllReduce(float)", [&](cudaStream_t s) {
    return ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, s);
  });
}

void NcclCommunicator::allreduceSum(double* data, size_t count) {
  if (count == 0) return;
  requireDevicePointer("allreduceSum", data);
  collective("ncclAllReduce(double)", [&](cudaStream_t s) {
    return ncclAllReduce(data, data, count, ncclFloat64, ncclSum, comm_, s);
  });
}

void NcclCommunicator::broadcast(void* data, size_t bytes, int root) {
  MOE_CHECK(root >= 0 && root < size_, "NcclCommunicator::broadcast: root ", root, " outside a group of ", size_);
  if (bytes == 0) return;
  requireDevicePointer("broadcast", data);
  collective("ncclBroadcast", [&](cudaStream_t s) {
    return ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, s);
  });
}

void NcclCommunicator::allgather(const float* send, float* recv, size_t count) {
  if (count == 0) return;
  requireDevicePointer("allgather", send);
  requireDevicePointer("allgather", recv);
  collective("ncclAllGather", [&](cudaStream_t s) {
    return ncclAllGather(send, recv, count, ncclFloat32, comm_, s);
  });
}

void NcclCommunicator::barrier() {
  float* v = barrierValue_->get();
  collective("barrier (ncclAllReduce)", [&](cudaStream_t s) {
    return ncclAllReduce(v, v, 1, ncclFloat32, ncclSum, comm_, s);
  });
  synchronize();
}

}  // namespace moe
