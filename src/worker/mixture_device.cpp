// computeMixtureDevice (contract and data flow in mixture_device.h). Built only with MOE_USE_CUDA;
// the worker's glob picks this file up in every build, so without CUDA it compiles to nothing.
#include "worker/mixture_device.h"

#if MOE_USE_CUDA
#include <algorithm>
#include <cmath>
#include <cstring>

#include "comm/cuda_stream.h"
#include "common/error.h"
#include "kernels/cuda_check.h"
#include "kernels/finalize.h"
#include "kernels/weighted_log_softmax.h"
#include "kernels/weighted_softmax.h"

namespace moe {
namespace {

// One ChoiceStats block in 4-byte words, the same layout on the device and in the pinned copy:
// letterProbs [B*C], choiceProbs [B*C], letterMass [B], entropy [B], prediction [B] (int32),
// vocabChoice [B] (int32).
struct StatsLayout {
  int64_t rows;
  int maxChoices;
  size_t words() const { return static_cast<size_t>(rows) * (2 * static_cast<size_t>(maxChoices) + 4); }
  float* letterProbs(float* base) const { return base; }
  float* choiceProbs(float* base) const { return base + rows * maxChoices; }
  float* letterMass(float* base) const { return base + 2 * rows * maxChoices; }
  float* entropy(float* base) const { return letterMass(base) + rows; }
  int32_t* prediction(float* base) const { return reinterpret_cast<int32_t*>(entropy(base) + rows); }
  int32_t* vocabChoice(float* base) const { return prediction(base) + rows; }

