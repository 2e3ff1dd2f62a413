// Scheduler: cuts the evaluated questions into batches (one subject per batch, at most
// batchSize questions, a subject's questions ordered by length so a batch's prompts need little
// padding; equal lengths in data set order) and hands them out one at a time to whichever group
// asks next, so faster groups simply take more batches. Questions already in the results file
// (--resume) are left out. Deterministic: the same data and options give the same batches.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/batch.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"

namespace moe {

struct QuestionRef {
  int32_t subject;          // index into dataset.subjects
  const Question* question;
};

class Scheduler {
 public:
  using DoneSet = std::set<std::pair<std::string, int64_t>>;  // (subject, index) already written
  Scheduler(const MmluDataset& data, PromptStyle style, int shots, int batchSize, const DoneSet& done = {});

  // The next batch, or a stop batch (isStop()) when all are handed out.
  Batch next();
  size_t batchesLeft() const { return batches_.size(); }
  size_t questionsToRun() const { return toRun_; }
  size_t questionsSkipped() const { return skipped_; }
  // Question by Batch/BatchQuestion id.
  const QuestionRef& question(int64_t id) const { return questions_.at(static_cast<size_t>(id)); }

 private:
  std::vector<QuestionRef> questions_;
  std::deque<Batch> batches_;
  size_t toRun_ = 0, skipped_ = 0;
};

}  // namespace moe
