// The results file: one HDF5 file per run, one row per question, appended as batches finish.
//
// The coordinator (rank 0) is the only writer. Rows are appended to chunked datasets that are
// extendible along the question axis, and the file is flushed after every append, so a job that
// is killed loses at most the batches still in flight; `--resume` reopens the file, checks that
// it was written by the same configuration (every attribute that can change an answer), and
// skips the (subject, index) pairs already written. finish() adds the summary tables and marks
// the file complete. The layout is documented in docs/results-format.md, which is the contract
// for readers in other languages (h5py, h5dump); keep the two in step.
//
// Torch-free: the report command and tests use this without a model in sight.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/categories.h"

namespace moe {

// Bump when a reader of the old layout would misread a new file.
constexpr int kResultsFormatVersion = 1;

// The run's configuration and provenance: root attributes plus the string tables.
struct ResultsHeader {
  std::vector<std::string> models;       // model paths as given
  std::vector<std::string> modelHashes;  // one per model: hash of its config.json / GGUF header
  std::string mode;                      // mean | weighted | geometric
  std::vector<double> weights;           // static expert weights as configured; empty = uniform
  std::string scoring;                   // letters | vocab
  std::string promptStyle;               // original | harness
  std::string mixtureSpace;              // "full-vocabulary" | "answer-letters"
  std::string commandLine;
  std::string configYaml;                // the resolved configuration (toYaml)
  std::string version;                   // moe-dist version; create() fills it when empty
  int ranks = 1;
  std::vector<std::string> devices;      // one per rank, e.g. "cuda:0 NVIDIA A100 on node17"
  std::string startTime;                 // ISO 8601 UTC; create() fills it when empty
  std::string endTime;                   // set by finish(); empty while running
  std::string split;                     // test | val | dev
  int shots = 0;
  std::string dataRoot;
  std::string status;                    // "running" | "complete" (set by the writer)
  std::vector<std::string> resumeTimes;  // ISO 8601 UTC of each resume (set by the writer)
  std::vector<std::string> experts;      // display names, one per model
  int maxChoices = 4;                    // C: width of the per-choice datasets
  std::vector<SubjectInfo> subjects;     // the subject table rows refer to
  // Gated mixtures (common/gate_config.h). Files without these attributes read as "no gate".
  std::string gatePolicy;                // "" = no gate (static weights); stored as "none"
  std::string gateConfig;                // the resolved `gate:` section as YAML (gateYaml); "" = none
  int gateTopK = 0;                      // 0 = every expert
  double gateTemperature = 1.0;
  std::string combinedFrom;              // `moe-dist combine`: the results file the rows came from
};

// One question's outcome. Vectors are indexed [expert] or [expert * maxChoices + choice]
// (row-major [E, C]); per-choice values at choice >= numChoices are ignored by the writer and
// stored as NaN.
struct QuestionResult {
  std::string subject;  // must be in the header's subject table
  int64_t index = 0;    // 0-based row of the question in its subject's CSV file
  int32_t gold = 0;     // correct choice, 0-based
  int32_t numChoices = 4;
  int32_t shots = 0;    // few-shot examples actually in the prompt (may be fewer than configured)
  std::vector<int32_t> promptTokens;    // [E] prompt length in each expert's tokens
  int32_t prediction = -1;              // mixture's choice per the run's scoring; -1 none
  bool correct = false;                 // prediction == gold
  std::vector<float> weights;           // [E] expert weights used for this question
  std::vector<float> expertEntropy;     // [E] nats, full next-token distribution
  float mixtureEntropy = 0;             // nats, mixture distribution (of the run's mixture space)
  std::vector<float> expertLetterProbs;   // [E*C] probability of each answer letter's token
  std::vector<float> mixtureLetterProbs;  // [C]
  std::vector<float> expertChoiceProbs;   // [E*C] letter probs renormalised over the choices
  std::vector<float> mixtureChoiceProbs;  // [C]
  std::vector<int32_t> expertPrediction;  // [E] per the run's scoring; -1 none
  std::vector<uint8_t> expertCorrect;     // [E] expertPrediction == gold
  std::vector<int32_t> expertVocabChoice;  // [E] choice whose letter is the vocabulary argmax; -1
  int32_t mixtureVocabChoice = -1;
  std::vector<float> expertLetterMass;  // [E] sum of letter probs over the choices
  float mixtureLetterMass = 0;
  std::vector<float> gateScores;  // [E] each expert's router score; empty or NaN = not computed
};

// The cost of one rank over one run segment (segment 0: the run that created the file; k: its
// k-th --resume). Counts and seconds are this rank's own; the file's group `ranks` holds one row
// per (segment, rank). Token counts are of the evaluated prompts only (not the gates' extra
// passes); tokensPerSecond = computedTokens / forwardSeconds (NaN without a forward).
struct RankCost {
  int32_t segment = 0;
  int32_t rank = 0, group = 0, expert = 0;
  std::string host, device, model;  // model: the path as given to --models
  int64_t modelBytes = 0;           // parameters on the device, run dtype (Expert::modelBytes)
  int64_t batches = 0, questions = 0;
  int64_t promptTokens = 0;    // sum of the prompt lengths this rank tokenized
  int64_t computedTokens = 0;  // run through the model (promptTokens - cachedTokens)
  int64_t cachedTokens = 0;    // taken from the prefix cache
  int64_t paddedTokens = 0;    // batch rows x longest row after the cached prefix, summed over batches
  double forwardSeconds = 0;   // inside Expert::forward
  double tokenizeSeconds = 0;  // building and tokenizing the prompts
  double gateSeconds = 0;      // the gate's own work: router/retrieval scores (their extra forward passes)
  double collectiveSeconds = 0;  // group broadcast of batches, gate gathers, mixture all-reduce, row gather
  double waitSeconds = 0;      // waiting on the coordinator (group leaders; rank 0: for the last results)
  double writeSeconds = 0;     // HDF5 appends (rank 0)
  double wallSeconds = 0;      // the whole work loop, first batch to last
  double tokensPerSecond() const;
};

// RankCost's counts and seconds, each with its dataset in the file's group `ranks`: one list for
// everything that handles them field by field (file columns, the wire format in this order,
// the report's sum over segments).
inline constexpr std::pair<const char*, int64_t RankCost::*> kRankCostCounts[] = {
    {"batches", &RankCost::batches},
    {"questions", &RankCost::questions},
    {"prompt_tokens", &RankCost::promptTokens},
    {"computed_tokens", &RankCost::computedTokens},
    {"cached_tokens", &RankCost::cachedTokens},
    {"padded_tokens", &RankCost::paddedTokens},
};
inline constexpr std::pair<const char*, double RankCost::*> kRankCostSeconds[] = {
    {"forward_seconds", &RankCost::forwardSeconds},
    {"tokenize_seconds", &RankCost::tokenizeSeconds},
    {"gate_seconds", &RankCost::gateSeconds},
    {"collective_seconds", &RankCost::collectiveSeconds},
    {"wait_seconds", &RankCost::waitSeconds},
    {"write_seconds", &RankCost::writeSeconds},
    {"wall_seconds", &RankCost::wallSeconds},
};

// One batch's timing, as its group leader saw it (one row per batch in the file's group `timing`).
struct BatchTiming {
  int32_t segment = 0, group = 0, subject = 0, questions = 0;
  int64_t firstRow = 0;  // row of the batch's first question in the per-question datasets
  std::vector<int64_t> promptTokens, computedTokens, cachedTokens;  // [E], per expert rank
  std::vector<double> tokenizeSeconds, forwardSeconds;              // [E], per expert rank
  double waitSeconds = 0;    // the leader waiting for this batch (rank 0: taking it from the scheduler)
  double reduceSeconds = 0;  // leader: gate gathers, mixture (kernels + all-reduce), row gather, including
                             // waiting for the slowest member's forward
  double batchSeconds = 0;   // leader: tokenize start to rows ready
  double writeSeconds = 0;   // rank 0: appending the rows to the file
};

// A whole file as read back: header, and every row in file order.
struct ResultsFile {
  std::string path;
  ResultsHeader header;
  std::vector<QuestionResult> rows;
  std::vector<RankCost> ranks;      // group `ranks`; empty in files written before cost accounting
  std::vector<BatchTiming> timing;  // group `timing`; likewise
  bool complete() const { return header.status == "complete"; }
};

// The attributes that change answers, as (name in the file, value as text); resume compares
// these, and the report prints them.
std::vector<std::pair<std::string, std::string>> answerAffectingAttributes(const ResultsHeader& h);

// "2024-09-17T12:34:56Z"
std::string isoTimeUtcNow();

class ResultsWriter {
 public:
  // Creates `path`, writes the header and empty datasets (status "running"). An existing file is
  // an error unless `overwrite`.
  static ResultsWriter create(const std::string& path, const ResultsHeader& header, bool overwrite);
  // Reopens a file written by create() (complete or left by a killed job) for more rows. Every
  // answer-affecting attribute must equal `expected`'s: a mismatch names the attribute and both
  // values. A row set shortened by a kill in the middle of an append is trimmed to the rows
  // present in every dataset.
  static ResultsWriter resume(const std::string& path, const ResultsHeader& expected);

