// The results file: round trip of every value, appends with flushes (a killed writer keeps its
// flushed rows), resume, refusals, reader errors, and the summary group against values computed
// here independently of src/coordinator/report.cpp.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <regex>

#include "common/error.h"
#include "coordinator/hdf5_handles.h"
#include "coordinator/results.h"
#include "coordinator/stats.h"
#include "test_results_synthetic.h"
#include "test_util.h"

using moe::test::errorOf;

using namespace moe;
using moe::testing::SyntheticOptions;
using moe::testing::syntheticHeader;
using moe::testing::syntheticRows;

namespace {

std::string tempPath(const std::string& name) {
  return ::testing::TempDir() + "moe_results_" + std::to_string(getpid()) + "_" + name;
}


bool sameFloat(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }
void expectSameFloats(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(sameFloat(got[i], want[i])) << what << "[" << i << "]: " << got[i] << " vs " << want[i];
}

void expectSameRow(const QuestionResult& g, const QuestionResult& w) {
  const std::string id = w.subject + "/" + std::to_string(w.index) + " ";
  EXPECT_EQ(g.subject, w.subject);
  EXPECT_EQ(g.index, w.index);
  EXPECT_EQ(g.gold, w.gold) << id;
  EXPECT_EQ(g.numChoices, w.numChoices) << id;
  EXPECT_EQ(g.shots, w.shots) << id;
  EXPECT_EQ(g.promptTokens, w.promptTokens) << id;
  EXPECT_EQ(g.prediction, w.prediction) << id;
  EXPECT_EQ(g.correct, w.correct) << id;
  expectSameFloats(g.weights, w.weights, id + "weights");
  expectSameFloats(g.expertEntropy, w.expertEntropy, id + "expert_entropy");
  EXPECT_TRUE(sameFloat(g.mixtureEntropy, w.mixtureEntropy)) << id;
  expectSameFloats(g.expertLetterProbs, w.expertLetterProbs, id + "expert_letter_probs");
  expectSameFloats(g.mixtureLetterProbs, w.mixtureLetterProbs, id + "mixture_letter_probs");
  expectSameFloats(g.expertChoiceProbs, w.expertChoiceProbs, id + "expert_choice_probs");
  expectSameFloats(g.mixtureChoiceProbs, w.mixtureChoiceProbs, id + "mixture_choice_probs");
  EXPECT_EQ(g.expertPrediction, w.expertPrediction) << id;
  EXPECT_EQ(g.expertCorrect, w.expertCorrect) << id;
  EXPECT_EQ(g.expertVocabChoice, w.expertVocabChoice) << id;
  EXPECT_EQ(g.mixtureVocabChoice, w.mixtureVocabChoice) << id;
  expectSameFloats(g.expertLetterMass, w.expertLetterMass, id + "expert_letter_mass");
  EXPECT_TRUE(sameFloat(g.mixtureLetterMass, w.mixtureLetterMass)) << id;
}

void expectSameConfig(const ResultsHeader& g, const ResultsHeader& w) {
  EXPECT_EQ(g.models, w.models);
  EXPECT_EQ(g.modelHashes, w.modelHashes);
  EXPECT_EQ(g.mode, w.mode);
  EXPECT_EQ(g.weights, w.weights);
  EXPECT_EQ(g.scoring, w.scoring);
  EXPECT_EQ(g.promptStyle, w.promptStyle);
  EXPECT_EQ(g.mixtureSpace, w.mixtureSpace);
  EXPECT_EQ(g.commandLine, w.commandLine);
  EXPECT_EQ(g.configYaml, w.configYaml);
  EXPECT_EQ(g.ranks, w.ranks);
  EXPECT_EQ(g.devices, w.devices);
  EXPECT_EQ(g.split, w.split);
  EXPECT_EQ(g.shots, w.shots);
  EXPECT_EQ(g.dataRoot, w.dataRoot);
  EXPECT_EQ(g.experts, w.experts);
  EXPECT_EQ(g.maxChoices, w.maxChoices);
  ASSERT_EQ(g.subjects.size(), w.subjects.size());
  for (size_t i = 0; i < g.subjects.size(); ++i) {
    EXPECT_EQ(g.subjects[i].subject, w.subjects[i].subject);
    EXPECT_EQ(g.subjects[i].category, w.subjects[i].category);
    EXPECT_EQ(g.subjects[i].subcategory, w.subjects[i].subcategory);
    EXPECT_EQ(g.subjects[i].known, w.subjects[i].known);
  }
}

std::vector<QuestionResult> slice(const std::vector<QuestionResult>& v, size_t from, size_t to) {
  return std::vector<QuestionResult>(v.begin() + from, v.begin() + std::min(to, v.size()));
}

void writeAll(const std::string& path, const SyntheticOptions& o, std::vector<size_t> batchSizes = {32}) {
  auto rows = syntheticRows(o);
  auto w = ResultsWriter::create(path, syntheticHeader(o), true);
  size_t at = 0;
  for (size_t b : batchSizes) {
    w.append(slice(rows, at, at + b));
    at += b;
  }
  ASSERT_EQ(at, rows.size());
  w.finish();
}

const std::regex kIsoUtc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");

}  // namespace

