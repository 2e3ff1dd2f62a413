// bench_kernels: throughput of the kernels' CPU references and, where a device exists, of their
// CUDA versions, for B rows of V logits (defaults: B = 8; V in {32000, 49152, 50257, 128256, 151936,
// 262144}: Llama-2/Mistral, SmolLM2, GPT-2 (odd), Llama-3, Qwen2, Gemma 3; fp32/bf16/fp16).
// Times are per call (mean and best iteration); GB/s counts the bytes of logits (or distribution) read once -- the figure a memory-bound
// kernel's cost scales with; each CUDA kernel actually reads them twice and writes fp32.
// Every configuration is validated before it is timed: the CPU reference against a plain double
// computation, and the CUDA kernel against the CPU reference (|d| <= atol + rtol |ref|); a failed
// validation exits non-zero.
//   bench_kernels [--iters N] [--warmup N] [--rows B] [--vocab V1,V2,...] [--cpu-only]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/version.h"
#include "kernels/finalize.h"
#include "kernels/gate.h"
#include "kernels/weighted_log_softmax.h"
#include "kernels/weighted_softmax.h"

#if MOE_USE_CUDA
#include "comm/cuda_stream.h"
#endif

namespace mk = moe::kernels;

namespace {

struct Options {
  int iters = 20, warmup = 3;
  int64_t rows = 8;
  std::vector<int64_t> vocabs = {32000, 49152, 50257, 128256, 151936, 262144};
  bool cpuOnly = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "bench_kernels: %s\nusage: bench_kernels [--iters N] [--warmup N] [--rows B] "
                       "[--vocab V1,V2,...] [--cpu-only]\n", why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--iters") o.iters = std::atoi(value().c_str());
    else if (a == "--warmup") o.warmup = std::atoi(value().c_str());
    else if (a == "--rows") o.rows = std::atoll(value().c_str());
    else if (a == "--vocab") {
      o.vocabs.clear();
      const std::string v = value();
      for (size_t p = 0; p < v.size();) {
        const size_t q = std::min(v.find(',', p), v.size());
        o.vocabs.push_back(std::atoll(v.substr(p, q - p).c_str()));
        p = q + 1;
      }
    } else if (a == "--cpu-only") o.cpuOnly = true;
    else if (a == "--help" || a == "-h") usage("benchmarks the kernels");
    else usage(("unknown option " + a).c_str());
  }
  if (o.iters < 1 || o.warmup < 0 || o.rows < 1 || o.vocabs.empty()) usage("bad option value");
  for (int64_t v : o.vocabs)
    if (v < 1) usage("bad vocabulary size");
  return o;
}

struct Input {
  std::vector<float> values;  // what the kernels see, widened
  std::vector<uint8_t> bytes;
};

Input makeInput(int64_t B, int64_t V, mk::DType t) {
  std::mt19937 rng(17);
  std::normal_distribution<float> n(0.0f, 4.0f);
  Input in;
  in.values.resize(B * V);
  in.bytes.resize(B * V * mk::dtypeSize(t));
  for (int64_t i = 0; i < B * V; ++i) {
    float x = n(rng);
    if (t == mk::DType::F32) {
      std::memcpy(&in.bytes[i * 4], &x, 4);
    } else {
      const uint16_t h = t == mk::DType::BF16 ? mk::floatToBf16(x) : mk::floatToHalf(x);
      std::memcpy(&in.bytes[i * 2], &h, 2);
      x = t == mk::DType::BF16 ? mk::bf16ToFloat(h) : mk::halfToFloat(h);
    }
    in.values[i] = x;
  }
  return in;
}

[[noreturn]] void invalid(const std::string& what) {
  std::fprintf(stderr, "bench_kernels: VALIDATION FAILED: %s\n", what.c_str());
  std::exit(1);
}

// Fails unless every element is within atol + rtol |ref|.
void validateClose(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref, double atol,
                   double rtol) {
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = ref[i];
    if (g == r || std::fabs(g - r) <= atol + rtol * std::fabs(r)) continue;
    invalid(what + ": element " + std::to_string(i) + " is " + std::to_string(g) + ", expected " + std::to_string(r));
  }
}

