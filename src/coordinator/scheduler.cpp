#include "coordinator/scheduler.h"

#include <algorithm>

#include "common/error.h"

namespace moe {

Scheduler::Scheduler(const MmluDataset& data, PromptStyle style, int shots, int batchSize, const DoneSet& done) {
  MOE_CHECK(batchSize >= 1, "batch size must be at least 1, got ", batchSize);
  int64_t nextBatchId = 0;
  for (size_t s = 0; s < data.subjects.size(); ++s) {
    const SubjectData& subj = data.subjects[s];
    if (subj.eval.empty()) continue;
    // The shots pool: `shots` dev rows, one more on the dev split where a question skips itself.
    const size_t pool = std::min(subj.dev.size(), static_cast<size_t>(shots) + (data.split == "dev" ? 1 : 0));
    Batch proto;
    proto.subject = static_cast<int32_t>(s);
    proto.choices = static_cast<int32_t>(subj.eval.front().choices.size());
    proto.header = promptHeader(subj.info.subject, style);
    for (size_t i = 0; i < pool; ++i) proto.shots.push_back(formatQuestion(subj.dev[i], style, true));
    std::vector<BatchQuestion> pending;
    for (const Question& q : subj.eval) {
      const int64_t id = static_cast<int64_t>(questions_.size());
      questions_.push_back(QuestionRef{static_cast<int32_t>(s), &q});
      if (done.count({subj.info.subject, q.index})) {
        ++skipped_;
        continue;
      }
      MOE_CHECK(static_cast<int32_t>(q.choices.size()) == proto.choices, subj.evalFile, ":", q.line, ": ",
                q.choices.size(), " choices where the subject's first question has ", proto.choices);
      BatchQuestion bq;
      bq.id = id;
      bq.gold = q.gold;
      bq.text = formatQuestion(q, style, false);
      if (data.split == "dev")
        for (size_t i = 0; i < pool; ++i)
          if (subj.dev[i].index == q.index) bq.skipShot = static_cast<int32_t>(i);
      // Without a skip the pool's extra dev row (dev split) must not be used: cap at `shots`.
      if (bq.skipShot < 0 && proto.shots.size() > static_cast<size_t>(shots)) bq.skipShot = static_cast<int32_t>(shots);
      pending.push_back(std::move(bq));
      ++toRun_;
    }
    // Every prompt of a subject shares the header and shots (the engine's prefix cache computes
    // them once); what differs is the question, so batches of questions of similar length waste
    // little on padding. Stable: equal lengths keep data set order.
    std::stable_sort(pending.begin(), pending.end(), [](const BatchQuestion& a, const BatchQuestion& b) {
      return a.text.size() < b.text.size();
    });
    for (size_t i = 0; i < pending.size(); i += static_cast<size_t>(batchSize)) {
      Batch cur = proto;
      cur.id = nextBatchId++;
      const size_t end = std::min(pending.size(), i + static_cast<size_t>(batchSize));
      for (size_t j = i; j < end; ++j) cur.questions.push_back(std::move(pending[j]));
      batches_.push_back(std::move(cur));
    }
  }
}

Batch Scheduler::next() {
  if (batches_.empty()) return Batch{};
  Batch b = std::move(batches_.front());
  batches_.pop_front();
  return b;
}

}  // namespace moe