TEST(Results, RoundTripKeepsEveryValue) {
  const std::string path = tempPath("roundtrip.h5");
  SyntheticOptions o;
  auto rows = syntheticRows(o);
  ASSERT_EQ(rows.size(), 32u);
  // The writer must store unused choice columns as NaN whatever the caller left there.
  auto input = rows;
  for (auto& r : input)
    if (r.numChoices == 3) {
      r.mixtureLetterProbs[3] = 0.25f;
      for (int e = 0; e < o.experts; ++e) r.expertChoiceProbs[e * 4 + 3] = 0.5f;
    }
  {
    auto w = ResultsWriter::create(path, syntheticHeader(o), true);
    EXPECT_EQ(w.header().status, "running");
    size_t at = 0;
    for (size_t b : {1u, 6u, 10u, 15u}) {
      w.append(slice(input, at, at + b));
      at += b;
      EXPECT_EQ(w.rows(), static_cast<int64_t>(at));
    }
    EXPECT_EQ(w.done().size(), 32u);
    w.finish();
    EXPECT_THROW(w.append(slice(input, 0, 1)), moe::Error);
  }
  ResultsFile f = readResults(path);
  expectSameConfig(f.header, syntheticHeader(o));
  EXPECT_EQ(f.header.status, "complete");
  EXPECT_TRUE(f.complete());
  EXPECT_TRUE(std::regex_match(f.header.startTime, kIsoUtc)) << f.header.startTime;
  EXPECT_TRUE(std::regex_match(f.header.endTime, kIsoUtc)) << f.header.endTime;
  EXPECT_FALSE(f.header.version.empty());
  EXPECT_TRUE(f.header.resumeTimes.empty());
  ASSERT_EQ(f.rows.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) expectSameRow(f.rows[i], rows[i]);
  // The 3-choice subject's rows: column 3 is NaN in every per-choice dataset.
  int padded = 0;
  for (const auto& r : f.rows) {
    if (r.numChoices != 3) continue;
    ++padded;
    EXPECT_TRUE(std::isnan(r.mixtureLetterProbs[3]) && std::isnan(r.mixtureChoiceProbs[3]));
    for (int e = 0; e < o.experts; ++e)
      EXPECT_TRUE(std::isnan(r.expertLetterProbs[e * 4 + 3]) && std::isnan(r.expertChoiceProbs[e * 4 + 3]));
    EXPECT_FALSE(std::isnan(r.mixtureLetterProbs[2]));
  }
  EXPECT_EQ(padded, 5);
  std::remove(path.c_str());
}

