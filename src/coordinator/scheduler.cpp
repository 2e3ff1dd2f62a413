#include "coordinator/scheduler.h"

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
    Batch cur = proto;
    auto flush = [&] {
      if (cur.questions.empty()) return;
      cur.id = nextBatchId++;
      batches_.push_back(std::move(cur));
      cur = proto;
    };
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
      cur.questions.push_back(std::move(bq));
      ++toRun_;
      if (static_cast<int>(cur.questions.size()) == batchSize) flush();
    }
    flush();
  }
}

Batch Scheduler::next() {
  if (batches_.empty()) return Batch{};
  Batch b = std::move(batches_.front());
  batches_.pop_front();
  return b;
}

}  // namespace moe
