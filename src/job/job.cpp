#include "job/job.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <numeric>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "comm/nccl_communicator.h"
#include "common/batch.h"
#include "common/log.h"
#include "common/rank_layout.h"
#include "common/version.h"
#include "common/wire.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"
#include "coordinator/report.h"
#include "coordinator/results.h"
#include "coordinator/scheduler.h"
#include "coordinator/calibrate.h"
#include "job/expert_host.h"
#include "kernels/finalize.h"
#include "kernels/weighted_softmax.h"
#include "worker/gate.h"
#include "worker/mixture.h"
#include "worker/mixture_device.h"

namespace moe {
namespace {

enum Tag : int { kTagRequest = 101, kTagAssign = 102, kTagResult = 103, kTagFinished = 104 };

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// SIGUSR1 or SIGTERM (Slurm's warning before a time limit or preemption) asks the job to stop:
// rank 0 hands out no new batch, the batches in flight finish and are written, and the job exits
// with kExitStopped; `--resume` continues from there.
constexpr int kExitStopped = 75;  // EX_TEMPFAIL
volatile std::sig_atomic_t gStopRequested = 0;
extern "C" void onStopSignal(int) { gStopRequested = 1; }

void installStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Thrown after a set-up failure has been reported by the failing rank(s): exit 1, nothing more.
struct SetupFailed {};

// Runs `f` (on every rank, or on rank 0 only) and agrees on the outcome: when any rank failed,
// each failing rank prints its error and every rank leaves through SetupFailed.
void collectiveStep(MpiSession& mpi, bool rootOnly, const std::function<void()>& f) {
  int failed = 0;
  if (!rootOnly || mpi.rank() == 0) {
    try {
      f();
    } catch (const Error& e) {
      failed = 1;
      if (mpi.size() > 1)
        std::fprintf(stderr, "moe-dist: error on rank %d (%s): %s\n", mpi.rank(), mpi.host().c_str(), e.what());
      else
        std::fprintf(stderr, "moe-dist: error: %s\n", e.what());
      std::fflush(stderr);
    }
  }
  int any = 0;
  MOE_MPI_CHECK(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (any) throw SetupFailed{};
}

std::string joinArgs(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += argv[i];
  }
  return s;
}

// Static expert weights, normalised to sum to 1.
std::vector<float> staticWeights(const RunConfig& cfg) {
  const size_t E = cfg.models.size();
  std::vector<double> w(E, 1.0);
  if (cfg.mode != "mean" && !cfg.weights.empty()) {
    MOE_CHECK(cfg.weights.size() == E, "--weights has ", cfg.weights.size(), " values for ", E, " models");
    w = cfg.weights;
  }
  // With a gate the weights come from the gate (static: gate.weights, else --weights).
  MOE_CHECK(cfg.gate.enabled() || cfg.mode != "weighted" || !cfg.weights.empty(),
            "--mode weighted needs --weights (one per model)");
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  MOE_CHECK(sum > 0, "--weights must not all be zero");
  std::vector<float> out(E);
  for (size_t e = 0; e < E; ++e) out[e] = static_cast<float>(w[e] / sum);
  return out;
}

// ---- result rows on the wire ------------------------------------------------------------------

// A batch's rows with its leader's timing (BatchTiming; segment, first row and write time are
// rank 0's to fill).
struct BatchOutcome {
  std::vector<QuestionResult> rows;
  BatchTiming timing;
};

std::vector<uint8_t> serializeOutcome(const BatchOutcome& out) {
  const std::vector<QuestionResult>& rows = out.rows;
  WireWriter w;
  w.put<uint64_t>(rows.size());
  for (const auto& r : rows) {
    w.putString(r.subject);
    w.put(r.index);
    w.put(r.gold);
    w.put(r.numChoices);
    w.put(r.shots);
    w.putVector(r.promptTokens);
    w.put(r.prediction);
    w.put<uint8_t>(r.correct);
    w.putVector(r.weights);
    w.putVector(r.expertEntropy);
    w.put(r.mixtureEntropy);
    w.putVector(r.expertLetterProbs);
    w.putVector(r.mixtureLetterProbs);
    w.putVector(r.expertChoiceProbs);
    w.putVector(r.mixtureChoiceProbs);
    w.putVector(r.expertPrediction);
    w.putVector(r.expertCorrect);
    w.putVector(r.expertVocabChoice);
    w.put(r.mixtureVocabChoice);
    w.putVector(r.expertLetterMass);
    w.put(r.mixtureLetterMass);
    w.putVector(r.gateScores);
  }
  const BatchTiming& t = out.timing;
  w.put(t.group);
  w.put(t.subject);
  w.put(t.questions);
  w.putVector(t.promptTokens);
  w.putVector(t.computedTokens);
  w.putVector(t.cachedTokens);
  w.putVector(t.tokenizeSeconds);
  w.putVector(t.forwardSeconds);
  w.put(t.waitSeconds);
  w.put(t.reduceSeconds);
  w.put(t.batchSeconds);
  return std::move(w.bytes());
}

BatchOutcome deserializeOutcome(const std::vector<uint8_t>& bytes) {
  WireReader rd(bytes.data(), bytes.size(), "results");
  const uint64_t n = rd.get<uint64_t>();
  MOE_CHECK(n <= bytes.size(), "malformed results message: ", n, " rows");
  BatchOutcome out;
  std::vector<QuestionResult>& rows = out.rows;
  rows.resize(n);
  for (auto& r : rows) {
    r.subject = rd.getString();
    r.index = rd.get<int64_t>();
    r.gold = rd.get<int32_t>();
    r.numChoices = rd.get<int32_t>();
    r.shots = rd.get<int32_t>();
    r.promptTokens = rd.getVector<int32_t>();
    r.prediction = rd.get<int32_t>();
    r.correct = rd.get<uint8_t>() != 0;
    r.weights = rd.getVector<float>();
    r.expertEntropy = rd.getVector<float>();
    r.mixtureEntropy = rd.get<float>();
    r.expertLetterProbs = rd.getVector<float>();
    r.mixtureLetterProbs = rd.getVector<float>();
    r.expertChoiceProbs = rd.getVector<float>();
    r.mixtureChoiceProbs = rd.getVector<float>();
    r.expertPrediction = rd.getVector<int32_t>();
    r.expertCorrect = rd.getVector<uint8_t>();
    r.expertVocabChoice = rd.getVector<int32_t>();
    r.mixtureVocabChoice = rd.get<int32_t>();
    r.expertLetterMass = rd.getVector<float>();
    r.mixtureLetterMass = rd.get<float>();
    r.gateScores = rd.getVector<float>();
  }
  BatchTiming& t = out.timing;
  t.group = rd.get<int32_t>();
  t.subject = rd.get<int32_t>();
  t.questions = rd.get<int32_t>();
  t.promptTokens = rd.getVector<int64_t>();
  t.computedTokens = rd.getVector<int64_t>();
  t.cachedTokens = rd.getVector<int64_t>();
  t.tokenizeSeconds = rd.getVector<double>();
  t.forwardSeconds = rd.getVector<double>();
  t.waitSeconds = rd.get<double>();
  t.reduceSeconds = rd.get<double>();
  t.batchSeconds = rd.get<double>();
  MOE_CHECK(rd.atEnd(), "malformed results message: trailing bytes");
  return out;
}

// One rank's costs on the wire (the end-of-run gather to rank 0).
std::vector<uint8_t> serializeCost(const RankCost& c) {
  WireWriter w;
  w.put(c.rank);
  w.put(c.group);
  w.put(c.expert);
  w.putString(c.host);
  w.putString(c.device);
  w.putString(c.model);
  w.put(c.modelBytes);
  for (const auto& [name, count] : kRankCostCounts) w.put(c.*count);
  for (const auto& [name, seconds] : kRankCostSeconds) w.put(c.*seconds);
  return std::move(w.bytes());
}

RankCost deserializeCost(const uint8_t* data, size_t size) {
  WireReader rd(data, size, "rank costs");
  RankCost c;
  c.rank = rd.get<int32_t>();
  c.group = rd.get<int32_t>();
  c.expert = rd.get<int32_t>();
  c.host = rd.getString();
  c.device = rd.getString();
  c.model = rd.getString();
  c.modelBytes = rd.get<int64_t>();
  for (const auto& [name, count] : kRankCostCounts) c.*count = rd.get<int64_t>();
  for (const auto& [name, seconds] : kRankCostSeconds) c.*seconds = rd.get<double>();
  MOE_CHECK(rd.atEnd(), "malformed rank costs message: trailing bytes");
  return c;
}

// Every rank's costs, in rank order, on rank 0 (empty elsewhere). Collective over MPI_COMM_WORLD.
std::vector<RankCost> gatherCosts(MpiSession& mpi, const RankCost& mine) {
  const std::vector<uint8_t> bytes = serializeCost(mine);
  const int size = static_cast<int>(bytes.size());
  std::vector<int> sizes(static_cast<size_t>(mpi.size())), offsets(static_cast<size_t>(mpi.size()));
  MOE_MPI_CHECK(MPI_Gather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD));
  int total = 0;
  for (int r = 0; r < mpi.size(); ++r) {
    offsets[r] = total;
    total += sizes[r];
  }
  std::vector<uint8_t> all(mpi.rank() == 0 ? static_cast<size_t>(total) : 0);
  MOE_MPI_CHECK(MPI_Gatherv(bytes.data(), size, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0,
                            MPI_COMM_WORLD));
  std::vector<RankCost> out;
  if (mpi.rank() == 0)
    for (int r = 0; r < mpi.size(); ++r) out.push_back(deserializeCost(all.data() + offsets[r], sizes[r]));
  return out;
}

void sendBytes(const std::vector<uint8_t>& bytes, int dest, int tag) {
  MOE_CHECK(bytes.size() < static_cast<size_t>(INT32_MAX), "message of ", bytes.size(), " bytes is too large");
  MOE_MPI_CHECK(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD));
}