TEST(Results, KilledWriterKeepsFlushedRowsAndResumes) {
  const std::string path = tempPath("killed.h5");
  SyntheticOptions o;
  o.experts = 2;
  o.scoring = "vocab";
  auto rows = syntheticRows(o);
  std::remove(path.c_str());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child writes two batches and dies by SIGKILL with the file still open (the writer's
    // destructor, which would close it, never runs).
    try {
      auto w = ResultsWriter::create(path, syntheticHeader(o), false);
      w.append(slice(rows, 0, 10));
      w.append(slice(rows, 10, 15));
      kill(getpid(), SIGKILL);
    } catch (...) {
      _exit(3);
    }
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

  ResultsFile partial = readResults(path);
  EXPECT_EQ(partial.header.status, "running");
  EXPECT_FALSE(partial.complete());
  EXPECT_TRUE(partial.header.endTime.empty());
  ASSERT_EQ(partial.rows.size(), 15u);
  for (size_t i = 0; i < 15; ++i) expectSameRow(partial.rows[i], rows[i]);

  {
    auto w = ResultsWriter::resume(path, syntheticHeader(o));
    EXPECT_EQ(w.rows(), 15);
    ASSERT_EQ(w.done().size(), 15u);
    EXPECT_TRUE(w.done().count({"abstract_algebra", 0}));
    EXPECT_TRUE(w.done().count({"philosophy", 5}));  // row 14
    EXPECT_FALSE(w.done().count({"philosophy", 6}));
    // The scheduler's job: skip what is done. Appending a done row is refused.
    EXPECT_NE(errorOf([&] { w.append(slice(rows, 14, 16)); }).find("(philosophy, index 5): already written"),
              std::string::npos);
    std::vector<QuestionResult> rest;
    for (const auto& r : rows)
      if (!w.done().count({r.subject, r.index})) rest.push_back(r);
    ASSERT_EQ(rest.size(), 17u);
    w.append(slice(rest, 0, 9));
    w.append(slice(rest, 9, 17));
    w.finish();
  }
  ResultsFile all = readResults(path);
  EXPECT_TRUE(all.complete());
  ASSERT_EQ(all.header.resumeTimes.size(), 1u);
  EXPECT_TRUE(std::regex_match(all.header.resumeTimes[0], kIsoUtc));
  ASSERT_EQ(all.rows.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) expectSameRow(all.rows[i], rows[i]);
  std::remove(path.c_str());
}

TEST(Results, RowsLeftUnevenByAKillMidAppendAreTrimmed) {
  const std::string path = tempPath("uneven.h5");
  SyntheticOptions o;
  auto rows = syntheticRows(o);
  {
    auto w = ResultsWriter::create(path, syntheticHeader(o), true);
    w.append(slice(rows, 0, 10));
  }  // closed without finish(): status stays "running"
  h5::initHdf5();
  {
    // As if a kill hit after two datasets were extended for the next batch.
    h5::File f(MOE_H5_ID(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)));
    for (const char* name : {"subject", "gold"}) {
      h5::Dataset d(MOE_H5_ID(H5Dopen2(f.get(), name, H5P_DEFAULT)));
      hsize_t n = 13;
      MOE_H5_CHECK(H5Dset_extent(d.get(), &n));
    }
  }
  ResultsFile partial = readResults(path);
  EXPECT_EQ(partial.header.status, "running");
  ASSERT_EQ(partial.rows.size(), 10u);
  {
    auto w = ResultsWriter::resume(path, syntheticHeader(o));
    EXPECT_EQ(w.rows(), 10);
    w.append(slice(rows, 10, 32));
    w.finish();
  }
  ResultsFile all = readResults(path);
  ASSERT_EQ(all.rows.size(), 32u);
  for (size_t i = 0; i < rows.size(); ++i) expectSameRow(all.rows[i], rows[i]);
  std::remove(path.c_str());
}