  ResultsWriter(ResultsWriter&&) noexcept;
  ResultsWriter& operator=(ResultsWriter&&) noexcept;
  ~ResultsWriter();

  // (subject, index) of every row in the file.
  const std::set<std::pair<std::string, int64_t>>& done() const { return done_; }
  int64_t rows() const { return rows_; }
  const ResultsHeader& header() const { return header_; }
  const std::string& path() const { return path_; }

  // Validates and appends rows, then flushes the file. A row already in the file is an error.
  void append(const std::vector<QuestionResult>& rows);
  // Run segment of this writer: 0 for create(), the number of resumes for resume().
  int32_t segment() const { return static_cast<int32_t>(header_.resumeTimes.size()); }
  // Adds this segment's per-rank costs and per-batch timings to the groups `ranks` and `timing`
  // after those of earlier segments (the groups are rewritten), and flushes. Call once per
  // segment, before finish() (or before closing a stopped run's file).
  void appendCosts(const std::vector<RankCost>& ranks, const std::vector<BatchTiming>& timing);
  // Writes the summary group (recomputed from every row), end_time and status "complete", and
  // closes the file. No append after finish.
  void finish();

 private:
  struct Impl;
  explicit ResultsWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string path_;
  ResultsHeader header_;
  std::set<std::pair<std::string, int64_t>> done_;
  int64_t rows_ = 0;
};

// Reads a results file (complete or partial). Throws moe::Error naming the file and the dataset
// or attribute when it is not HDF5, lacks a dataset, has a wrong shape, or repeats a
// (subject, index) pair.
ResultsFile readResults(const std::string& path);

}  // namespace moe
