// bench_forward: prompt throughput of moe-dist's forward engine (moe::Expert, libtorch on CPU) on
// real 5-shot MMLU prompts, as a worker rank runs them: the prompts of --questions N questions of one
// subject, built by the project's prompt builder (coordinator/prompt.h, fitted to the model's
// context as a run does) and tokenized by the model's own tokenizer (tokenizer.json of a Hugging
// Face folder, or a GGUF file's metadata), run in batches of --batch B; one iteration = every
// batch once. Reported per thread count: prompt tokens/s (real prompt tokens, padding not counted),
// padded tokens/s (batch rows x longest prompt, what attention computes), seconds per MMLU question,
// mean and best iteration, prompt tokens per CPU-second of the process, load time, model bytes and the process's peak resident memory so far.
//
// Validation before timing, for each thread count (a failure exits 1): every question's
// last-token logits are finite, and the logits of each prompt inside its batch equal those of the
// prompt run alone within --tolerance (default 1e-4, absolute), as the engine promises (left padding
// masked out).
//
// --dump-ids FILE writes the token ids of the prompts (JSON) so that benchmarks/bench_forward_reference.py
// runs exactly the same tokens through transformers and llama.cpp.
//
//   bench_forward --model PATH --mmlu DIR [--subject S] [--split test] [--questions N] [--batch B]
//                 [--shots K] [--threads 1,2] [--warmup W] [--iters I] [--dtype fp32]
//                 [--prompt-style original|harness] [--tolerance T] [--json FILE|-] [--dump-ids FILE]
//                 [--tokenizer FILE.gguf|tokenizer.json|DIR]   (default: the model's own)
//                 [--prefix-cache on|off]
//
// --prefix-cache (EngineOptions::prefixCache) is off by default here, so that every prompt token is
// computed, as the reference engines do; `on` measures what a run does: a subject's shared 5-shot
// prefix is computed once and kept across batches (so after the first iteration only the question
// parts are computed: computed_tok/s says how many tokens really went through the model).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"
#include "worker/expert.h"
#include "worker/gguf.h"
#include "worker/gguf_model.h"
#include "worker/gguf_tokenizer.h"
#include "worker/model_config.h"
#include "worker/model_path.h"
#include "worker/tokenizer.h"

namespace {

struct Options {
  std::string model, mmlu, subject = "abstract_algebra", split = "test", dtype = "fp32";
  std::string promptStyle = "original", json, dumpIds, tokenizer;
  int questions = 8, batch = 4, shots = 5, warmup = 1, iters = 3;
  std::vector<int> threads = {1, 2};
  double tolerance = 1e-4;
  bool prefixCache = false;
};

const char* kUsage =
    "usage: bench_forward --model PATH --mmlu DIR [--subject S] [--split test|val|dev] [--questions N]\n"
    "                     [--batch B] [--shots K] [--threads T1,T2,...] [--warmup W] [--iters I]\n"
    "                     [--dtype fp32|bf16|fp16] [--prompt-style original|harness] [--tolerance T]\n"
    "                     [--json FILE|-] [--dump-ids FILE] [--tokenizer FILE.gguf|tokenizer.json|DIR]\n"
    "                     [--prefix-cache on|off]\n";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "bench_forward: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

int positiveInt(const std::string& flag, const std::string& v, int min) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < min || x > 1000000) usage(flag + ": bad value '" + v + "'");
  return static_cast<int>(x);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage("missing value after " + a);
    const std::string v = argv[++i];
    if (a == "--model") o.model = v;
    else if (a == "--mmlu") o.mmlu = v;
    else if (a == "--tokenizer") o.tokenizer = v;
    else if (a == "--prefix-cache") {
      if (v != "on" && v != "off") usage("--prefix-cache: on or off, not '" + v + "'");
      o.prefixCache = v == "on";
    }
    else if (a == "--subject") o.subject = v;
    else if (a == "--split") o.split = v;
    else if (a == "--dtype") o.dtype = v;
    else if (a == "--prompt-style") o.promptStyle = v;
    else if (a == "--json") o.json = v;
    else if (a == "--dump-ids") o.dumpIds = v;
    else if (a == "--questions") o.questions = positiveInt(a, v, 1);
    else if (a == "--batch") o.batch = positiveInt(a, v, 1);
    else if (a == "--shots") o.shots = positiveInt(a, v, 0);
    else if (a == "--warmup") o.warmup = positiveInt(a, v, 0);
    else if (a == "--iters") o.iters = positiveInt(a, v, 1);
    else if (a == "--tolerance") {
      char* end = nullptr;
      o.tolerance = std::strtod(v.c_str(), &end);
      if (*end != '\0' || !(o.tolerance >= 0)) usage("--tolerance: bad value '" + v + "'");
    } else if (a == "--threads") {
      o.threads.clear();
      for (size_t p = 0; p <= v.size();) {
        const size_t q = std::min(v.find(',', p), v.size());
        o.threads.push_back(positiveInt(a, v.substr(p, q - p), 1));
        p = q + 1;
      }
    } else usage("unknown option " + a);
  }
  if (o.model.empty()) usage("--model is required (a Hugging Face model folder or a .gguf file)");
  if (o.mmlu.empty()) usage("--mmlu is required (a folder with the MMLU layout, e.g. data/sample)");
  return o;
}