TEST(Results, AppendValidatesRowsBeforeWriting) {
  const std::string path = tempPath("validate.h5");
  SyntheticOptions o;
  auto rows = syntheticRows(o);
  auto w = ResultsWriter::create(path, syntheticHeader(o), true);
  w.append(slice(rows, 0, 5));
  auto bad = [&](const std::function<void(QuestionResult&)>& edit) {
    auto batch = slice(rows, 5, 7);
    edit(batch[1]);
    return errorOf([&] { w.append(batch); });
  };
  EXPECT_NE(bad([](QuestionResult& r) { r.subject = "astrology"; }).find("subject is not in the file's subject table"),
            std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.index = 5; }).find("appears twice in one batch"), std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.index = 2; }).find("(abstract_algebra, index 2): already written"),
            std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.expertLetterProbs.pop_back(); })
                .find("expert_letter_probs has 11 values, expected 12 (E=3, C=4)"),
            std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.gold = 4; }).find("gold 4 is outside [0, 4)"), std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.correct = !r.correct; }).find("correct is"), std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.expertCorrect[1] ^= 1; }).find("expert 1: expert_correct is"),
            std::string::npos);
  EXPECT_NE(bad([](QuestionResult& r) { r.numChoices = 5; }).find("num_choices 5 is outside [1, 4]"),
            std::string::npos);
  EXPECT_EQ(w.rows(), 5);  // nothing of a refused batch was written
  w.finish();
  EXPECT_EQ(readResults(path).rows.size(), 5u);
  std::remove(path.c_str());
}

TEST(Results, ResumeRefusesADifferentConfigurationNamingTheAttribute) {
  const std::string path = tempPath("mismatch.h5");
  SyntheticOptions o;
  writeAll(path, o);
  struct Case {
    const char* attribute;
    std::function<void(ResultsHeader&)> edit;
    const char* fileValue;
    const char* runValue;
  };
  const std::vector<Case> cases = {
      {"models", [](ResultsHeader& h) { h.models[1] = "/models/other"; }, "/models/expert-1", "/models/other"},
      {"model_hashes", [](ResultsHeader& h) { h.modelHashes[0] = "sha256:zz"; }, "sha256:aaaaaaaa", "sha256:zz"},
      {"mode", [](ResultsHeader& h) { h.mode = "geometric"; }, "file: mean", "this run: geometric"},
      {"weights", [](ResultsHeader& h) { h.weights = {1, 2, 3}; }, "file: []", "this run: [1, 2, 3]"},
      {"scoring", [](ResultsHeader& h) { h.scoring = "vocab"; }, "file: letters", "this run: vocab"},
      {"prompt_style", [](ResultsHeader& h) { h.promptStyle = "harness"; }, "file: original", "this run: harness"},
      {"mixture_space", [](ResultsHeader& h) { h.mixtureSpace = "answer-letters"; }, "file: full-vocabulary",
       "this run: answer-letters"},
      {"split", [](ResultsHeader& h) { h.split = "val"; }, "file: test", "this run: val"},
      {"shots", [](ResultsHeader& h) { h.shots = 0; }, "file: 5", "this run: 0"},
      {"data_root", [](ResultsHeader& h) { h.dataRoot = "/elsewhere"; }, "file: /data/mmlu", "this run: /elsewhere"},
      {"experts", [](ResultsHeader& h) { h.experts[2] = "x"; }, "expert2]", "x]"},
      {"max_choices", [](ResultsHeader& h) { h.maxChoices = 5; }, "file: 4", "this run: 5"},
      {"subjects", [](ResultsHeader& h) { h.subjects.pop_back(); }, "three_choice_quiz]", "nutrition]"},
  };
  for (const auto& c : cases) {
    ResultsHeader h = syntheticHeader(o);
    c.edit(h);
    const std::string err = errorOf([&] { ResultsWriter::resume(path, h); });
    EXPECT_NE(err.find(std::string("attribute '") + c.attribute + "' differs"), std::string::npos) << err;
    EXPECT_NE(err.find(c.fileValue), std::string::npos) << err;
    EXPECT_NE(err.find(c.runValue), std::string::npos) << err;
    EXPECT_NE(err.find(path), std::string::npos) << err;
  }
  // Provenance that does not change answers may differ.
  ResultsHeader h = syntheticHeader(o);
  h.commandLine = "something else";
  h.ranks = 12;
  h.devices = {"cuda:0"};
  auto w = ResultsWriter::resume(path, h);
  EXPECT_EQ(w.done().size(), 32u);
  EXPECT_EQ(w.header().ranks, o.experts);  // the file's provenance is kept
  std::remove(path.c_str());
}

