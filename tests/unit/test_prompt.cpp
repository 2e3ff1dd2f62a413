// Prompts byte for byte (evaluate.py and lm-evaluation-harness styles), shot selection and
// dropping, and the `moe-dist prompts` output.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"
#include "coordinator/mmlu.h"
#include "coordinator/prompt.h"
#include "coordinator/prompts_command.h"

using moe::Prompt;
using moe::PromptStyle;
using moe::Question;
using moe::SubjectData;

namespace {

const std::string kSample = MOE_SOURCE_DIR "/data/sample";

Question makeQuestion(const std::string& split, int64_t index, const std::string& text,
                      std::vector<std::string> choices, int gold) {
  Question q;
  q.subject = "abstract_algebra";
  q.split = split;
  q.index = index;
  q.line = static_cast<size_t>(index) + 1;
  q.question = text;
  q.choices = std::move(choices);
  q.gold = gold;
  return q;
}

// Questions with whitespace around them, so the two styles differ in more than the header.
SubjectData algebra() {
  SubjectData s;
  s.info = moe::classifySubject("abstract_algebra");
  s.dev.push_back(makeQuestion("dev", 0, "What is 2 + 2?", {"3", "4", "5", "6"}, 1));
  s.dev.push_back(makeQuestion("dev", 1, "  Which number is prime? ", {"4", "6", "7", "9"}, 2));
  s.dev.push_back(makeQuestion("dev", 2, "Find the identity of Z_3 under addition.\n", {"0", "1", "2", "3"}, 0));
  s.dev.push_back(
      makeQuestion("dev", 3, "\tWhich set is a group under multiplication?", {" {1, -1}", "{0, 1}", "{0}", "{2}"}, 0));
  s.dev.push_back(makeQuestion("dev", 4, "What is the order of S_3?", {"3", "6", "9", "2"}, 1));
  s.eval.push_back(
      makeQuestion("test", 0, "\n Statement 1 | Every group is abelian. Statement 2 | Z is a group. \xC2\xA0",
                   {"True, True", "False, False", "True, False", "False, True"}, 3));
  return s;
}

// Counts "Answer:" occurrences: one per example plus the asked question.
size_t countAnswers(const std::string& text) {
  size_t n = 0;
  for (size_t p = text.find("Answer:"); p != std::string::npos; p = text.find("Answer:", p + 1)) ++n;
  return n;
}

std::string readAll(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, got);
  return s;
}

}  // namespace

TEST(Prompt, StyleNames) {
  EXPECT_STREQ(moe::promptStyleName(PromptStyle::Original), "original");
  EXPECT_STREQ(moe::promptStyleName(PromptStyle::Harness), "harness");
  EXPECT_EQ(moe::parsePromptStyle("harness"), PromptStyle::Harness);
  EXPECT_EQ(moe::parsePromptStyle("original"), PromptStyle::Original);
  EXPECT_THROW(moe::parsePromptStyle("Original"), moe::Error);
}

TEST(Prompt, Headers) {
  EXPECT_EQ(moe::promptHeader("abstract_algebra", PromptStyle::Original),
            "The following are multiple choice questions (with answers) about  abstract algebra.\n\n");
  EXPECT_EQ(moe::promptHeader("abstract_algebra", PromptStyle::Harness),
            "The following are multiple choice questions (with answers) about abstract algebra.\n\n");
  EXPECT_EQ(moe::promptHeader("high_school_us_history", PromptStyle::Original),
            "The following are multiple choice questions (with answers) about  high school us history.\n\n");
  EXPECT_EQ(moe::promptHeader("virology", PromptStyle::Original),
            "The following are multiple choice questions (with answers) about  virology.\n\n");
  EXPECT_EQ(moe::promptHeader("virology", PromptStyle::Harness),
            "The following are multiple choice questions (with answers) about virology.\n\n");
}

TEST(Prompt, ZeroShotOriginal) {
  const SubjectData s = algebra();
  const Prompt p = moe::buildPrompt(s, s.eval[0], 0, PromptStyle::Original);
  EXPECT_EQ(p.shots, 0);
  EXPECT_EQ(p.prefix, "The following are multiple choice questions (with answers) about  abstract algebra.\n\n");
  EXPECT_EQ(p.text(),
            "The following are multiple choice questions (with answers) about  abstract algebra.\n\n"
            "\n Statement 1 | Every group is abelian. Statement 2 | Z is a group. \xC2\xA0\n"
            "A. True, True\n"
            "B. False, False\n"
            "C. True, False\n"
            "D. False, True\n"
            "Answer:");
}

