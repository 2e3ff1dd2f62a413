// MMLU data set: questions of one split, with each subject's dev rows for few-shot prompts.
//
// Layout (the one hendrycks/test ships, also found one level down under data/):
//   <root>/{dev,val,test}/<subject>_{dev,val,test}.csv     or     <root>/data/{dev,val,test}/...
// No header row; columns: question, choice A, choice B, ..., answer letter. The number of choices
// C = columns - 2 (at least 2, at most 26) is the same on every row of a file and in a subject's
// dev file; the answer is one of the first C letters (surrounding whitespace tolerated). A quote
// inside an unquoted field is kept as a literal character with a warning (pandas reads it so, and
// the real MMLU has one: val/college_medicine_val.csv line 6); every other CSV defect is an error.
// Subjects are the files found in the evaluated split, sorted by name; each is classified with
// classifySubject (a subject outside the 57 gets category "other", logged once).
//
// Field text is kept as written (the original script read the files with pandas, which turns an
// empty field into "nan" and an all-numeric column into numbers; those artefacts are not
// reproduced: a choice "1.50" stays "1.50").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/categories.h"
#include "coordinator/csv.h"

namespace moe {

struct RunConfig;

constexpr int kMaxChoices = 26;

// 'A' + j for 0 <= j < kMaxChoices.
char choiceLetter(int j);

struct Question {
  std::string subject;
  std::string split;   // the file's split: "dev" for few-shot rows
  int64_t index = 0;   // row index in its file, 0-based
  size_t line = 0;     // line in its file where the row starts
  std::string question;
  std::vector<std::string> choices;
  int gold = 0;        // index into choices
};

struct SubjectData {
  SubjectInfo info;
  std::string evalFile;        // path of the evaluated split's file
  std::string devFile;         // path of the dev file; empty when there is none
  std::vector<Question> dev;   // all rows of the dev file, in file order
  std::vector<Question> eval;  // rows of the evaluated split (the first `limit` when limited)
  int64_t evalRows = 0;        // rows in the evaluated file before the limit
};

struct MmluDataset {
  std::string root;   // as given
  std::string dir;    // the folder holding dev/, val/, test/ (root or root/data)
  std::string split;  // test | val | dev
  std::vector<SubjectData> subjects;  // sorted by subject name
  int maxChoices = 0;                 // largest C over every row loaded
  size_t totalQuestions() const;      // evaluated questions over all subjects
  const SubjectData* findSubject(const std::string& name) const;  // nullptr when absent
};

// Loads `split` (test | val | dev) of the data set at `root`. `subjects` empty means every subject
// found; otherwise each must exist (the error lists those that do). `limitPerSubject` > 0 keeps the
// first N rows of each subject (all rows are still validated). When `shots` > 0 every subject
// needs a dev file; with fewer dev rows than shots a warning is logged and prompts use what
// there is. Throws moe::Error naming file, line and field for malformed data.
MmluDataset loadMmlu(const std::string& root, const std::string& split, const std::vector<std::string>& subjects,
                     int64_t limitPerSubject = 0, int shots = 5);

// The same from a run configuration (data, split, subjects, limit, shots).
MmluDataset loadMmlu(const RunConfig& cfg);

// Reads one MMLU CSV file as questions of `subject` and `split` (exposed for tests and tools).
std::vector<Question> readMmluFile(const std::string& path, const std::string& subject, const std::string& split);

// The questions in parsed CSV records; `path` is used in messages. Checks the row shape and answers.
std::vector<Question> mmluQuestions(const std::vector<CsvRecord>& records, const std::string& path,
                                    const std::string& subject, const std::string& split);

}  // namespace moe