TEST(Results, CreateRefusesAnExistingFileWithoutOverwrite) {
  const std::string path = tempPath("exists.h5");
  SyntheticOptions o;
  writeAll(path, o);
  const std::string err = errorOf([&] { ResultsWriter::create(path, syntheticHeader(o), false); });
  EXPECT_NE(err.find("results file " + path + " already exists"), std::string::npos) << err;
  EXPECT_NE(err.find("--overwrite"), std::string::npos) << err;
  EXPECT_EQ(readResults(path).rows.size(), 32u);  // untouched
  { auto w = ResultsWriter::create(path, syntheticHeader(o), true); }
  ResultsFile f = readResults(path);
  EXPECT_EQ(f.rows.size(), 0u);
  EXPECT_EQ(f.header.status, "running");
  std::remove(path.c_str());
  EXPECT_NE(errorOf([&] { ResultsWriter::resume(path, syntheticHeader(o)); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { readResults(path); }).find("results file " + path + " does not exist"), std::string::npos);
  EXPECT_NE(errorOf([&] { ResultsWriter::create("/nonexistent-dir/x.h5", syntheticHeader(o), false); })
                .find("cannot create results file /nonexistent-dir/x.h5"),
            std::string::npos);
}

TEST(Results, NotAnHdf5FileIsAClearError) {
  const std::string path = tempPath("not.h5");
  std::ofstream(path) << "subject,index\nanatomy,1\n";
  const std::string err = errorOf([&] { readResults(path); });
  EXPECT_NE(err.find(path + " is not an HDF5 file"), std::string::npos) << err;
  EXPECT_NE(errorOf([&] { ResultsWriter::resume(path, syntheticHeader({})); }).find("is not an HDF5 file"),
            std::string::npos);
  std::remove(path.c_str());
}

TEST(Results, MissingOrMisshapenDatasetIsNamed) {
  const std::string path = tempPath("missing.h5");
  SyntheticOptions o;
  writeAll(path, o);
  h5::initHdf5();
  {
    h5::File f(MOE_H5_ID(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)));
    MOE_H5_CHECK(H5Ldelete(f.get(), "expert_letter_probs", H5P_DEFAULT));
  }
  std::string err = errorOf([&] { readResults(path); });
  EXPECT_NE(err.find(path + ": missing dataset 'expert_letter_probs'"), std::string::npos) << err;
  {
    h5::File f(MOE_H5_ID(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)));
    hsize_t dims[3] = {32, 3, 5};
    h5::Dataspace s(MOE_H5_ID(H5Screate_simple(3, dims, nullptr)));
    h5::Dataset d(MOE_H5_ID(
        H5Dcreate2(f.get(), "expert_letter_probs", H5T_IEEE_F32LE, s.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  }
  err = errorOf([&] { readResults(path); });
  EXPECT_NE(err.find("dataset 'expert_letter_probs' has shape [32,3,5], expected [N,3,4]"), std::string::npos) << err;
  {
    h5::File f(MOE_H5_ID(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)));
    MOE_H5_CHECK(H5Adelete(f.get(), "scoring"));
  }
  err = errorOf([&] { readResults(path); });
  EXPECT_NE(err.find(path + ": missing root attribute 'scoring'"), std::string::npos) << err;
  std::remove(path.c_str());
}

TEST(Results, ReaderRejectsARepeatedQuestion) {
  const std::string path = tempPath("dup.h5");
  SyntheticOptions o;
  writeAll(path, o);
  h5::initHdf5();
  {
    h5::File f(MOE_H5_ID(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)));
    h5::Dataset d(MOE_H5_ID(H5Dopen2(f.get(), "index", H5P_DEFAULT)));
    h5::Dataspace fs(MOE_H5_ID(H5Dget_space(d.get())));
    hsize_t start = 3, count = 1;
    MOE_H5_CHECK(H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr));
    h5::Dataspace ms(MOE_H5_ID(H5Screate_simple(1, &count, nullptr)));
    int64_t one = 1;
    MOE_H5_CHECK(H5Dwrite(d.get(), H5T_NATIVE_INT64, ms.get(), fs.get(), H5P_DEFAULT, &one));
  }
  const std::string err = errorOf([&] { readResults(path); });
  EXPECT_NE(err.find("row 3 repeats question (abstract_algebra, index 1) first written at row 1"), std::string::npos)
      << err;
  std::remove(path.c_str());
}

