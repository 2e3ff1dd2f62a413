// The mixture step of one batch with the logits on the GPU: the device counterpart of
// computeMixture (mixture.h), same math and same outputs (ChoiceStats on the host), built only with
// MOE_USE_CUDA. Everything [B, V] stays on the device; the host receives the [B, maxChoices] and [B]
// statistics, in one copy at the end (the answer-letter mixture: that copy also carries the reduced
// [B, choices] sums, finalized on the host as computeMixture does).
//
//   this expert:  weightedSoftmaxCuda(logits / T) -> finalizeChoicesCuda                 -> mine
//   mean/weighted: probs *= w[b] (in place) -> group.allreduceSum -> finalizeChoicesCuda -> mixture
//   geometric:     weightedLogSoftmaxCuda(logits / T, w) -> group.allreduceSum
//                  -> weightedSoftmaxCuda(T = 1) -> finalizeChoicesCuda                  -> mixture
//   letters:       w[b] p(letter c) or w[b] log q(c) from mine's device statistics -> allreduceSum
//                  -> host: the same finalisation as computeMixture
//
// The all-reduce goes through the Communicator interface:
//   - a DeviceCommunicator (NcclCommunicator) reduces the device buffers in place, ordered on
//     `stream` by events (its compute stream is set to `stream` for the call and restored after);
//     the one host wait is DeviceCommunicator::waitStream, which throws rather than hangs when a
//     peer fails;
//   - any other Communicator (MpiCommunicator) works on host memory: the buffer to reduce is staged
//     through pinned host memory (the host waits for the stream before the MPI call). Correct but
//     slower; it lets a CUDA build without NCCL, or a test, use the same function.
// Scratch device memory (one or two [B, V] fp32 buffers and the statistics) comes from
// cudaMallocAsync on `stream`; the pinned host staging is kept per thread and grown when needed.
//
// Requirements: `logits` [rows, vocab] row-major, element type `type`, in device memory of the
// current device (for NCCL: the communicator's device); `stream` a cudaStream_t of that device
// (nullptr: the legacy default stream) on which the logits are ready or being produced. The
// argument checks are those of computeMixture, made before anything is enqueued; every rank of the
// group calls this with the same rows, choices, weights and spec (the Communicator contract).
//   test: ctest --test-dir build -R mixture_device --output-on-failure   (label gpu; skips without a device)
#pragma once

#include "common/version.h"

#if MOE_USE_CUDA
#include <cstdint>
#include <vector>

#include "kernels/dtype.h"
#include "worker/mixture.h"

namespace moe {

void computeMixtureDevice(Communicator& group, const MixtureSpec& spec, const void* logits, kernels::DType type,
                          int64_t rows, int64_t vocab, const std::vector<int32_t>& letterTokens, int choices,
                          const std::vector<float>& weights, int expertIndex, void* stream, ChoiceStats& mine,
                          ChoiceStats& mixture);

// This expert's entropy per row, [rows] on the host: exactly the values computeMixtureDevice stores
// in mine.entropy for the same logits (the same kernels: weightedSoftmaxCuda at spec.temperature,
// then finalizeChoicesCuda's entropy), which the entropy gate needs before the weights exist. The
// host waits for `stream` (no collective is involved).
std::vector<float> expertEntropyDevice(const MixtureSpec& spec, const void* logits, kernels::DType type, int64_t rows,
                                       int64_t vocab, const std::vector<int32_t>& letterTokens, int choices,
                                       void* stream);

namespace detail {
// mixture_device.cu. data[r, c] *= rowWeights[r] over [rows, cols] (device pointers).
void scaleRowsCuda(float* data, const float* rowWeights, int64_t rows, int64_t cols, void* stream);
// out[r, c] for c < choices, [rows, choices]: geometric ? float(w[r] * log(max(choiceProbs[r, c],
// FLT_MIN))) (in double, as computeMixture) : w[r] * letterProbs[r, c]; inputs have row stride
// maxChoices. Device pointers.
void letterContributionCuda(const float* letterProbs, const float* choiceProbs, const float* rowWeights,
                            int64_t rows, int choices, int maxChoices, bool geometric, float* out, void* stream);
}  // namespace detail

}  // namespace moe

#endif  // MOE_USE_CUDA
