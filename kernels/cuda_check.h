// MOE_CUDA_CHECK and the few host helpers the kernel launchers share.
//
// MOE_CUDA_CHECK(stmt) throws moe::Error "CUDA error in `stmt` (file:line): <cudaGetErrorString>"
// (the generic MOE_CHECK_GEN of common/error.h; the rank and host are added where it is reported).
// Plain host code: included by .cu launchers and by .cpp files (src/comm) alike.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "common/error.h"

#define MOE_CUDA_CHECK(stmt) \
  MOE_CHECK_GEN("CUDA", stmt, cudaError_t, [](cudaError_t s) { return s == cudaSuccess; }, cudaGetErrorString)

namespace moe::kernels::detail {

// Streaming multiprocessors of the current device (a cached host-side attribute: no sync).
inline int multiprocessorCount() {
  int device = 0, sms = 0;
  MOE_CUDA_CHECK(cudaGetDevice(&device));
  MOE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms > 0 ? sms : 1;
}

// Stream-ordered scratch memory for a kernel pair (partials of split rows): cudaMallocAsync from the
// device's pool on `stream`, freed on the same stream after the kernels that use it, so the host
// never waits. Non-copyable.
class StreamScratch {
 public:
  StreamScratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes > 0) MOE_CUDA_CHECK(cudaMallocAsync(&ptr_, bytes, stream_));
  }
  ~StreamScratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace moe::kernels::detail