TEST(Results, H5CheckThrowsWithTheErrorStackAndHandlesAreMoveOnly) {
  h5::initHdf5();
  const std::string path = tempPath("handles.h5");
  h5::File f(MOE_H5_ID(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)));
  const std::string err = errorOf([&] { MOE_H5_CHECK(H5Dopen2(f.get(), "no_such_dataset", H5P_DEFAULT)); });
  EXPECT_NE(err.find("HDF5 error in `H5Dopen2(f.get(), \"no_such_dataset\""), std::string::npos) << err;
  EXPECT_NE(err.find("test_results.cpp:"), std::string::npos) << err;
  EXPECT_NE(err.find("): H5Dopen2(): unable to open dataset"), std::string::npos) << err;
  EXPECT_NE(err.find("; cause: "), std::string::npos) << err;
  EXPECT_NE(err.find("object 'no_such_dataset' doesn't exist"), std::string::npos) << err;
  EXPECT_NE(errorOf([&] { MOE_H5_ID(H5Gopen2(f.get(), "nope", H5P_DEFAULT)); }).find("HDF5 error in `H5Gopen2"),
            std::string::npos);
  static_assert(!std::is_copy_constructible_v<h5::File> && std::is_nothrow_move_constructible_v<h5::File>);
  h5::File g = std::move(f);
  EXPECT_FALSE(f);
  ASSERT_TRUE(g);
  const hid_t id = g.get();
  EXPECT_GT(H5Iis_valid(id), 0);
  g.close();
  EXPECT_FALSE(g);
  EXPECT_LE(H5Iis_valid(id), 0);
  std::remove(path.c_str());
}

// ---- summary group -------------------------------------------------------------------------------

namespace {

std::vector<double> readDoubles(hid_t f, const char* name) {
  h5::Dataset d(MOE_H5_ID(H5Dopen2(f, name, H5P_DEFAULT)));
  h5::Dataspace s(MOE_H5_ID(H5Dget_space(d.get())));
  std::vector<double> v(static_cast<size_t>(H5Sget_simple_extent_npoints(s.get())));
  MOE_H5_CHECK(H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()));
  return v;
}
std::vector<int64_t> readInts(hid_t f, const char* name) {
  h5::Dataset d(MOE_H5_ID(H5Dopen2(f, name, H5P_DEFAULT)));
  h5::Dataspace s(MOE_H5_ID(H5Dget_space(d.get())));
  std::vector<int64_t> v(static_cast<size_t>(H5Sget_simple_extent_npoints(s.get())));
  MOE_H5_CHECK(H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()));
  return v;
}
std::vector<std::string> readNames(hid_t f, const char* name) {
  h5::Dataset d(MOE_H5_ID(H5Dopen2(f, name, H5P_DEFAULT)));
  h5::Dataspace s(MOE_H5_ID(H5Dget_space(d.get())));
  h5::Datatype t(MOE_H5_ID(H5Tcopy(H5T_C_S1)));
  MOE_H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE));
  std::vector<char*> p(static_cast<size_t>(H5Sget_simple_extent_npoints(s.get())));
  MOE_H5_CHECK(H5Dread(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()));
  std::vector<std::string> v(p.begin(), p.end());
  H5Dvlen_reclaim(t.get(), s.get(), H5P_DEFAULT, p.data());
  return v;
}
template <typename T>
T readAttr(hid_t loc, const char* name, hid_t type) {
  h5::Attribute a(MOE_H5_ID(H5Aopen(loc, name, H5P_DEFAULT)));
  T v{};
  MOE_H5_CHECK(H5Aread(a.get(), type, &v));
  return v;
}