std::vector<uint8_t> recvBytes(int source, int tag, MPI_Status* statusOut = nullptr) {
  MPI_Status st;
  MOE_MPI_CHECK(MPI_Probe(source, tag, MPI_COMM_WORLD, &st));
  int count = 0;
  MOE_MPI_CHECK(MPI_Get_count(&st, MPI_BYTE, &count));
  std::vector<uint8_t> buf(count);
  MOE_MPI_CHECK(MPI_Recv(buf.data(), count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  if (statusOut) *statusOut = st;
  return buf;
}

// The leader's batch reaches every rank of its group.
Batch groupBroadcast(MpiCommunicator& group, const Batch* batch, RankCost& cost) {
  const auto started = Clock::now();
  std::vector<uint8_t> bytes;
  uint64_t size = 0;
  if (group.rank() == 0) {
    bytes = serializeBatch(*batch);
    size = bytes.size();
  }
  group.broadcast(&size, sizeof(size), 0);
  bytes.resize(size);
  group.broadcast(bytes.data(), size, 0);
  cost.collectiveSeconds += secondsSince(started);
  return deserializeBatch(bytes.data(), bytes.size());
}

// ---- one batch on one group ---------------------------------------------------------------------

struct GroupContext {
  const RunConfig& cfg;
  const RankLayout& layout;
  MpiCommunicator& group;
  ExpertHost& host;
  MixtureSpec spec;
  std::vector<float> staticWeights;
  std::vector<std::string> subjects;    // subject table (names), rank 0's order, broadcast
  std::vector<std::string> categories;  // parallel to subjects
  GateConfig gate;                      // resolved (a calibrated table fitted), the same on every rank
  RankCost cost;                        // this rank's costs, accumulated over the batches
  // The device mixture's communicator (NCCL over the group's GPUs) when the group runs the mixture
  // on its GPUs (mixturePlacement), else null: the host mixture over `group`.
  Communicator* deviceGroup = nullptr;
};

// `s` cut to n - 1 bytes and NUL-padded to n: a fixed-width record for MPI gathers.
std::string fixedString(const std::string& s, size_t n) {
  std::string out = s.substr(0, n - 1);
  out.resize(n, '\0');
  return out;
}

// Where this group computes its mixture (decideMixturePlacement), from every group rank's host and
// device, gathered so that all of them decide alike: a rank on the device path waits in NCCL
// collectives the others must join.
MixturePlacement mixturePlacement(const RunConfig& cfg, int cudaDevice, const std::string& host,
                                  MpiCommunicator& group) {
  constexpr int kWidth = 256;
  const std::string device = cudaDevice >= 0 ? "cuda:" + std::to_string(cudaDevice) : "cpu";
  const std::string me = fixedString(host + " " + device, kWidth);
  std::vector<char> gathered(static_cast<size_t>(group.size()) * kWidth);
  MOE_MPI_CHECK(MPI_Allgather(me.data(), kWidth, MPI_CHAR, gathered.data(), kWidth, MPI_CHAR, group.handle()));
  std::vector<std::string> hostDevices;
  for (int r = 0; r < group.size(); ++r) hostDevices.emplace_back(&gathered[static_cast<size_t>(r) * kWidth]);
  return decideMixturePlacement(hostDevices, cfg.mixtureOn, MOE_USE_CUDA && MOE_USE_NCCL);
}

// One rank's logits for a batch: float32 on the host (host mixture) or left on the GPU in the
// model's dtype (device mixture).
struct BatchLogits {
  std::vector<float> host;  // [B * vocab]
  ModelLogits device;       // set on the device path
  int64_t vocab = 0;
};

// This expert's entropy per question exactly as the mixture computes it (the same kernels on the
// same logits), so the stored expert_entropy reproduces the entropy gate's weights bit for bit
// (moe-dist combine).
std::vector<float> expertEntropy(const GroupContext& ctx, const Batch& batch, const BatchLogits& logits, int64_t B) {
  const int64_t V = logits.vocab;
  if (ctx.deviceGroup != nullptr) {
#if MOE_USE_CUDA
    return expertEntropyDevice(ctx.spec, logits.device.data, logits.device.dtype, B, V, ctx.host.letterTokens(),
                               batch.choices, nullptr);
#else
    MOE_THROW("the device mixture is not in this build");
#endif
  }
  std::vector<float> probs(B * V), entropy(B);
  kernels::weightedSoftmaxCpu(logits.host.data(), B, V, ctx.spec.temperature, nullptr, probs.data(), nullptr, nullptr);
  kernels::finalizeChoicesCpu(probs.data(), B, V, ctx.host.letterTokens().data(), batch.choices, ctx.spec.maxChoices,
                              nullptr, nullptr, nullptr, nullptr, nullptr, entropy.data());
  return entropy;
}

// [E * B] as allgathered (each rank's B values after the previous rank's) -> [B * E].
std::vector<float> byQuestion(const std::vector<float>& gathered, int64_t B, int E) {
  std::vector<float> out(gathered.size());
  for (int e = 0; e < E; ++e)
    for (int64_t b = 0; b < B; ++b) out[b * E + e] = gathered[static_cast<size_t>(e) * B + b];
  return out;
}

// This rank's value per question, gathered over the group, as [B * E].
std::vector<float> gatherByQuestion(MpiCommunicator& group, const std::vector<float>& mine, int E) {
  const int64_t B = static_cast<int64_t>(mine.size());
  std::vector<float> all(static_cast<size_t>(E) * B);
  group.allgather(mine.data(), all.data(), mine.size());
  return byQuestion(all, B, E);
}

// The per-question weights [B * E]: the static row, or the gate's from the inputs it needs,
// gathered over the group so every rank computes the same rows. `routerScores` receives the
// gathered router scores [B * E] (empty without a router).
// `gateSeconds` receives the time of the scores' own computation (not their gathers).
std::vector<float> batchWeights(GroupContext& ctx, const Batch& batch, const BatchLogits& logits,
                                const std::vector<float>& hidden, std::vector<float>& routerScores,
                                double& gateSeconds) {
  const int E = ctx.layout.experts;
  const int64_t B = static_cast<int64_t>(batch.questions.size());
  routerScores.clear();
  gateSeconds = 0;
  if (ctx.gate.router.configured() || ctx.gate.retrieval.configured()) {
    const auto started = Clock::now();
    std::vector<float> mine =
        ctx.gate.router.configured() ? ctx.host.routerScores(batch, hidden) : ctx.host.retrievalScores(batch);
    gateSeconds = secondsSince(started);
    routerScores = gatherByQuestion(ctx.group, mine, E);
  }
  std::vector<float> weights(B * E);
  if (!ctx.gate.enabled()) {
    for (int64_t b = 0; b < B; ++b)
      for (int e = 0; e < E; ++e) weights[b * E + e] = ctx.staticWeights[e];
    return weights;
  }
  GateInputs in;
  in.rows = B;
  in.experts = E;
  in.subjects.assign(B, ctx.subjects.at(batch.subject));
  in.categories.assign(B, ctx.categories.at(batch.subject));
  in.routerScores = routerScores;
  if (ctx.gate.policy == "entropy") in.entropy = gatherByQuestion(ctx.group, expertEntropy(ctx, batch, logits, B), E);
  return gateWeights(ctx.gate, in, ctx.cfg.weights);
}

// Fault injection for the resume tests: MOE_TEST_KILL_AFTER=R:N makes rank R kill itself with
// SIGKILL when it starts its (N+1)-th batch, as a node failure or an OOM kill would.
void maybeKillForTest(int rank) {
  static int batches = 0;
  static const char* spec = std::getenv("MOE_TEST_KILL_AFTER");
  if (!spec) return;
  int r = -1, n = -1;
  if (std::sscanf(spec, "%d:%d", &r, &n) == 2 && r == rank && batches++ == n) {
    std::fprintf(stderr, "moe-dist: MOE_TEST_KILL_AFTER: rank %d kills itself after %d batches\n", rank, n);
    std::fflush(stderr);
    std::raise(SIGKILL);
  }
}

// Every rank of the group runs this for the same batch; the leader gets the rows and the batch's
// timing back. Every rank adds its own work to ctx.cost.
BatchOutcome processBatch(GroupContext& ctx, const Batch& batch) {
  maybeKillForTest(ctx.layout.rank);
  const int E = ctx.layout.experts, C = ctx.spec.maxChoices;
  const int64_t B = static_cast<int64_t>(batch.questions.size());
  const auto started = Clock::now();
  TokenizedBatch tokens = ctx.host.tokenize(batch, ctx.cfg.shots);
  const double tokenizeSeconds = secondsSince(started);
  BatchLogits logits;
  std::vector<float> hidden;
  const bool needHidden = ctx.gate.router.configured() && ctx.host.routerNeedsHidden();
  const auto forwardStarted = Clock::now();
  if (ctx.deviceGroup != nullptr) {
    ctx.host.forward(tokens, logits.device, needHidden ? &hidden : nullptr);
    logits.vocab = logits.device.vocab;
  } else {
    ctx.host.forward(tokens, logits.host, needHidden ? &hidden : nullptr);
    logits.vocab = static_cast<int64_t>(logits.host.size()) / std::max<int64_t>(B, 1);
  }
  const double forwardSeconds = secondsSince(forwardStarted);
  const ForwardStats fs = ctx.host.lastForwardStats();  // before a gate's own forward pass replaces it
  const int64_t V = logits.vocab;

  const auto reduceStarted = Clock::now();
  std::vector<float> routerScores;  // router or retrieval scores, stored as gate_scores
  double gateSeconds = 0;
  const std::vector<float> weights = batchWeights(ctx, batch, logits, hidden, routerScores, gateSeconds);

  ChoiceStats mine, mix;
  if (ctx.deviceGroup != nullptr) {
#if MOE_USE_CUDA
    // The forward is complete when its logits are handed over (ModelLogits), so the mixture may
    // run on the legacy default stream; the NCCL communicator orders its collectives after it.
    MOE_CHECK(logits.device.rows == B, "device logits: ", logits.device.rows, " rows for a batch of ", B);
    computeMixtureDevice(*ctx.deviceGroup, ctx.spec, logits.device.data, logits.device.dtype, B, V,
                         ctx.host.letterTokens(), batch.choices, weights, ctx.layout.expert, nullptr, mine, mix);
#else
    MOE_THROW("the device mixture is not in this build");
#endif
  } else {
    computeMixture(ctx.group, ctx.spec, logits.host.data(), B, V, ctx.host.letterTokens(), batch.choices, weights,
                   ctx.layout.expert, mine, mix);
  }

  // Each expert's per-question values reach the leader: [2C letter/choice probs, mass, entropy,
  // prediction, vocab choice, prompt tokens, shots] as floats (all integers here are < 2^24),
  // then the rank's batch costs [tokenize s, forward s, prompt, computed, cached tokens].
  const int K = 2 * C + 6, kCost = 5;
  const size_t stride = static_cast<size_t>(B * K + kCost);
  std::vector<float> packed(stride), all(static_cast<size_t>(E) * stride);
  for (int64_t b = 0; b < B; ++b) {
    float* p = &packed[b * K];
    for (int c = 0; c < C; ++c) {
      p[c] = mine.letterProbs[b * C + c];
      p[C + c] = mine.choiceProbs[b * C + c];
    }
    p[2 * C] = mine.letterMass[b];
    p[2 * C + 1] = mine.entropy[b];
    p[2 * C + 2] = static_cast<float>(mine.prediction[b]);
    p[2 * C + 3] = static_cast<float>(mine.vocabChoice[b]);
    p[2 * C + 4] = static_cast<float>(tokens.ids[b].size());
    p[2 * C + 5] = static_cast<float>(tokens.shots[b]);
  }
  {
    float* p = &packed[static_cast<size_t>(B * K)];
    p[0] = static_cast<float>(tokenizeSeconds);
    p[1] = static_cast<float>(forwardSeconds);
    p[2] = static_cast<float>(fs.promptTokens);
    p[3] = static_cast<float>(fs.computedTokens);
    p[4] = static_cast<float>(fs.cachedTokens);
  }
  ctx.group.allgather(packed.data(), all.data(), packed.size());
  const double reduceSeconds = secondsSince(reduceStarted) - gateSeconds;

  RankCost& cost = ctx.cost;
  cost.batches += 1;
  cost.questions += B;
  cost.promptTokens += fs.promptTokens;
  cost.computedTokens += fs.computedTokens;
  cost.cachedTokens += fs.cachedTokens;
  cost.paddedTokens += fs.paddedTokens;
  cost.tokenizeSeconds += tokenizeSeconds;
  cost.forwardSeconds += forwardSeconds;
  cost.gateSeconds += gateSeconds;
  cost.collectiveSeconds += reduceSeconds;
  if (!ctx.layout.isGroupLeader()) return {};

  BatchOutcome out;
  BatchTiming& t = out.timing;
  t.group = ctx.layout.group;
  t.subject = batch.subject;
  t.questions = static_cast<int32_t>(B);
  for (int e = 0; e < E; ++e) {
    const float* p = &all[static_cast<size_t>(e) * stride + static_cast<size_t>(B * K)];
    t.tokenizeSeconds.push_back(p[0]);
    t.forwardSeconds.push_back(p[1]);
    t.promptTokens.push_back(static_cast<int64_t>(p[2]));
    t.computedTokens.push_back(static_cast<int64_t>(p[3]));
    t.cachedTokens.push_back(static_cast<int64_t>(p[4]));
  }
  t.reduceSeconds = reduceSeconds;

  const bool vocabScoring = ctx.cfg.scoring == "vocab";
  std::vector<QuestionResult>& rows = out.rows;
  rows.resize(B);
  for (int64_t b = 0; b < B; ++b) {
    const BatchQuestion& q = batch.questions[b];
    QuestionResult& r = rows[b];
    r.subject = ctx.subjects.at(batch.subject);
    r.index = q.id;  // replaced by the coordinator with the question's row index
    r.gold = q.gold;
    r.numChoices = batch.choices;
    r.shots = INT32_MAX;
    r.weights.assign(weights.begin() + b * E, weights.begin() + (b + 1) * E);
    if (!routerScores.empty()) r.gateScores.assign(routerScores.begin() + b * E, routerScores.begin() + (b + 1) * E);
    r.expertLetterProbs.resize(E * C);
    r.expertChoiceProbs.resize(E * C);
    for (int e = 0; e < E; ++e) {
      const float* p = &all[static_cast<size_t>(e) * stride + static_cast<size_t>(b * K)];
      for (int c = 0; c < C; ++c) {
        r.expertLetterProbs[e * C + c] = p[c];
        r.expertChoiceProbs[e * C + c] = p[C + c];
      }
      r.expertLetterMass.push_back(p[2 * C]);
      r.expertEntropy.push_back(p[2 * C + 1]);
      const int32_t letterPred = static_cast<int32_t>(p[2 * C + 2]);
      const int32_t vocabChoice = static_cast<int32_t>(p[2 * C + 3]);
      r.expertVocabChoice.push_back(vocabChoice);
      const int32_t pred = vocabScoring ? vocabChoice : letterPred;
      r.expertPrediction.push_back(pred);
      r.expertCorrect.push_back(pred == q.gold ? 1 : 0);
      r.promptTokens.push_back(static_cast<int32_t>(p[2 * C + 4]));
      r.shots = std::min(r.shots, static_cast<int32_t>(p[2 * C + 5]));
    }
    r.mixtureLetterProbs.assign(mix.letterProbs.begin() + b * C, mix.letterProbs.begin() + (b + 1) * C);
    r.mixtureChoiceProbs.assign(mix.choiceProbs.begin() + b * C, mix.choiceProbs.begin() + (b + 1) * C);
    r.mixtureEntropy = mix.entropy[b];
    r.mixtureLetterMass = mix.letterMass[b];
    r.mixtureVocabChoice = mix.vocabChoice[b];
    r.prediction = vocabScoring ? mix.vocabChoice[b] : mix.prediction[b];
    r.correct = r.prediction == q.gold;
  }
  t.batchSeconds = secondsSince(started);
  return out;
}

// ---- progress on rank 0 -------------------------------------------------------------------------

class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(isatty(fileno(stderr))), start_(Clock::now()) {}
  void add(size_t n) {
    done_ += n;
    const double pct = total_ ? 100.0 * done_ / total_ : 100.0;
    if (!tty_ && pct < nextPct_ && done_ < total_) return;
    nextPct_ = std::floor(pct / 5.0) * 5.0 + 5.0;
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = secs > 0 ? done_ / secs : 0.0;
    const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
    std::fprintf(stderr, "%s[moe-dist] %zu/%zu questions (%.0f%%), %.2f q/s, ETA %.0fs%s", tty_ ? "\r" : "", done_,
                 total_, pct, rate, eta, tty_ ? "   " : "\n");
    if (tty_ && done_ >= total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  size_t total_, done_ = 0;
  bool tty_;
  double nextPct_ = 0;
  Clock::time_point start_;
};

// ---- roles --------------------------------------------------------------------------------------

// Rank 0: hands out batches, runs group 0's batches, writes every row. Returns false when a stop
// signal ended the hand-out early.
// `timings` receives every batch's timing, in write order.
bool coordinatorLoop(GroupContext& ctx, Scheduler& sched, ResultsWriter& writer, Progress& progress,
                     std::vector<BatchTiming>& timings) {
  const int groups = ctx.layout.groups;
  int remoteFinished = 0;
  bool ownDone = false;
  bool stopped = false;
  auto nextBatch = [&]() -> Batch {
    if (gStopRequested && !stopped && sched.batchesLeft() > 0) {
      stopped = true;
      logWarn("stop signal received: finishing the batches in flight, then exiting (continue with --resume)");
    }
    return stopped ? Batch{} : sched.next();
  };
  auto write = [&](BatchOutcome out) {
    for (auto& r : out.rows) r.index = sched.question(r.index).question->index;
    out.timing.segment = writer.segment();
    out.timing.firstRow = writer.rows();
    const auto started = Clock::now();
    writer.append(out.rows);
    out.timing.writeSeconds = secondsSince(started);
    ctx.cost.writeSeconds += out.timing.writeSeconds;
    timings.push_back(std::move(out.timing));
    progress.add(out.rows.size());
  };
  auto service = [&](bool block) {
    while (true) {
      MPI_Status st;
      int flag = 0;
      const auto started = Clock::now();
      if (block) {
        MOE_MPI_CHECK(MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
        flag = 1;
      } else {
        MOE_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st));
      }
      if (!flag) return;
      if (block) ctx.cost.waitSeconds += secondsSince(started);
      auto bytes = recvBytes(st.MPI_SOURCE, st.MPI_TAG);
      if (st.MPI_TAG == kTagRequest) {
        sendBytes(serializeBatch(nextBatch()), st.MPI_SOURCE, kTagAssign);
      } else if (st.MPI_TAG == kTagResult) {
        write(deserializeOutcome(bytes));
      } else if (st.MPI_TAG == kTagFinished) {
        ++remoteFinished;
      } else {
        MOE_THROW("unexpected message tag ", st.MPI_TAG, " from rank ", st.MPI_SOURCE);
      }
      if (block) return;
    }
  };
  while (!ownDone || remoteFinished < groups - 1) {
    service(false);
    if (!ownDone) {
      const auto scheduled = Clock::now();
      Batch b = nextBatch();
      const double scheduling = secondsSince(scheduled);
      groupBroadcast(ctx.group, &b, ctx.cost);
      if (b.isStop()) {
        ownDone = true;
        continue;
      }
      BatchOutcome out = processBatch(ctx, b);
      out.timing.waitSeconds = scheduling;
      write(std::move(out));
    } else if (remoteFinished < groups - 1) {
      // The non-blocking drain above may have taken the last "finished": block only if one is due.
      service(true);
    }
  }
  return !stopped;
}

// Leader of group g > 0: asks for work one batch ahead, so its group never waits on rank 0.
void leaderLoop(GroupContext& ctx) {
  std::deque<std::pair<Batch, double>> queue;  // with the seconds spent waiting for it
  bool outstanding = false, noMore = false;
  while (true) {
    if (!noMore && !outstanding) {
      int32_t g = ctx.layout.group;
      std::vector<uint8_t> req(sizeof(g));
      std::memcpy(req.data(), &g, sizeof(g));
      const auto started = Clock::now();
      sendBytes(req, 0, kTagRequest);
      ctx.cost.waitSeconds += secondsSince(started);
      outstanding = true;
    }
    if (queue.empty()) {
      if (noMore) break;
      const auto started = Clock::now();
      auto bytes = recvBytes(0, kTagAssign);
      const double waited = secondsSince(started);
      ctx.cost.waitSeconds += waited;
      outstanding = false;
      Batch b = deserializeBatch(bytes.data(), bytes.size());
      if (b.isStop())
        noMore = true;
      else
        queue.emplace_back(std::move(b), waited);
      continue;
    }
    auto [b, waited] = std::move(queue.front());
    queue.pop_front();
    groupBroadcast(ctx.group, &b, ctx.cost);
    BatchOutcome out = processBatch(ctx, b);
    out.timing.waitSeconds = waited;
    const auto started = Clock::now();
    sendBytes(serializeOutcome(out), 0, kTagResult);
    ctx.cost.waitSeconds += secondsSince(started);
  }
  Batch stop;
  groupBroadcast(ctx.group, &stop, ctx.cost);
  sendBytes({}, 0, kTagFinished);
}

void memberLoop(GroupContext& ctx) {
  while (true) {
    Batch b = groupBroadcast(ctx.group, nullptr, ctx.cost);
    if (b.isStop()) return;
    processBatch(ctx, b);
  }
}

}  // namespace

int runJob(const RunConfig& cfgIn, int* argc, char*** argv) {
  const std::string commandLine = joinArgs(*argc, *argv);
  MpiSession mpi(argc, argv);
  installStopHandlers();
  RunConfig cfg = cfgIn;
  try {
    RankLayout layout;
    // Checks every rank makes the same way: report once, from rank 0.
    {
      std::string problem;
      try {
        MOE_CHECK(!cfg.models.empty(), "no models given: pass --models PATH... (or models: in a --config file)");
        MOE_CHECK(!cfg.data.empty(), "no data given: pass --data DIR (an MMLU folder with dev/ and test/)");
        MOE_CHECK(!cfg.output.empty(), "no output given: pass --output FILE.h5");
        MOE_CHECK(!(cfg.resume && cfg.overwrite), "--resume and --overwrite contradict each other: choose one");
        layout = makeRankLayout(mpi.size(), mpi.rank(), static_cast<int>(cfg.models.size()));
        staticWeights(cfg);
        validateGate(cfg.gate, cfg.models.size());
      } catch (const Error& e) {
        problem = e.what();
      }
      if (!problem.empty()) {
        if (mpi.rank() == 0) std::fprintf(stderr, "moe-dist: error: %s\n", problem.c_str());
        return 1;
      }
    }
    const int E = layout.experts;

    // Rank 0: the data set and the output policy, before any model is loaded.
    MmluDataset data;
    int32_t maxChoices = 0;
    collectiveStep(mpi, true, [&] {
      data = loadMmlu(cfg);
      MOE_CHECK(data.totalQuestions() > 0, "no questions to evaluate in ", cfg.data, " (split ", cfg.split, ")");
      maxChoices = data.maxChoices;
      const bool exists = access(cfg.output.c_str(), F_OK) == 0;
      MOE_CHECK(!exists || cfg.overwrite || cfg.resume, "output file '", cfg.output,
                "' exists: pass --resume to continue it or --overwrite to replace it");
      MOE_CHECK(exists || !cfg.resume, "--resume: output file '", cfg.output, "' does not exist");
    });
    MOE_MPI_CHECK(MPI_Bcast(&maxChoices, 1, MPI_INT, 0, MPI_COMM_WORLD));

    // Every rank: its expert.
    std::unique_ptr<ExpertHost> host;
    collectiveStep(mpi, false, [&] {
      host = std::make_unique<ExpertHost>(cfg.models[layout.expert], cfg, maxChoices, mpi.localRank());
    });
    logInfo("expert ", layout.expert, " (", host->name(), ") in group ", layout.group, " on ", host->device(),
            ", vocabulary ", host->vocabSize(), ", context ", host->maxContext());

    // One vocabulary for all experts -> full-vocabulary mixture; otherwise over the answer letters.
    MpiCommunicator group = MpiCommunicator::split(layout.group, layout.rank);
    struct VocabInfo {
      int64_t size;
      uint64_t hash;
      int32_t letters[kMaxChoices];
    } mineInfo{};
    mineInfo.size = host->vocabSize();
    mineInfo.hash = host->vocabularyHash();
    for (int c = 0; c < kMaxChoices; ++c)
      mineInfo.letters[c] = c < static_cast<int>(host->letterTokens().size()) ? host->letterTokens()[c] : -1;
    std::vector<VocabInfo> infos(E);
    MOE_MPI_CHECK(MPI_Allgather(&mineInfo, sizeof(VocabInfo), MPI_BYTE, infos.data(), sizeof(VocabInfo), MPI_BYTE,
                                group.handle()));
    bool fullVocab = true;
    for (const auto& v : infos)
      fullVocab = fullVocab && v.size == infos[0].size && v.hash == infos[0].hash &&
                  std::equal(v.letters, v.letters + kMaxChoices, infos[0].letters);
    collectiveStep(mpi, true, [&] {
      MOE_CHECK(fullVocab || cfg.scoring != "vocab",
                "--scoring vocab needs experts that share one vocabulary; these differ, so the mixture is taken over "
                "the answer letters: use --scoring letters");
    });

    // Names and hashes of the experts reach rank 0 (from group 0) for the results header.
    std::vector<char> names(static_cast<size_t>(E) * 512);
    std::string mine = fixedString(host->name(), 256) + fixedString(host->hash(), 256);
    MOE_MPI_CHECK(MPI_Allgather(mine.data(), 512, MPI_CHAR, names.data(), 512, MPI_CHAR, group.handle()));
    std::vector<char> devices(static_cast<size_t>(mpi.size()) * 256);
    std::string myDevice = fixedString(host->device() + " on " + mpi.host(), 256);
    MOE_MPI_CHECK(MPI_Gather(myDevice.data(), 256, MPI_CHAR, devices.data(), 256, MPI_CHAR, 0, MPI_COMM_WORLD));

    // Subject names for every leader.
    std::vector<std::string> subjects, categories;
    {
      WireWriter w;
      if (mpi.rank() == 0)
        for (const auto& s : data.subjects) {
          subjects.push_back(s.info.subject);
          categories.push_back(s.info.category);
        }
      w.putStrings(subjects);
      w.putStrings(categories);
      uint64_t size = w.bytes().size();
      MOE_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
      w.bytes().resize(size);
      MOE_MPI_CHECK(MPI_Bcast(w.bytes().data(), static_cast<int>(size), MPI_BYTE, 0, MPI_COMM_WORLD));
      WireReader r(w.bytes().data(), size, "subjects");
      subjects = r.getStrings();
      categories = r.getStrings();
    }

    // The gate, resolved on rank 0 (a calibrated table is fitted on the labelled run's file) and
    // given to every rank as its canonical YAML, so every rank computes with the same values.
    GateConfig gate = cfg.gate;
    {
      std::string text;
      collectiveStep(mpi, true, [&] {
        std::vector<std::string> experts;
        for (int e = 0; e < E; ++e) experts.push_back(std::string(&names[e * 512]));
        gate = resolveGate(cfg.gate, experts, cfg.split, cfg.data);
        text = gateYaml(gate);
      });
      uint64_t size = text.size();
      MOE_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
      text.resize(size);
      MOE_MPI_CHECK(MPI_Bcast(text.data(), static_cast<int>(size), MPI_CHAR, 0, MPI_COMM_WORLD));
      if (mpi.rank() != 0) {
        gate = GateConfig{};
        applyGateYamlString(gate, text, "the gate from rank 0");
      }
    }
    if (gate.router.configured())
      collectiveStep(mpi, false, [&] { host->prepareRouter(gate.router, layout.expert); });
    if (gate.retrieval.configured())
      collectiveStep(mpi, false, [&] { host->prepareRetrieval(gate.retrieval, layout.expert); });

    // Rank 0: the results file (new, or resumed with the same configuration).
    std::unique_ptr<ResultsWriter> writer;
    std::unique_ptr<Scheduler> sched;
    collectiveStep(mpi, true, [&] {
      ResultsHeader h;
      h.models = cfg.models;
      for (int e = 0; e < E; ++e) {
        h.experts.push_back(std::string(&names[e * 512]));
        h.modelHashes.push_back(std::string(&names[e * 512 + 256]));
      }
      h.mode = cfg.mode;
      h.weights = cfg.weights;
      h.scoring = cfg.scoring;
      h.promptStyle = cfg.promptStyle;
      h.mixtureSpace = fullVocab ? "full-vocabulary" : "answer-letters";
      h.commandLine = commandLine;
      RunConfig recorded = cfg;
      recorded.gate = gate;
      h.configYaml = toYaml(recorded);
      h.gatePolicy = gate.policy;
      h.gateConfig = gateYaml(gate);
      h.gateTopK = gate.topK;
      h.gateTemperature = gate.temperature;
      h.version = MOE_VERSION;
      h.ranks = mpi.size();
      for (int r = 0; r < mpi.size(); ++r) h.devices.push_back(std::string(&devices[r * 256]));
      h.split = cfg.split;
      h.shots = cfg.shots;
      h.dataRoot = cfg.data;
      h.maxChoices = maxChoices;
      for (const auto& s : data.subjects) h.subjects.push_back(s.info);
      writer = std::make_unique<ResultsWriter>(cfg.resume ? ResultsWriter::resume(cfg.output, h)
                                                          : ResultsWriter::create(cfg.output, h, cfg.overwrite));
      sched = std::make_unique<Scheduler>(data, parsePromptStyle(cfg.promptStyle), cfg.shots, cfg.batchSize,
                                          writer->done());
      if (cfg.resume)
        logInfo("resuming ", cfg.output, ": ", sched->questionsSkipped(), " questions already written, ",
                sched->questionsToRun(), " to go");
      logInfo(sched->questionsToRun(), " questions in ", sched->batchesLeft(), " batches, ", E, " experts x ",
              layout.groups, " replica groups, mixture ", cfg.mode, " over the ",
              fullVocab ? "full vocabulary" : "answer letters (the experts' vocabularies differ)",
              gate.enabled() ? str(", gate ", gate.policy, gate.topK > 0 ? str(" top-", gate.topK) : std::string())
                             : std::string());
    });

    // Where this group's mixture runs, and for the device mixture its NCCL communicator (built once,
    // collectively over the group; destroyed before MPI is finalized, with this scope).
    const MixturePlacement placement = mixturePlacement(cfg, host->cudaDevice(), mpi.host(), group);
#if MOE_USE_CUDA && MOE_USE_NCCL
    std::unique_ptr<NcclCommunicator> nccl;
    // Every rank takes part in the world agreement, whatever its group decided.
    collectiveStep(mpi, false, [&] {
      if (placement.device) nccl = std::make_unique<NcclCommunicator>(group.handle(), host->cudaDevice());
    });
#endif
    if (layout.isGroupLeader())
      logInfo("group ", layout.group, ": mixture on ", placement.device ? "the GPUs (NCCL)" : "the host (MPI)", ": ",
              placement.why);

    GroupContext ctx{cfg, layout, group, *host, MixtureSpec{}, staticWeights(cfg), subjects, categories, gate, RankCost{}};
#if MOE_USE_CUDA && MOE_USE_NCCL
    ctx.deviceGroup = nccl.get();
#endif
    ctx.cost.rank = layout.rank;
    ctx.cost.group = layout.group;
    ctx.cost.expert = layout.expert;
    ctx.cost.host = mpi.host();
    ctx.cost.device = host->device();
    ctx.cost.model = cfg.models[layout.expert];
    ctx.cost.modelBytes = host->modelBytes();
    ctx.spec.mode = parseMixtureMode(cfg.mode);
    ctx.spec.fullVocabulary = fullVocab;
    ctx.spec.experts = E;
    ctx.spec.maxChoices = maxChoices;

    int stopStatus = 0;
    try {
      bool completed = true;
      std::vector<BatchTiming> timings;
      std::unique_ptr<Progress> progress;
      const auto loopStarted = Clock::now();
      if (mpi.rank() == 0) {
        progress = std::make_unique<Progress>(sched->questionsToRun());
        completed = coordinatorLoop(ctx, *sched, *writer, *progress, timings);
      } else if (layout.isGroupLeader()) {
        leaderLoop(ctx);
      } else {
        memberLoop(ctx);
      }
      ctx.cost.wallSeconds = secondsSince(loopStarted);
      std::vector<RankCost> costs = gatherCosts(mpi, ctx.cost);
      if (mpi.rank() == 0) {
        for (auto& c : costs) c.segment = writer->segment();
        writer->appendCosts(costs, timings);
        if (completed) {
          writer->finish();
          logInfo("wrote ", cfg.output, " in ", static_cast<int>(progress->seconds()), " s");
          std::fputs(formatReport(readResults(cfg.output), "text").c_str(), stdout);
          std::fflush(stdout);
        } else {
          logWarn("stopped by signal with ", writer->rows(), " questions in ", cfg.output,
                  " (status running); run the same command with --resume to continue");
          writer.reset();  // closes the file
          stopStatus = kExitStopped;
        }
      }
    } catch (const Error& e) {
      mpi.abortJob(e.what());
    }
    MOE_MPI_CHECK(MPI_Bcast(&stopStatus, 1, MPI_INT, 0, MPI_COMM_WORLD));
    return stopStatus;
  } catch (const SetupFailed&) {
    return 1;
  } catch (const Error& e) {
    mpi.abortJob(e.what());
  }
}

}  // namespace moe