TEST(Prompt, ZeroShotHarness) {
  const SubjectData s = algebra();
  const Prompt p = moe::buildPrompt(s, s.eval[0], 0, PromptStyle::Harness);
  EXPECT_EQ(p.text(),
            "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
            "Statement 1 | Every group is abelian. Statement 2 | Z is a group.\n"
            "A. True, True\n"
            "B. False, False\n"
            "C. True, False\n"
            "D. False, True\n"
            "Answer:");
}

TEST(Prompt, FiveShotOriginal) {
  const SubjectData s = algebra();
  const Prompt p = moe::buildPrompt(s, s.eval[0], 5, PromptStyle::Original);
  EXPECT_EQ(p.shots, 5);
  const std::string prefix =
      "The following are multiple choice questions (with answers) about  abstract algebra.\n\n"
      "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n"
      "  Which number is prime? \nA. 4\nB. 6\nC. 7\nD. 9\nAnswer: C\n\n"
      "Find the identity of Z_3 under addition.\n\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: A\n\n"
      "\tWhich set is a group under multiplication?\nA.  {1, -1}\nB. {0, 1}\nC. {0}\nD. {2}\nAnswer: A\n\n"
      "What is the order of S_3?\nA. 3\nB. 6\nC. 9\nD. 2\nAnswer: B\n\n";
  const std::string question =
      "\n Statement 1 | Every group is abelian. Statement 2 | Z is a group. \xC2\xA0\n"
      "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:";
  EXPECT_EQ(p.prefix, prefix);
  EXPECT_EQ(p.question, question);
  EXPECT_EQ(p.text(), prefix + question);
}

TEST(Prompt, FiveShotHarness) {
  const SubjectData s = algebra();
  const Prompt p = moe::buildPrompt(s, s.eval[0], 5, PromptStyle::Harness);
  EXPECT_EQ(p.shots, 5);
  EXPECT_EQ(p.text(),
            "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
            "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n"
            "Which number is prime?\nA. 4\nB. 6\nC. 7\nD. 9\nAnswer: C\n\n"
            "Find the identity of Z_3 under addition.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: A\n\n"
            "Which set is a group under multiplication?\nA.  {1, -1}\nB. {0, 1}\nC. {0}\nD. {2}\nAnswer: A\n\n"
            "What is the order of S_3?\nA. 3\nB. 6\nC. 9\nD. 2\nAnswer: B\n\n"
            "Statement 1 | Every group is abelian. Statement 2 | Z is a group.\n"
            "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:");
}

TEST(Prompt, SampleDataThreeChoicesOneShot) {
  const moe::MmluDataset ds = moe::loadMmlu(kSample, "test", {"team_trivia"}, 1, 1);
  const SubjectData& s = ds.subjects.at(0);
  const Prompt p = moe::buildPrompt(s, s.eval.at(0), 1, PromptStyle::Original);
  EXPECT_EQ(p.text(),
            "The following are multiple choice questions (with answers) about  team trivia.\n\n"
            "How many players of one team are on the field at a time in a standard soccer match?\n"
            "A. 9\nB. 11\nC. 13\nAnswer: B\n\n"
            "How many players per team are on the ice at a time in ice hockey, including the goaltender?\n"
            "A. 5\nB. 6\nC. 7\nAnswer:");
}

TEST(Prompt, ShotsAreFirstDevRowsAndNeverTheQuestionItself) {
  const SubjectData s = algebra();
  const auto shots = moe::selectShots(s, s.eval[0], 2);
  ASSERT_EQ(shots.size(), 2u);
  EXPECT_EQ(shots[0]->index, 0);
  EXPECT_EQ(shots[1]->index, 1);
  // Evaluating dev row 1: the examples are rows 0 and 2.
  const auto fromDev = moe::selectShots(s, s.dev[1], 2);
  ASSERT_EQ(fromDev.size(), 2u);
  EXPECT_EQ(fromDev[0]->index, 0);
  EXPECT_EQ(fromDev[1]->index, 2);
  EXPECT_EQ(moe::buildPrompt(s, s.dev[1], 5, PromptStyle::Original).shots, 4);
  // More shots than rows: all rows.
  EXPECT_EQ(moe::buildPrompt(s, s.eval[0], 10, PromptStyle::Original).shots, 5);
  EXPECT_THROW(moe::buildPrompt(s, s.eval[0], -1, PromptStyle::Original), moe::Error);
}