  void unpack(float* host, ChoiceStats& s) const {
    s.resize(rows, maxChoices);
    const size_t bc = static_cast<size_t>(rows) * maxChoices, b = static_cast<size_t>(rows);
    std::memcpy(s.letterProbs.data(), letterProbs(host), bc * 4);
    std::memcpy(s.choiceProbs.data(), choiceProbs(host), bc * 4);
    std::memcpy(s.letterMass.data(), letterMass(host), b * 4);
    std::memcpy(s.entropy.data(), entropy(host), b * 4);
    std::memcpy(s.prediction.data(), prediction(host), b * 4);
    std::memcpy(s.vocabChoice.data(), vocabChoice(host), b * 4);
  }
};

void finalizeOnDevice(const float* dist, int64_t rows, int64_t vocab, const int32_t* tokens, int choices,
                      const StatsLayout& layout, float* out, cudaStream_t stream) {
  kernels::finalizeChoicesCuda(dist, rows, vocab, tokens, choices, layout.maxChoices, layout.letterProbs(out),
                               layout.choiceProbs(out), layout.letterMass(out), layout.prediction(out),
                               layout.vocabChoice(out), layout.entropy(out), stream);
}

// Pinned staging memory of this thread, kept between batches (cudaFreeHost may synchronise the
// device, so it is only replaced when a batch needs more).
float* pinnedStaging(size_t words) {
  thread_local PinnedBuffer<float> staging;
  if (staging.size() < words) staging = PinnedBuffer<float>(std::max(words, staging.size() * 3 / 2));
  return staging.get();
}

// The in-place sum of `count` device floats over the group, ordered on `stream`.
class Reducer {
 public:
  Reducer(Communicator& group, cudaStream_t stream, float* hostStaging)
      : group_(group), device_(dynamic_cast<DeviceCommunicator*>(&group)), stream_(stream), staging_(hostStaging) {
    if (device_) {
      previous_ = device_->computeStream();
      device_->setComputeStream(stream_);
    }
  }
  ~Reducer() {
    if (device_) device_->setComputeStream(previous_);
  }
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  void allreduceSum(float* data, size_t count) {
    if (device_) {
      device_->allreduceSum(data, count);
      return;
    }
    // A host-memory backend: device -> pinned host, MPI, back (the kernels after it wait on the copy).
    MOE_CUDA_CHECK(cudaMemcpyAsync(staging_, data, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    group_.allreduceSum(staging_, count);
    MOE_CUDA_CHECK(cudaMemcpyAsync(data, staging_, count * sizeof(float), cudaMemcpyHostToDevice, stream_));
  }
  // The host waits for everything enqueued on the stream.
  void wait() {
    if (device_) device_->waitStream(stream_);
    else MOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  Communicator& group_;
  DeviceCommunicator* device_;
  cudaStream_t stream_;
  float* staging_;
  void* previous_ = nullptr;
};

// The checks of the device logits both entry points make before anything is enqueued: `what`
// prefixes the message. `letterTokens` holds at least `choices` ids (checked by the callers).
void checkDeviceLogits(const char* what, const void* logits, int64_t rows, int64_t vocab,
                       const std::vector<int32_t>& letterTokens, int choices) {
  MOE_CHECK(rows >= 0 && vocab > 0, what, ": bad logits shape [", rows, ", ", vocab, "]");
  for (int c = 0; c < choices; ++c)
    MOE_CHECK(letterTokens[c] >= 0 && letterTokens[c] < vocab, what, ": letter token ", letterTokens[c],
              " outside the vocabulary of ", vocab);
  MOE_CHECK(logits != nullptr || rows == 0, what, ": null logits");
}

}  // namespace

void computeMixtureDevice(Communicator& group, const MixtureSpec& spec, const void* logits, kernels::DType type,
                          int64_t rows, int64_t vocab, const std::vector<int32_t>& letterTokens, int choices,
                          const std::vector<float>& weights, int expertIndex, void* stream, ChoiceStats& mine,
                          ChoiceStats& mixture) {
  const int E = spec.experts, C = spec.maxChoices;
  MOE_CHECK(choices >= 2 && choices <= C, "mixture: ", choices, " choices, room for ", C);
  MOE_CHECK(static_cast<int>(letterTokens.size()) >= choices, "mixture: ", letterTokens.size(),
            " letter tokens for ", choices, " choices");
  MOE_CHECK(static_cast<int64_t>(weights.size()) == rows * E, "mixture: weights has ", weights.size(),
            " values, expected ", rows * E);
  MOE_CHECK(expertIndex >= 0 && expertIndex < E && group.size() == E, "mixture: expert ", expertIndex, " of ", E,
            " in a group of ", group.size());
  MOE_CHECK(C <= kernels::kMaxCudaChoices, "mixture on the device: at most ", kernels::kMaxCudaChoices,
            " choices, room for ", C, " requested");
  checkDeviceLogits("mixture", logits, rows, vocab, letterTokens, choices);
  mine.resize(rows, C);
  mixture.resize(rows, C);
  if (rows == 0) return;  // as computeMixture: every rank has the same rows, so all skip together

  const auto s = static_cast<cudaStream_t>(stream);
  const StatsLayout layout{rows, C};
  const bool geometric = spec.mode == MixtureMode::Geometric;
  const size_t bv = static_cast<size_t>(rows) * static_cast<size_t>(vocab);
  const size_t letters = static_cast<size_t>(rows) * choices;
  const size_t reduced = spec.fullVocabulary ? bv : letters;  // what the all-reduce carries

  // Pinned host words: [weights B][mine stats][mixture stats][letter sums B*choices][staging].
  const size_t hostWords = rows + 2 * layout.words() + letters + (dynamic_cast<DeviceCommunicator*>(&group) ? 0 : reduced);
  float* host = pinnedStaging(hostWords);
  float* hostWeights = host;
  float* hostMine = hostWeights + rows;
  float* hostMix = hostMine + layout.words();
  float* hostLetters = hostMix + layout.words();
  float* hostStaging = hostLetters + letters;
  for (int64_t r = 0; r < rows; ++r) hostWeights[r] = weights[r * E + expertIndex];

  // Device words: [weights B][mine stats][mixture stats][probs B*V][second B*V (geometric) or letters].
  const size_t second = spec.fullVocabulary ? (geometric ? bv : 0) : letters;
  kernels::detail::StreamScratch scratch((rows + 2 * layout.words() + bv + second) * sizeof(float), s);
  float* dWeights = scratch.as<float>();
  float* dMine = dWeights + rows;
  float* dMix = dMine + layout.words();
  float* dProbs = dMix + layout.words();
  float* dSecond = dProbs + bv;

  Reducer reducer(group, s, hostStaging);
  MOE_CUDA_CHECK(cudaMemcpyAsync(dWeights, hostWeights, rows * sizeof(float), cudaMemcpyHostToDevice, s));

  // This expert's own distribution and statistics.
  kernels::weightedSoftmaxCuda(logits, type, rows, vocab, spec.temperature, nullptr, dProbs, nullptr, nullptr, s);
  finalizeOnDevice(dProbs, rows, vocab, letterTokens.data(), choices, layout, dMine, s);

  if (spec.fullVocabulary) {
    if (geometric) {
      // From the logits, not log(probs): the tail of the distribution would underflow.
      kernels::weightedLogSoftmaxCuda(logits, type, rows, vocab, spec.temperature, dWeights, dSecond, s);
      reducer.allreduceSum(dSecond, bv);
      // dProbs is free again: mine's finalize was enqueued before, on the same stream.
      kernels::weightedSoftmaxCuda(dSecond, rows, vocab, 1.0f, nullptr, dProbs, nullptr, nullptr, s);
    } else {
      detail::scaleRowsCuda(dProbs, dWeights, rows, vocab, s);
      reducer.allreduceSum(dProbs, bv);
    }
    finalizeOnDevice(dProbs, rows, vocab, letterTokens.data(), choices, layout, dMix, s);
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(hostMine, dMine, 2 * layout.words() * sizeof(float), cudaMemcpyDeviceToHost, s));
    reducer.wait();
    layout.unpack(hostMine, mine);
    layout.unpack(hostMix, mixture);
    return;
  }

  // Answer-letter mixture: [B, choices] per expert from mine's device statistics, reduced on the
  // device, then finalized on the host exactly as computeMixture does.
  detail::letterContributionCuda(layout.letterProbs(dMine), layout.choiceProbs(dMine), dWeights, rows, choices, C,
                                 geometric, dSecond, s);
  reducer.allreduceSum(dSecond, letters);
  MOE_CUDA_CHECK(cudaMemcpyAsync(hostMine, dMine, layout.words() * sizeof(float), cudaMemcpyDeviceToHost, s));
  MOE_CUDA_CHECK(cudaMemcpyAsync(hostLetters, dSecond, letters * sizeof(float), cudaMemcpyDeviceToHost, s));
  reducer.wait();
  layout.unpack(hostMine, mine);

  std::vector<float> contrib(hostLetters, hostLetters + letters);
  std::vector<int32_t> identity(choices);
  for (int c = 0; c < choices; ++c) identity[c] = c;
  auto finalizeHost = [&](const float* dist) {
    kernels::finalizeChoicesCpu(dist, rows, choices, identity.data(), choices, C, mixture.letterProbs.data(),
                                mixture.choiceProbs.data(), mixture.letterMass.data(), mixture.prediction.data(),
                                mixture.vocabChoice.data(), mixture.entropy.data());
  };
  if (geometric) {
    std::vector<float> dist(letters);
    kernels::weightedSoftmaxCpu(contrib.data(), rows, choices, 1.0f, nullptr, dist.data(), nullptr, nullptr);
    finalizeHost(dist.data());
  } else {
    finalizeHost(contrib.data());
  }
  choiceEntropy(mixture, rows, choices, C);
  // Over the letters alone there is no vocabulary argmax to score.
  for (int64_t r = 0; r < rows; ++r) mixture.vocabChoice[r] = -1;
}

std::vector<float> expertEntropyDevice(const MixtureSpec& spec, const void* logits, kernels::DType type, int64_t rows,
                                       int64_t vocab, const std::vector<int32_t>& letterTokens, int choices,
                                       void* stream) {
  MOE_CHECK(choices >= 1 && choices <= kernels::kMaxCudaChoices &&
                static_cast<int>(letterTokens.size()) >= choices,
            "expert entropy: ", choices, " choices with ", letterTokens.size(), " letter tokens");
  checkDeviceLogits("expert entropy", logits, rows, vocab, letterTokens, choices);
  std::vector<float> entropy(static_cast<size_t>(rows));
  if (rows == 0) return entropy;
  const auto s = static_cast<cudaStream_t>(stream);
  const size_t bv = static_cast<size_t>(rows) * static_cast<size_t>(vocab);
  kernels::detail::StreamScratch scratch((bv + rows) * sizeof(float), s);
  float* dProbs = scratch.as<float>();
  float* dEntropy = dProbs + bv;
  kernels::weightedSoftmaxCuda(logits, type, rows, vocab, spec.temperature, nullptr, dProbs, nullptr, nullptr, s);
  kernels::finalizeChoicesCuda(dProbs, rows, vocab, letterTokens.data(), choices, choices, nullptr, nullptr, nullptr,
                               nullptr, nullptr, dEntropy, s);
  float* host = pinnedStaging(static_cast<size_t>(rows));
  MOE_CUDA_CHECK(cudaMemcpyAsync(host, dEntropy, rows * sizeof(float), cudaMemcpyDeviceToHost, s));
  MOE_CUDA_CHECK(cudaStreamSynchronize(s));
  std::memcpy(entropy.data(), host, entropy.size() * sizeof(float));
  return entropy;
}

}  // namespace moe

#endif  // MOE_USE_CUDA