// The softmax reference against a plain double softmax of row 0, and every row sums to 1.
void validateCpuSoftmax(const Input& in, int64_t B, int64_t V, mk::DType t) {
  std::vector<float> p(B * V);
  mk::weightedSoftmaxCpu(in.bytes.data(), t, B, V, 1.0f, nullptr, p.data(), nullptr, nullptr);
  double m = -INFINITY, s = 0;
  for (int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(in.values[v]));
  for (int64_t v = 0; v < V; ++v) s += std::exp(in.values[v] - m);
  std::vector<float> row0(V), got0(p.begin(), p.begin() + V);
  for (int64_t v = 0; v < V; ++v) row0[v] = static_cast<float>(std::exp(in.values[v] - m) / s);
  validateClose(std::string("CPU softmax ") + mk::dtypeName(t) + " row 0", got0, row0, 1e-9, 1e-6);
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += p[b * V + v];
    if (std::fabs(sum - 1.0) > 1e-5) invalid("CPU softmax row " + std::to_string(b) + " sums to " + std::to_string(sum));
  }
}

struct Timing {
  double meanMs, bestMs;
};

// Each iteration timed on its own: on a shared machine the best one is the fairer figure.
template <typename Fn>
Timing timeCpu(const Options& o, Fn&& fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  double total = 0, best = 1e300;
  for (int i = 0; i < o.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    total += ms;
    best = std::min(best, ms);
  }
  return {total / o.iters, best};
}

void report(const char* device, const char* kernel, mk::DType t, int64_t B, int64_t V, Timing ms, double bytes) {
  std::printf("%-5s %-22s %-5s %4lld %7lld %10.4f %10.4f %9.2f %9.2f\n", device, kernel, mk::dtypeName(t),
              static_cast<long long>(B), static_cast<long long>(V), ms.meanMs, ms.bestMs,
              bytes / (ms.meanMs * 1e-3) / 1e9, bytes / (ms.bestMs * 1e-3) / 1e9);
}

#if MOE_USE_CUDA
template <typename Fn>
Timing timeCudaMs(const Options& o, cudaStream_t s, Fn&& fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  moe::CudaEvent start(true), end(true);
  start.record(s);
  for (int i = 0; i < o.iters; ++i) fn();
  end.record(s);
  const double ms = moe::CudaEvent::elapsedMs(start, end) / o.iters;  // back to back: mean only
  return {ms, ms};
}