TEST(Prompt, FitDropsShotsFromTheEnd) {
  const SubjectData s = algebra();
  std::vector<size_t> seen;
  auto counter = [&](const std::string& text) {
    seen.push_back(countAnswers(text));
    return countAnswers(text);
  };
  const Prompt p = moe::fitPrompt(s, s.eval[0], 5, PromptStyle::Original, counter, 3);
  EXPECT_TRUE(p.fits);
  EXPECT_EQ(p.shots, 2);
  EXPECT_EQ(seen, (std::vector<size_t>{6, 5, 4, 3}));  // one example dropped at a time
  EXPECT_EQ(p.text(), moe::buildPrompt(s, s.eval[0], 2, PromptStyle::Original).text());
  EXPECT_NE(p.prefix.find("What is 2 + 2?"), std::string::npos);
  EXPECT_EQ(p.prefix.find("What is the order of S_3?"), std::string::npos);

  const Prompt all = moe::fitPrompt(s, s.eval[0], 5, PromptStyle::Harness, counter, 100);
  EXPECT_TRUE(all.fits);
  EXPECT_EQ(all.shots, 5);
  EXPECT_EQ(all.text(), moe::buildPrompt(s, s.eval[0], 5, PromptStyle::Harness).text());

  const Prompt none = moe::fitPrompt(s, s.eval[0], 5, PromptStyle::Original, counter, 0);
  EXPECT_FALSE(none.fits);
  EXPECT_EQ(none.shots, 0);
  EXPECT_EQ(none.text(), moe::buildPrompt(s, s.eval[0], 0, PromptStyle::Original).text());

  const Prompt zero = moe::fitPrompt(s, s.eval[0], 0, PromptStyle::Original, counter, 1);
  EXPECT_TRUE(zero.fits);
  EXPECT_EQ(zero.shots, 0);
}

TEST(Prompt, PythonStrip) {
  EXPECT_EQ(moe::pythonStrip("  a b \t\n"), "a b");
  EXPECT_EQ(moe::pythonStrip("\x1c\x1f\x0b\x0cx\r"), "x");
  EXPECT_EQ(moe::pythonStrip("\xC2\xA0\xE3\x80\x80x\xE2\x80\xA8\xC2\x85"), "x");  // NBSP, U+3000, U+2028, NEL
  EXPECT_EQ(moe::pythonStrip("\xE2\x80\x8Bx\xE2\x80\x8B"), "\xE2\x80\x8Bx\xE2\x80\x8B");  // ZWSP is not space
  EXPECT_EQ(moe::pythonStrip("\xEF\xBB\xBFx"), "\xEF\xBB\xBFx");                        // nor is a BOM
  EXPECT_EQ(moe::pythonStrip(" \xFF "), "\xFF");
  EXPECT_EQ(moe::pythonStrip(" \n "), "");
  EXPECT_EQ(moe::pythonStrip(""), "");
}

TEST(PromptsCommand, PlainOutput) {
  moe::RunConfig cfg;
  cfg.data = kSample;
  cfg.subjects = {"team_trivia"};
  cfg.limit = 1;
  cfg.shots = 0;
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(moe::runPromptsCommand(cfg, f), 0);
  EXPECT_EQ(readAll(f),
            "### subject=team_trivia split=test index=0 gold=B shots=0 style=original\n"
            "The following are multiple choice questions (with answers) about  team trivia.\n\n"
            "How many players per team are on the ice at a time in ice hockey, including the goaltender?\n"
            "A. 5\nB. 6\nC. 7\nAnswer:\n");
  std::fclose(f);
}

TEST(PromptsCommand, JsonOutput) {
  moe::RunConfig cfg;
  cfg.data = kSample;
  cfg.split = "val";
  cfg.subjects = {"philosophy", "astronomy"};
  cfg.shots = 3;
  cfg.promptStyle = "harness";
  cfg.json = true;
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(moe::runPromptsCommand(cfg, f), 0);
  const nlohmann::json j = nlohmann::json::parse(readAll(f));
  std::fclose(f);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 6u);
  const moe::MmluDataset ds = moe::loadMmlu(kSample, "val", {"astronomy", "philosophy"}, 0, 3);
  size_t i = 0;
  for (const auto& s : ds.subjects)
    for (const auto& q : s.eval) {
      const auto& o = j.at(i++);
      EXPECT_EQ(o.at("subject"), q.subject);
      EXPECT_EQ(o.at("split"), "val");
      EXPECT_EQ(o.at("index"), q.index);
      EXPECT_EQ(o.at("gold"), std::string(1, moe::choiceLetter(q.gold)));
      EXPECT_EQ(o.at("shots"), 3);
      EXPECT_EQ(o.at("prompt"), moe::buildPrompt(s, q, 3, PromptStyle::Harness).text());
    }
  EXPECT_EQ(j.at(0).at("gold"), "B");  // astronomy val row 0: event horizon
  EXPECT_EQ(j.at(3).at("subject"), "philosophy");
}