// The model's own tokenizer, or --tokenizer: a .gguf file, a tokenizer.json or a model folder.
std::unique_ptr<moe::Tokenizer> loadTokenizer(const std::string& path) {
  const auto endsWith = [&](const std::string& suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (endsWith(".gguf")) return moe::tokenizerFromGguf(path);
  if (endsWith(".json")) return moe::Tokenizer::fromFile(path);
  return moe::Tokenizer::fromModelFolder(path);
}

double peakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// CPU seconds of the whole process (all threads): on a shared machine, tokens per CPU-second is
// the figure least changed by other load (at 1 thread it is what the wall time would be alone).
double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Prompts {
  std::vector<std::vector<int32_t>> ids;
  std::vector<int> shots;
  std::vector<int64_t> index;
  int64_t tokens = 0;
};

// Batches in question order: [0, B), [B, 2B), ...
std::vector<std::vector<std::vector<int32_t>>> batches(const Prompts& p, int b) {
  std::vector<std::vector<std::vector<int32_t>>> out;
  for (size_t i = 0; i < p.ids.size(); i += static_cast<size_t>(b))
    out.emplace_back(p.ids.begin() + static_cast<std::ptrdiff_t>(i),
                     p.ids.begin() + static_cast<std::ptrdiff_t>(std::min(p.ids.size(), i + static_cast<size_t>(b))));
  return out;
}

struct Result {
  int threads = 0;
  double loadSeconds = 0, validateSeconds = 0, maxBatchDiff = 0;
  std::vector<double> iterSeconds, iterCpuSeconds;
  int64_t promptTokens = 0, paddedTokens = 0, computedTokens = 0;
  double peakRssMiB = 0;
  double mean() const {
    double s = 0;
    for (double x : iterSeconds) s += x;
    return s / static_cast<double>(iterSeconds.size());
  }
  double best() const { return *std::min_element(iterSeconds.begin(), iterSeconds.end()); }
  double meanCpu() const {
    double s = 0;
    for (double x : iterCpuSeconds) s += x;
    return s / static_cast<double>(iterCpuSeconds.size());
  }
};

moe::EngineOptions engineOptions(const Options& o, int threads) {
  moe::EngineOptions e;
  e.device = "cpu";
  e.dtype = o.dtype;
  e.threads = threads;
  e.prefixCache = o.prefixCache;
  return e;
}

// Validates, then times. Throws moe::Error on a failed validation.
Result run(const Options& o, const Prompts& prompts, int threads, std::string& describe, int64_t& modelBytes) {
  Result r;
  r.threads = threads;
  auto t0 = Clock::now();
  auto expert = moe::Expert::load(o.model, engineOptions(o, threads));
  r.loadSeconds = secondsSince(t0);
  describe = expert->describe();
  modelBytes = expert->modelBytes();
  const size_t V = static_cast<size_t>(expert->vocabSize());

  // Validation: each prompt alone, then in its batch.
  t0 = Clock::now();
  std::vector<std::vector<float>> single(prompts.ids.size());
  for (size_t q = 0; q < prompts.ids.size(); ++q) {
    expert->forward({prompts.ids[q]}, single[q]);
    MOE_CHECK(single[q].size() == V, "question ", prompts.index[q], ": ", single[q].size(), " logits, expected ", V);
    for (size_t j = 0; j < V; ++j)
      MOE_CHECK(std::isfinite(single[q][j]), "question ", prompts.index[q], " (alone, ", threads,
                " threads): logit ", j, " is not finite (", single[q][j], ")");
  }
  size_t q = 0;
  std::vector<float> logits;
  for (const auto& b : batches(prompts, o.batch)) {
    expert->forward(b, logits);
    MOE_CHECK(logits.size() == b.size() * V, "batch logits: ", logits.size(), ", expected ", b.size() * V);
    for (size_t i = 0; i < b.size(); ++i, ++q) {
      double worst = 0;
      for (size_t j = 0; j < V; ++j) {
        const float x = logits[i * V + j];
        MOE_CHECK(std::isfinite(x), "question ", prompts.index[q], " (batch of ", b.size(), ", ", threads,
                  " threads): logit ", j, " is not finite (", x, ")");
        worst = std::max(worst, static_cast<double>(std::fabs(x - single[q][j])));
      }
      MOE_CHECK(worst <= o.tolerance, "question ", prompts.index[q], " (", threads, " threads): its logits in a batch of ",
                b.size(), " differ from the prompt run alone by ", worst, " > tolerance ", o.tolerance);
      r.maxBatchDiff = std::max(r.maxBatchDiff, worst);
    }
  }
  r.validateSeconds = secondsSince(t0);

  const auto all = batches(prompts, o.batch);
  for (int it = 0; it < o.warmup + o.iters; ++it) {
    int64_t promptTokens = 0, padded = 0, computed = 0;
    t0 = Clock::now();
    const double cpu0 = processCpuSeconds();
    for (const auto& b : all) {
      expert->forward(b, logits);
      promptTokens += expert->lastForwardStats().promptTokens;
      padded += expert->lastForwardStats().paddedTokens;
      computed += expert->lastForwardStats().computedTokens;
    }
    const double s = secondsSince(t0), cpu = processCpuSeconds() - cpu0;
    if (it >= o.warmup) {
      r.iterSeconds.push_back(s);
      r.iterCpuSeconds.push_back(cpu);
    }
    r.promptTokens = promptTokens;
    r.paddedTokens = padded;
    r.computedTokens = computed;
  }
  r.peakRssMiB = peakRssMiB();
  return r;
}

void dumpIds(const Options& o, const Prompts& p, const std::string& describe) {
  nlohmann::json j;
  j["model"] = o.model;
  j["subject"] = o.subject;
  j["split"] = o.split;
  j["shots"] = o.shots;
  j["batch"] = o.batch;
  j["engine"] = describe;
  j["tokenizer"] = o.tokenizer.empty() ? o.model : o.tokenizer;
  nlohmann::json qs = nlohmann::json::array();
  for (size_t q = 0; q < p.ids.size(); ++q) qs.push_back({{"index", p.index[q]}, {"shots", p.shots[q]}, {"ids", p.ids[q]}});
  j["prompts"] = qs;
  std::ofstream out(o.dumpIds);
  MOE_CHECK(out, "--dump-ids ", o.dumpIds, ": cannot write");
  out << j.dump() << '\n';
  MOE_CHECK(out.good(), "--dump-ids ", o.dumpIds, ": write error");
}

int main2(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const moe::PromptStyle style = moe::parsePromptStyle(o.promptStyle);
  const moe::MmluDataset data = moe::loadMmlu(o.mmlu, o.split, {o.subject}, o.questions, o.shots);
  const moe::SubjectData& subject = data.subjects.at(0);
  MOE_CHECK(static_cast<int>(subject.eval.size()) == o.questions, "--questions ", o.questions, ": ", o.mmlu, " has only ",
            subject.eval.size(), " ", o.split, " questions of ", o.subject);

  const auto tokenizer = loadTokenizer(o.tokenizer.empty() ? o.model : o.tokenizer);
  // The context a run fits prompts to (as ExpertHost: the model's max positions, else 2048).
  const moe::ModelPath mp = moe::resolveModelPath(o.model);
  const moe::ModelConfig config = mp.format == moe::ModelFormat::Gguf
                                      ? moe::modelConfigFromGguf(moe::GgufFile::open(mp.path))
                                      : moe::parseModelConfig(mp.path + "/config.json");
  const int64_t maxContext = config.maxPositions > 0 ? config.maxPositions : 2048;
  std::string describe = moe::describe(config);
  Prompts prompts;
  for (const moe::Question& q : subject.eval) {
    const moe::Prompt p = moe::fitPrompt(
        subject, q, o.shots, style, [&](const std::string& t) { return tokenizer->encode(t, true).size(); },
        static_cast<size_t>(maxContext));
    MOE_CHECK(p.fits, "question ", q.index, " does not fit the model's context of ", maxContext, " tokens even with 0 shots");
    prompts.ids.push_back(tokenizer->encode(p.text(), true));
    prompts.shots.push_back(p.shots);
    prompts.index.push_back(q.index);
    prompts.tokens += static_cast<int64_t>(prompts.ids.back().size());
  }
  if (!o.dumpIds.empty()) dumpIds(o, prompts, describe);

  std::printf("# bench_forward: %s\n# %s/%s: %d questions, %d-shot (%s), %lld prompt tokens (mean %.1f), batch %d\n",
              describe.c_str(), o.subject.c_str(), o.split.c_str(), o.questions, o.shots, o.promptStyle.c_str(),
              static_cast<long long>(prompts.tokens), static_cast<double>(prompts.tokens) / o.questions, o.batch);
  std::printf("# validation: logits finite, batch vs alone within %g; %d warmup + %d timed iterations; prefix cache %s\n",
              o.tolerance, o.warmup, o.iters, o.prefixCache ? "on" : "off");
  std::printf("%7s %10s %12s %12s %12s %12s %12s %10s %9s %10s\n", "threads", "load_s", "prompt_tok/s", "best_tok/s",
              "tok/cpu_s", "padded_tok/s", "s/question", "batch_diff", "iter_s", "peak_MiB");
  std::fflush(stdout);

  std::vector<Result> results;
  int64_t modelBytes = 0;
  for (int t : o.threads) {
    Result r = run(o, prompts, t, describe, modelBytes);
    const double mean = r.mean();
    std::printf("%7d %10.2f %12.1f %12.1f %12.1f %12.1f %12.4f %10.2e %9.3f %10.1f\n", t, r.loadSeconds,
                static_cast<double>(r.promptTokens) / mean, static_cast<double>(r.promptTokens) / r.best(),
                static_cast<double>(r.promptTokens) / r.meanCpu(), static_cast<double>(r.paddedTokens) / mean, mean / o.questions, r.maxBatchDiff, mean, r.peakRssMiB);
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  std::printf("# model bytes (%s): %.1f MiB\n", o.dtype.c_str(), static_cast<double>(modelBytes) / (1 << 20));

  if (!o.json.empty()) {
    nlohmann::json j;
    j["tool"] = "bench_forward";
    j["engine"] = describe;
    j["model"] = o.model;
    j["dtype"] = o.dtype;
    j["prefix_cache"] = o.prefixCache;
    j["model_bytes"] = modelBytes;
    j["subject"] = o.subject;
    j["split"] = o.split;
    j["questions"] = o.questions;
    j["shots"] = o.shots;
    j["batch"] = o.batch;
    j["prompt_tokens"] = prompts.tokens;
    j["warmup"] = o.warmup;
    j["iters"] = o.iters;
    nlohmann::json rs = nlohmann::json::array();
    for (const Result& r : results) {
      rs.push_back({{"threads", r.threads},
                    {"load_seconds", r.loadSeconds},
                    {"validate_seconds", r.validateSeconds},
                    {"max_batch_vs_alone_diff", r.maxBatchDiff},
                    {"iter_seconds", r.iterSeconds},
                    {"iter_cpu_seconds", r.iterCpuSeconds},
                    {"prompt_tokens_per_cpu_s", static_cast<double>(r.promptTokens) / r.meanCpu()},
                    {"prompt_tokens_per_s", static_cast<double>(r.promptTokens) / r.mean()},
                    {"prompt_tokens_per_s_best", static_cast<double>(r.promptTokens) / r.best()},
                    {"padded_tokens_per_s", static_cast<double>(r.paddedTokens) / r.mean()},
                    {"computed_tokens_per_s", static_cast<double>(r.computedTokens) / r.mean()},
                    {"seconds_per_question", r.mean() / o.questions},
                    {"peak_rss_mib", r.peakRssMiB}});
    }
    j["results"] = rs;
    const std::string text = j.dump(2) + "\n";
    if (o.json == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream out(o.json);
      MOE_CHECK(out << text, "--json ", o.json, ": cannot write");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main2(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_forward: error: %s\n", e.what());
    return 1;
  }
}
