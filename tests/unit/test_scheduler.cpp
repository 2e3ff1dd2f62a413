// Scheduler: batches cover every question once, one subject per batch, and the prompts the
// workers assemble from a batch's pieces equal the prompt builder's, on every split.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "coordinator/prompt.h"
#include "coordinator/scheduler.h"

namespace fs = std::filesystem;

namespace {
fs::path makeData() {
  fs::path root = fs::temp_directory_path() / ("moe_sched_" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (const char* split : {"dev", "test"}) fs::create_directories(root / split);
  auto write = [&](const std::string& subject, const std::string& split, int rows, int choices) {
    std::ofstream f(root / split / (subject + "_" + split + ".csv"));
    for (int r = 0; r < rows; ++r) {
      f << "\"" << subject << " " << split << " q" << r << ", with a comma\"";
      for (int c = 0; c < choices; ++c) f << ",choice " << c;
      f << "," << static_cast<char>('A' + r % choices) << "\n";
    }
  };
  write("astronomy", "dev", 5, 4);
  write("astronomy", "test", 11, 4);
  write("philosophy", "dev", 5, 4);
  write("philosophy", "test", 3, 4);
  write("zz_trivia", "dev", 5, 3);
  write("zz_trivia", "test", 7, 3);
  return root;
}
}  // namespace

TEST(Scheduler, CoversEveryQuestionOnceWithBuilderPrompts) {
  fs::path root = makeData();
  for (const std::string split : {"test", "dev"}) {
    for (int bs : {1, 4, 7}) {
      auto data = moe::loadMmlu(root.string(), split, {}, 0, 5);
      moe::Scheduler sched(data, moe::PromptStyle::Original, 5, bs);
      std::map<int64_t, int> seen;
      for (moe::Batch b = sched.next(); !b.isStop(); b = sched.next()) {
        ASSERT_LE(static_cast<int>(b.questions.size()), bs);
        ASSERT_GE(b.questions.size(), 1u);
        const auto& subj = data.subjects[b.subject];
        EXPECT_EQ(b.choices, static_cast<int>(subj.eval[0].choices.size()));
        for (size_t i = 0; i < b.questions.size(); ++i) {
          const auto& ref = sched.question(b.questions[i].id);
          EXPECT_EQ(ref.subject, b.subject);
          EXPECT_EQ(b.questions[i].gold, ref.question->gold);
          ++seen[b.questions[i].id];
          // The full prompt and every shortened one equal the builder's.
          auto expected = moe::buildPrompt(subj, *ref.question, 5, moe::PromptStyle::Original);
          ASSERT_EQ(b.availableShots(i), static_cast<size_t>(expected.shots));
          EXPECT_EQ(b.prompt(i, expected.shots), expected.text()) << split << " " << subj.info.subject;
          for (int k = 0; k < expected.shots; ++k)
            EXPECT_EQ(b.prompt(i, k), moe::buildPrompt(subj, *ref.question, k, moe::PromptStyle::Original).text());
        }
      }
      EXPECT_EQ(seen.size(), data.totalQuestions());
      for (auto& [id, n] : seen) EXPECT_EQ(n, 1) << "question " << id;
    }
  }
  fs::remove_all(root);
}

TEST(Scheduler, SkipsQuestionsAlreadyDone) {
  fs::path root = makeData();
  auto data = moe::loadMmlu(root.string(), "test", {}, 0, 5);
  moe::Scheduler::DoneSet done = {{"astronomy", 0}, {"astronomy", 10}, {"zz_trivia", 3}};
  moe::Scheduler sched(data, moe::PromptStyle::Harness, 5, 4, done);
  EXPECT_EQ(sched.questionsSkipped(), 3u);
  EXPECT_EQ(sched.questionsToRun(), data.totalQuestions() - 3);
  size_t n = 0;
  for (moe::Batch b = sched.next(); !b.isStop(); b = sched.next())
    for (const auto& q : b.questions) {
      const auto& ref = sched.question(q.id);
      EXPECT_FALSE(done.count({ref.question->subject, ref.question->index}));
      ++n;
    }
  EXPECT_EQ(n, sched.questionsToRun());
  fs::remove_all(root);
}

// A subject's questions are batched by length (shortest first), so each batch's prompts differ
// little in length; equal lengths keep data set order.
TEST(Scheduler, BatchesQuestionsOfSimilarLength) {
  fs::path root = makeData();
  auto data = moe::loadMmlu(root.string(), "test", {}, 0, 5);
  moe::Scheduler sched(data, moe::PromptStyle::Original, 5, 2);
  int32_t subject = -1;
  size_t last = 0;
  int64_t lastId = -1;
  for (moe::Batch b = sched.next(); !b.isStop(); b = sched.next()) {
    if (b.subject != subject) {
      subject = b.subject;
      last = 0;
      lastId = -1;
    }
    for (const auto& q : b.questions) {
      EXPECT_GE(q.text.size(), last) << "question " << q.id;
      if (q.text.size() == last) EXPECT_GT(q.id, lastId);
      last = q.text.size();
      lastId = q.id;
    }
  }
  fs::remove_all(root);
}