// Independent reference: outcome[column][row] for experts, mixture, oracle.
struct Reference {
  std::vector<std::vector<uint8_t>> outcome;
  std::vector<std::string> subjectOf;
};
Reference reference(const std::vector<QuestionResult>& rows, int experts) {
  Reference r;
  r.outcome.assign(experts + 2, {});
  for (const auto& q : rows) {
    bool any = false;
    for (int e = 0; e < experts; ++e) {
      r.outcome[e].push_back(q.expertPrediction[e] == q.gold);
      any = any || q.expertPrediction[e] == q.gold;
    }
    r.outcome[experts].push_back(q.prediction == q.gold);
    r.outcome[experts + 1].push_back(any);
    r.subjectOf.push_back(q.subject);
  }
  return r;
}

}  // namespace

TEST(Results, SummaryGroupMatchesAnIndependentComputation) {
  const std::string path = tempPath("summary.h5");
  SyntheticOptions o;
  writeAll(path, o, {7, 7, 7, 11});
  const auto rows = syntheticRows(o);
  const int E = o.experts, M = E + 2;
  Reference ref = reference(rows, E);
  h5::initHdf5();
  h5::File f(MOE_H5_ID(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
  const hid_t h = f.get();

  EXPECT_EQ(readNames(h, "summary/columns"), (std::vector<std::string>{"expert0", "expert1", "expert2", "mixture", "oracle"}));
  // Per subject, in subject-table order.
  const std::vector<std::string> subjects = {"abstract_algebra", "philosophy", "sociology", "nutrition",
                                             "three_choice_quiz"};
  EXPECT_EQ(readNames(h, "summary/subject_names"), subjects);
  auto sn = readInts(h, "summary/subject_n");
  auto sc = readInts(h, "summary/subject_correct");
  auto sa = readDoubles(h, "summary/subject_accuracy");
  auto ss = readDoubles(h, "summary/subject_stderr");
  std::vector<std::vector<double>> subjectAcc(M);
  std::vector<double> subjectVar(M, 0);
  for (size_t s = 0; s < subjects.size(); ++s) {
    int n = 0;
    std::vector<int> k(M, 0);
    for (size_t i = 0; i < rows.size(); ++i)
      if (ref.subjectOf[i] == subjects[s]) {
        ++n;
        for (int j = 0; j < M; ++j) k[j] += ref.outcome[j][i];
      }
    EXPECT_EQ(sn[s], n);
    for (int j = 0; j < M; ++j) {
      const double p = double(k[j]) / n;
      EXPECT_EQ(sc[s * M + j], k[j]) << subjects[s] << " column " << j;
      EXPECT_NEAR(sa[s * M + j], p, 1e-15);
      EXPECT_NEAR(ss[s * M + j], std::sqrt(p * (1 - p) / n), 1e-15);
      subjectAcc[j].push_back(p);
      subjectVar[j] += p * (1 - p) / n;
    }
  }
  // Categories: one subject each, except "other" = nutrition + three_choice_quiz.
  EXPECT_EQ(readNames(h, "summary/category_names"),
            (std::vector<std::string>{"STEM", "humanities", "social sciences", "other"}));
  auto cn = readInts(h, "summary/category_n");
  auto ca = readDoubles(h, "summary/category_accuracy");
  EXPECT_EQ(cn, (std::vector<int64_t>{9, 7, 6, 10}));
  for (int j = 0; j < M; ++j) {
    int k = 0;
    for (size_t i = 0; i < rows.size(); ++i)
      if (ref.subjectOf[i] == "nutrition" || ref.subjectOf[i] == "three_choice_quiz") k += ref.outcome[j][i];
    EXPECT_NEAR(ca[3 * M + j], k / 10.0, 1e-15);
    EXPECT_NEAR(ca[0 * M + j], subjectAcc[j][0], 1e-15);
  }
  // Overall micro and macro.
  auto ma = readDoubles(h, "summary/micro_accuracy");
  auto ms = readDoubles(h, "summary/micro_stderr");
  auto mc = readInts(h, "summary/micro_correct");
  auto xa = readDoubles(h, "summary/macro_accuracy");
  auto xs = readDoubles(h, "summary/macro_stderr");
  std::vector<double> micro(M);
  for (int j = 0; j < M; ++j) {
    int k = 0;
    for (uint8_t v : ref.outcome[j]) k += v;
    micro[j] = k / 32.0;
    EXPECT_EQ(mc[j], k);
    EXPECT_NEAR(ma[j], micro[j], 1e-15);
    EXPECT_NEAR(ms[j], std::sqrt(micro[j] * (1 - micro[j]) / 32), 1e-15);
    double mean = 0;
    for (double p : subjectAcc[j]) mean += p / 5;
    EXPECT_NEAR(xa[j], mean, 1e-15);
    EXPECT_NEAR(xs[j], std::sqrt(subjectVar[j]) / 5, 1e-15);
  }
  // The oracle is at least every expert.
  for (int e = 0; e < E; ++e) EXPECT_GE(micro[E + 1], micro[e]);
  // Letter mass means.
  auto lm = readDoubles(h, "summary/expert_letter_mass_mean");
  ASSERT_EQ(lm.size(), size_t(E));
  for (int e = 0; e < E; ++e) {
    double m = 0;
    for (const auto& q : rows) m += q.expertLetterMass[e] / 32.0;
    EXPECT_NEAR(lm[e], m, 1e-6);
  }
  // Mixture vs best expert.
  int best = 0;
  for (int e = 1; e < E; ++e)
    if (micro[e] > micro[best]) best = e;
  h5::Group g(MOE_H5_ID(H5Gopen2(h, "summary/mixture_vs_best", H5P_DEFAULT)));
  EXPECT_EQ(readAttr<int32_t>(g.get(), "best_expert", H5T_NATIVE_INT32), best);
  int64_t b = 0, c = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    b += ref.outcome[E][i] && !ref.outcome[best][i];
    c += !ref.outcome[E][i] && ref.outcome[best][i];
  }
  EXPECT_EQ(readAttr<int64_t>(g.get(), "mcnemar_b", H5T_NATIVE_INT64), b);
  EXPECT_EQ(readAttr<int64_t>(g.get(), "mcnemar_c", H5T_NATIVE_INT64), c);
  ASSERT_LT(b + c, 25);  // 32 questions: the exact test, 2 P[X <= min(b,c)], X ~ Bin(b+c, 1/2)
  double tail = 0;
  for (int64_t i = 0; i <= std::min(b, c); ++i) {
    double comb = 1;
    for (int64_t t = 0; t < i; ++t) comb = comb * double(b + c - t) / double(t + 1);
    tail += comb / std::pow(2.0, double(b + c));
  }
  EXPECT_NEAR(readAttr<double>(g.get(), "mcnemar_p", H5T_NATIVE_DOUBLE), std::min(1.0, 2 * tail), 1e-12);
  const double diff = micro[E] - micro[best];
  EXPECT_NEAR(readAttr<double>(g.get(), "difference", H5T_NATIVE_DOUBLE), diff, 1e-15);
  const double lo = readAttr<double>(g.get(), "ci_low", H5T_NATIVE_DOUBLE);
  const double hi = readAttr<double>(g.get(), "ci_high", H5T_NATIVE_DOUBLE);
  EXPECT_LE(lo, diff);
  EXPECT_GE(hi, diff);
  EXPECT_LT(hi - lo, 0.6);
  stats::BootstrapCi ci = stats::pairedBootstrap(ref.outcome[E], ref.outcome[best]);
  EXPECT_EQ(lo, ci.low);
  EXPECT_EQ(hi, ci.high);
  EXPECT_EQ(readAttr<int32_t>(g.get(), "bootstrap_resamples", H5T_NATIVE_INT32), 10000);
}