void benchCuda(const Options& o, const Input& in, int64_t B, int64_t V, mk::DType t) {
  moe::CudaStream stream;
  const cudaStream_t s = stream.get();
  moe::DeviceBuffer<uint8_t> dL(in.bytes.size());
  moe::DeviceBuffer<float> dP(B * V), dOut(B * V), dLse(B), dEnt(B), dLp(B * 4), dMass(B), dEnt2(B);
  moe::DeviceBuffer<int32_t> dPred(B), dVc(B);
  dL.upload(in.bytes.data(), in.bytes.size());
  std::vector<float> ref(B * V), got(B * V);
  const std::string tag = std::string(mk::dtypeName(t)) + " B=" + std::to_string(B) + " V=" + std::to_string(V);

  mk::weightedSoftmaxCpu(in.bytes.data(), t, B, V, 1.0f, nullptr, ref.data(), nullptr, nullptr);
  mk::weightedSoftmaxCuda(dL.get(), t, B, V, 1.0f, nullptr, dP.get(), dLse.get(), dEnt.get(), s);
  stream.synchronize();
  dP.download(got.data(), got.size());
  validateClose("CUDA softmax " + tag, got, ref, 1e-7, 1e-4);
  const double bytes = static_cast<double>(in.bytes.size());
  report("cuda", "weighted_softmax", t, B, V, timeCudaMs(o, s, [&] {
           mk::weightedSoftmaxCuda(dL.get(), t, B, V, 1.0f, nullptr, dP.get(), dLse.get(), dEnt.get(), s);
         }), bytes);

  mk::weightedLogSoftmaxCpu(in.bytes.data(), t, B, V, 1.0f, nullptr, ref.data());
  mk::weightedLogSoftmaxCuda(dL.get(), t, B, V, 1.0f, nullptr, dOut.get(), s);
  stream.synchronize();
  dOut.download(got.data(), got.size());
  validateClose("CUDA log-softmax " + tag, got, ref, 2e-5, 1e-5);
  report("cuda", "weighted_log_softmax", t, B, V,
         timeCudaMs(o, s, [&] { mk::weightedLogSoftmaxCuda(dL.get(), t, B, V, 1.0f, nullptr, dOut.get(), s); }), bytes);

  if (t == mk::DType::F32) {
    const int32_t letters[4] = {10, 20, 30, 40};
    std::vector<float> dist(B * V), ent(B), gent(B);
    mk::weightedSoftmaxCpu(in.values.data(), B, V, 1.0f, nullptr, dist.data(), nullptr, nullptr);
    dP.upload(dist.data(), dist.size());
    mk::finalizeChoicesCpu(dist.data(), B, V, letters, 4, 4, nullptr, nullptr, nullptr, nullptr, nullptr, ent.data());
    mk::finalizeChoicesCuda(dP.get(), B, V, letters, 4, 4, dLp.get(), nullptr, dMass.get(), dPred.get(), dVc.get(),
                            dEnt2.get(), s);
    stream.synchronize();
    dEnt2.download(gent.data(), B);
    validateClose("CUDA finalize entropy " + tag, gent, ent, 1e-4, 1e-4);
    report("cuda", "finalize_choices", t, B, V, timeCudaMs(o, s, [&] {
             mk::finalizeChoicesCuda(dP.get(), B, V, letters, 4, 4, dLp.get(), nullptr, dMass.get(), dPred.get(),
                                     dVc.get(), dEnt2.get(), s);
           }), static_cast<double>(B * V * 4));
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::printf("bench_kernels: %lld rows, %d iterations after %d warm-up, %u hardware threads\n",
              static_cast<long long>(o.rows), o.iters, o.warmup, std::max(1u, std::thread::hardware_concurrency()));
  std::printf("%-5s %-22s %-5s %4s %7s %10s %10s %9s %9s\n", "dev", "kernel", "dtype", "B", "V", "mean ms", "best ms",
              "GB/s mean", "GB/s best");
  const int64_t B = o.rows;
  bool cuda = false;
#if MOE_USE_CUDA
  const int devices = o.cpuOnly ? 0 : moe::cudaDeviceCountOrZero();
  cuda = devices > 0;
#endif
  for (int64_t V : o.vocabs) {
    for (mk::DType t : {mk::DType::F32, mk::DType::BF16, mk::DType::F16}) {
      const Input in = makeInput(B, V, t);
      validateCpuSoftmax(in, B, V, t);
      const double bytes = static_cast<double>(in.bytes.size());
      std::vector<float> out(B * V), lse(B), ent(B);
      report("cpu", "weighted_softmax", t, B, V, timeCpu(o, [&] {
               mk::weightedSoftmaxCpu(in.bytes.data(), t, B, V, 1.0f, nullptr, out.data(), lse.data(), ent.data());
             }), bytes);
      report("cpu", "weighted_log_softmax", t, B, V, timeCpu(o, [&] {
               mk::weightedLogSoftmaxCpu(in.bytes.data(), t, B, V, 1.0f, nullptr, out.data());
             }), bytes);
      if (t == mk::DType::F32) {
        mk::weightedSoftmaxCpu(in.values.data(), B, V, 1.0f, nullptr, out.data(), nullptr, nullptr);
        const int32_t letters[4] = {10, 20, 30, 40};
        std::vector<float> lp(B * 4), mass(B), h(B);
        std::vector<int32_t> pred(B), vc(B);
        report("cpu", "finalize_choices", t, B, V, timeCpu(o, [&] {
                 mk::finalizeChoicesCpu(out.data(), B, V, letters, 4, 4, lp.data(), nullptr, mass.data(), pred.data(),
                                        vc.data(), h.data());
               }), static_cast<double>(B * V * 4));
      }
#if MOE_USE_CUDA
      if (cuda) benchCuda(o, in, B, V, t);
#endif
    }
  }
  // The gate reads B x E scores: microseconds, reported per call.
  {
    const int E = 8;
    std::vector<float> scores(B * E), w(B * E);
    std::mt19937 rng(1);
    std::normal_distribution<float> n;
    for (auto& s : scores) s = n(rng);
    const Timing ms = timeCpu(o, [&] { mk::gateTopKCpu(scores.data(), B, E, E, 1, 1.0f, 2, w.data(), nullptr); });
    std::printf("cpu   gate_top_k E=%d k=2       fp32  %4lld %7d %10.4f %10.4f\n", E, static_cast<long long>(B), E,
                ms.meanMs, ms.bestMs);
  }
  if (!cuda)
    std::printf("cuda: skipped (%s)\n", MOE_USE_CUDA ? (o.cpuOnly ? "--cpu-only" : "no CUDA device on this machine")
                                                     : "built without CUDA");
  return 0;
}
