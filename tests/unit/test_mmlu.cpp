// MMLU loader: the sample data set, layouts, limits, and every malformed input naming file and line.
// MmluReal.* (label slow, run as test_mmlu_real) loads the real MMLU when it is present.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "coordinator/mmlu.h"
#include "test_util.h"

using moe::test::errorOf;

namespace fs = std::filesystem;

namespace {

const std::string kSample = MOE_SOURCE_DIR "/data/sample";


// A throw-away data set folder, removed at the end of the test.
class TempRoot {
 public:
  TempRoot() {
    char name[] = "/tmp/moe_mmlu_XXXXXX";
    const char* made = mkdtemp(name);
    EXPECT_NE(made, nullptr);
    path_ = made ? made : "/nonexistent";
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  // Writes `text` to root/rel (folders created); returns the full path.
  std::string write(const std::string& rel, const std::string& text) const {
    const fs::path p = fs::path(path_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const char* const kDev =
    "d0,a,b,c,d,A\n"
    "d1,a,b,c,d,B\n";
const char* const kTest =
    "t0,a,b,c,d,C\n"
    "t1,a,b,c,d,D\n"
    "t2,a,b,c,d,A\n";

void expectContains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "expected \"" << part << "\" in: " << text;
}

}  // namespace

TEST(Mmlu, ChoiceLetter) {
  EXPECT_EQ(moe::choiceLetter(0), 'A');
  EXPECT_EQ(moe::choiceLetter(3), 'D');
  EXPECT_EQ(moe::choiceLetter(25), 'Z');
  EXPECT_THROW(moe::choiceLetter(26), moe::Error);
  EXPECT_THROW(moe::choiceLetter(-1), moe::Error);
}

TEST(Mmlu, LoadsSampleDataSet) {
  const moe::MmluDataset ds = moe::loadMmlu(kSample, "test", {});
  EXPECT_EQ(ds.dir, kSample);
  std::vector<std::string> names;
  for (const auto& s : ds.subjects) names.push_back(s.info.subject);
  EXPECT_EQ(names, (std::vector<std::string>{"astronomy", "high_school_geography", "high_school_physics", "nutrition",
                                             "philosophy", "team_trivia"}));
  EXPECT_EQ(ds.totalQuestions(), 5u * 12u + 10u);
  EXPECT_EQ(ds.maxChoices, 4);
  for (const auto& s : ds.subjects) {
    EXPECT_EQ(s.dev.size(), 5u) << s.info.subject;
    EXPECT_EQ(static_cast<size_t>(s.evalRows), s.eval.size());
    for (const auto& q : s.eval) EXPECT_EQ(q.split, "test");
    for (const auto& q : s.dev) EXPECT_EQ(q.split, "dev");
  }

  const moe::SubjectData* trivia = ds.findSubject("team_trivia");
  ASSERT_NE(trivia, nullptr);
  EXPECT_FALSE(trivia->info.known);
  EXPECT_EQ(trivia->info.category, "other");
  EXPECT_EQ(trivia->eval[0].choices.size(), 3u);
  EXPECT_EQ(ds.findSubject("philosophy")->info.category, "humanities");
  EXPECT_EQ(ds.findSubject("astronomy")->info.subcategory, "physics");
  EXPECT_EQ(ds.findSubject("no_such_subject"), nullptr);

  // Row 8 of physics spans four lines inside one quoted field; the next row starts on line 13.
  const auto& phys = ds.findSubject("high_school_physics")->eval;
  EXPECT_EQ(phys[8].question,
            "Consider the following statements.\nStatement 1: Heat flows spontaneously from a hotter body to a "
            "colder one.\nStatement 2: The total energy of an isolated system is conserved.\nWhich of the "
            "statements are true?");
  EXPECT_EQ(phys[8].line, 9u);
  EXPECT_EQ(phys[9].line, 13u);
  EXPECT_EQ(phys[9].index, 9);
  EXPECT_EQ(phys[6].choices[0], "15,000 kg m/s");  // embedded comma
  EXPECT_EQ(phys[6].gold, 0);
  EXPECT_EQ(ds.findSubject("astronomy")->eval[11].question, "Which planet is often called the \"Red Planet\"?");
  EXPECT_EQ(ds.findSubject("astronomy")->eval[11].gold, 3);
  EXPECT_EQ(ds.findSubject("philosophy")->dev[1].choices[0], "Ren\xC3\xA9 Descartes");
}

TEST(Mmlu, SplitsSubjectsAndLimit) {
  const moe::MmluDataset val = moe::loadMmlu(kSample, "val", {"nutrition", "astronomy", "nutrition"}, 2);
  ASSERT_EQ(val.subjects.size(), 2u);
  EXPECT_EQ(val.subjects[0].info.subject, "astronomy");
  EXPECT_EQ(val.subjects[0].eval.size(), 2u);
  EXPECT_EQ(val.subjects[0].evalRows, 3);
  EXPECT_EQ(val.totalQuestions(), 4u);

  const moe::MmluDataset dev = moe::loadMmlu(kSample, "dev", {"team_trivia"});
  ASSERT_EQ(dev.subjects.size(), 1u);
  EXPECT_EQ(dev.subjects[0].eval.size(), 5u);
  EXPECT_EQ(dev.subjects[0].dev.size(), 5u);
  EXPECT_EQ(dev.maxChoices, 3);
}

TEST(Mmlu, DataSubfolderLayout) {
  TempRoot root;
  root.write("data/dev/x_dev.csv", kDev);
  root.write("data/test/x_test.csv", kTest);
  root.write("data/test/notes.txt", "not a subject");
  const moe::MmluDataset ds = moe::loadMmlu(root.path(), "test", {});
  EXPECT_EQ(ds.dir, root.path() + "/data");
  ASSERT_EQ(ds.subjects.size(), 1u);
  EXPECT_EQ(ds.subjects[0].info.subject, "x");
  EXPECT_EQ(ds.subjects[0].eval[2].gold, 0);
  EXPECT_EQ(ds.subjects[0].eval[1].gold, 3);
}

TEST(Mmlu, AnswerWhitespaceTolerated) {
  TempRoot root;
  root.write("dev/x_dev.csv", "d,a,b,A\n");
  root.write("test/x_test.csv", "q,a,b, B \r\n");
  const moe::MmluDataset ds = moe::loadMmlu(root.path(), "test", {}, 0, 0);
  EXPECT_EQ(ds.subjects[0].eval[0].gold, 1);
  EXPECT_EQ(ds.subjects[0].eval[0].choices, (std::vector<std::string>{"a", "b"}));
}

TEST(Mmlu, MissingDevFileOnlyMattersWithShots) {
  TempRoot root;
  root.write("test/x_test.csv", kTest);
  const std::string e = errorOf([&] { moe::loadMmlu(root.path(), "test", {}, 0, 5); });
  expectContains(e, "subject 'x' has no dev file " + root.path() + "/dev/x_dev.csv");
  expectContains(e, "--shots 0");
  const moe::MmluDataset ds = moe::loadMmlu(root.path(), "test", {}, 0, 0);
  EXPECT_TRUE(ds.subjects[0].dev.empty());
  EXPECT_EQ(ds.subjects[0].eval.size(), 3u);
}

TEST(Mmlu, WrongFieldCount) {
  TempRoot root;
  root.write("dev/x_dev.csv", kDev);
  const std::string file = root.write("test/x_test.csv", "q0,a,b,c,d,A\nq1,a,b,c,B\n");
  const std::string e = errorOf([&] { moe::loadMmlu(root.path(), "test", {}); });
  expectContains(e, file + ":2: row has 5 fields (3 choices) but the first row (line 1) has 6 fields (4 choices)");
}

TEST(Mmlu, TooFewFields) {
  TempRoot root;
  root.write("dev/x_dev.csv", kDev);
  const std::string file = root.write("test/x_test.csv", "q0,a,A\n");
  const std::string e = errorOf([&] { moe::loadMmlu(root.path(), "test", {}); });
  expectContains(e, file + ":1: row has 3 field(s)");
  expectContains(e, "at least 2 choices");
}

TEST(Mmlu, AnswerOutsideChoices) {
  struct Case {
    const char* answer;
    const char* shown;
  };
  for (const Case c : {Case{"D", "\"D\""}, Case{"a", "\"a\""}, Case{"AB", "\"AB\""}, Case{"", "\"\""},
                       Case{"1", "\"1\""}}) {
    TempRoot root;
    root.write("dev/x_dev.csv", "d,a,b,c,A\n");
    const std::string file = root.write("test/x_test.csv", std::string("q0,a,b,c,B\n\"multi\nline\",a,b,c,") +
                                                                c.answer + "\n");
    const std::string e = errorOf([&] { moe::loadMmlu(root.path(), "test", {}); });
    expectContains(e, file + ":2: field 5 (answer) is " + c.shown + "; expected one of the letters A, B, C");
  }
}

TEST(Mmlu, CsvErrorsNameTheFile) {
  TempRoot root;
  root.write("dev/x_dev.csv", kDev);
  const std::string file = root.write("test/x_test.csv", "q0,a,b,c,d,A\n\"q1,a,b,c,d,B\n");
  expectContains(errorOf([&] { moe::loadMmlu(root.path(), "test", {}); }),
                 file + ":2: unterminated quoted field 1");
  root.write("test/x_test.csv", "");
  expectContains(errorOf([&] { moe::loadMmlu(root.path(), "test", {}); }), file + ":1: empty CSV file");
  root.write("test/x_test.csv", "q0,a,b,c,d,A\nq1,\xE9t\xE9,b,c,d,B\n");
  expectContains(errorOf([&] { moe::loadMmlu(root.path(), "test", {}); }),
                 file + ":2: invalid UTF-8: byte 0xE9 at column 4");
  // The dev file is checked too.
  root.write("test/x_test.csv", kTest);
  const std::string dev = root.write("dev/x_dev.csv", "d0,a,b,c,d,A\nd1,a,b,c,d,Q\n");
  expectContains(errorOf([&] { moe::loadMmlu(root.path(), "test", {}); }), dev + ":2: field 6 (answer) is \"Q\"");
}

TEST(Mmlu, StrayQuoteKeptAsPandasReadsIt) {
  TempRoot root;
  root.write("dev/x_dev.csv", kDev);
  root.write("test/x_test.csv", "q0,a,b,c,d,A\nWhat is \"x\"?\",a,b,c,d,B\n");
  const moe::MmluDataset ds = moe::loadMmlu(root.path(), "test", {});
  EXPECT_EQ(ds.subjects[0].eval[1].question, "What is \"x\"?\"");
  EXPECT_EQ(ds.subjects[0].eval[1].gold, 1);
}

TEST(Mmlu, DevAndEvalChoiceCountsMustAgree) {
  TempRoot root;
  const std::string dev = root.write("dev/x_dev.csv", "d,a,b,c,A\n");
  root.write("test/x_test.csv", kTest);
  const std::string e = errorOf([&] { moe::loadMmlu(root.path(), "test", {}); });
  expectContains(e, dev + ":1: dev rows have 3 choices but");
}

TEST(Mmlu, RootWithoutSubjects) {
  TempRoot root;
  fs::create_directories(root.path() + "/test");
  root.write("test/readme.txt", "nothing here");
  const std::string e = errorOf([&] { moe::loadMmlu(root.path(), "test", {}); });
  expectContains(e, "no subjects in MMLU data root " + root.path());
  expectContains(e, "<root>/{dev,val,test}/<subject>_{dev,val,test}.csv");

  TempRoot empty;
  const std::string e2 = errorOf([&] { moe::loadMmlu(empty.path(), "test", {}); });
  expectContains(e2, "no 'test' folder in MMLU data root " + empty.path());
  expectContains(e2, "<root>/data/{dev,val,test}");

  const std::string e3 = errorOf([] { moe::loadMmlu("/nonexistent/mmlu", "test", {}); });
  expectContains(e3, "MMLU data root /nonexistent/mmlu is not a directory");
  expectContains(errorOf([] { moe::loadMmlu("", "test", {}); }), "no MMLU data root given (--data DIR)");
}

TEST(Mmlu, UnknownRequestedSubjectListsThoseFound) {
  const std::string e = errorOf([] { moe::loadMmlu(kSample, "test", {"astronomy", "astrology"}); });
  expectContains(e, "unknown subject 'astrology' (--subjects)");
  expectContains(e, "subjects found: astronomy, high_school_geography, high_school_physics, nutrition, philosophy, "
                    "team_trivia");
}

TEST(Mmlu, BadSplit) {
  expectContains(errorOf([] { moe::loadMmlu(kSample, "train", {}); }), "unknown split 'train'");
}

// The real MMLU (early release, same layout), read-only outside the repository. Override the
// location with MOE_MMLU_DIR.
TEST(MmluReal, LoadsAllSubjects) {
  const char* env = std::getenv("MOE_MMLU_DIR");
  const std::string dir = env && *env ? env : MOE_SOURCE_DIR "/../shared/mmlu/data";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no MMLU data at " << dir << " (set MOE_MMLU_DIR to run this test)";
  const moe::MmluDataset ds = moe::loadMmlu(dir, "test", {});
  EXPECT_EQ(ds.subjects.size(), 57u);
  EXPECT_EQ(ds.totalQuestions(), 14079u);
  EXPECT_EQ(ds.maxChoices, 4);
  size_t dev = 0;
  for (const auto& s : ds.subjects) {
    EXPECT_TRUE(s.info.known) << s.info.subject;
    EXPECT_EQ(s.dev.size(), 5u) << s.info.subject;
    dev += s.dev.size();
  }
  EXPECT_EQ(dev, 285u);
  const moe::SubjectData* algebra = ds.findSubject("abstract_algebra");
  ASSERT_NE(algebra, nullptr);
  EXPECT_EQ(algebra->eval.size(), 100u);
  EXPECT_EQ(algebra->eval[0].question,
            "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.");
  EXPECT_EQ(algebra->eval[0].choices, (std::vector<std::string>{"0", "4", "2", "6"}));
  EXPECT_EQ(algebra->eval[0].gold, 1);

  // val has one row with a stray quote (college_medicine_val.csv line 6), kept as pandas keeps it.
  const moe::MmluDataset val = moe::loadMmlu(dir, "val", {});
  EXPECT_EQ(val.subjects.size(), 57u);
  EXPECT_EQ(val.totalQuestions(), 1542u);
  const auto& medicine = val.findSubject("college_medicine")->eval;
  ASSERT_GT(medicine.size(), 5u);
  EXPECT_EQ(medicine[5].line, 6u);
  EXPECT_EQ(medicine[5].question,
            "Which of the following would be the most accurate definition of Nietzsche\xE2\x80\x99s Will to Truth?\"");
}
