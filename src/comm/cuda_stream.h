// Move-only owners of CUDA handles: a stream, an event, a device buffer, a pinned host buffer, and a
// guard that makes a device current for a scope. Header-only; only with MOE_USE_CUDA. Destructors never throw (an error
// while releasing is ignored: the process is usually unwinding from another error already).
#pragma once

#include "common/version.h"

#if MOE_USE_CUDA
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "kernels/cuda_check.h"

namespace moe {

// Makes `device` current until the end of the scope, then restores the previous one.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device) {
    MOE_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) MOE_CUDA_CHECK(cudaSetDevice(device));
  }
  ~CudaDeviceGuard() { cudaSetDevice(previous_); }
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

// A non-blocking stream (no implicit sync with the legacy default stream) on the current device.
// priority: lower is more urgent; 0 is the default (cudaDeviceGetStreamPriorityRange gives the range).
class CudaStream {
 public:
  explicit CudaStream(int priority = 0) {
    MOE_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, priority));
  }
  ~CudaStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  CudaStream(CudaStream&& o) noexcept : stream_(std::exchange(o.stream_, nullptr)) {}
  CudaStream& operator=(CudaStream&& o) noexcept {
    std::swap(stream_, o.stream_);
    return *this;
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const { MOE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event for ordering streams (timing disabled: cheaper) or, with timing, for benchmarks.
class CudaEvent {
 public:
  explicit CudaEvent(bool timing = false) {
    MOE_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~CudaEvent() {
    if (event_) cudaEventDestroy(event_);
  }
  CudaEvent(CudaEvent&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
  CudaEvent& operator=(CudaEvent&& o) noexcept {
    std::swap(event_, o.event_);
    return *this;
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) { MOE_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  // `stream` waits (on the device) for the work captured by the last record().
  void block(cudaStream_t stream) const { MOE_CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0)); }
  // Milliseconds between two recorded timing events (waits for `end`).
  static float elapsedMs(const CudaEvent& start, const CudaEvent& end) {
    MOE_CUDA_CHECK(cudaEventSynchronize(end.event_));
    float ms = 0.f;
    MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, end.event_));
    return ms;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

// `count` elements of T in device memory (cudaMalloc: outside any stream's order).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_ > 0) MOE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), count_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  // Synchronous copies of the first n elements (tests, set-up; not for the hot path).
  void upload(const T* host, size_t n) {
    MOE_CHECK(n <= count_, "DeviceBuffer: upload of ", n, " elements into ", count_);
    MOE_CUDA_CHECK(cudaMemcpy(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* host, size_t n) const {
    MOE_CHECK(n <= count_, "DeviceBuffer: download of ", n, " elements from ", count_);
    MOE_CUDA_CHECK(cudaMemcpy(host, ptr_, n * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// `count` elements of T in page-locked host memory (cudaMallocHost), the staging memory of
// asynchronous copies: a cudaMemcpyAsync to pageable memory would make the host wait for the stream.
// Note cudaFreeHost may synchronise the device: keep one alive and reuse it.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t count) : count_(count) {
    if (count_ > 0) MOE_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&ptr_), count_ * sizeof(T)));
  }
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// Devices this process can use; 0 when there is none or no driver (never throws).
inline int cudaDeviceCountOrZero() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

}  // namespace moe

#endif  // MOE_USE_CUDA
