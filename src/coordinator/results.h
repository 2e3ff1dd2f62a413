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

// A whole file as read back: header, and every row in file order.
struct ResultsFile {
  std::string path;
  ResultsHeader header;
  std::vector<QuestionResult> rows;
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
