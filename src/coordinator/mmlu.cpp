#include "coordinator/mmlu.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"

namespace moe {
namespace fs = std::filesystem;
namespace {

const char* const kLayout = "<root>/{dev,val,test}/<subject>_{dev,val,test}.csv or <root>/data/{dev,val,test}/...";

bool isDirectory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool isFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string trimAscii(const std::string& s) {
  const char* ws = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// A field as quoted in a message, shortened when long.
std::string quoted(const std::string& s) {
  constexpr size_t kMax = 40;
  if (s.size() <= kMax) return "\"" + s + "\"";
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
  return "\"" + s.substr(0, cut) + "...\"";
}

std::string allowedLetters(int c) {
  std::string s;
  for (int j = 0; j < c; ++j) s += str(j ? ", " : "", choiceLetter(j));
  return s;
}

// Subject names from the files <dir>/<split>/<subject>_<split>.csv, sorted.
std::vector<std::string> discoverSubjects(const fs::path& splitDir, const std::string& split) {
  const std::string suffix = "_" + split + ".csv";
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(splitDir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.size() <= suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    if (!isFile(it->path())) continue;
    names.push_back(file.substr(0, file.size() - suffix.size()));
  }
  MOE_CHECK(!ec, "cannot list ", splitDir.string(), ": ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::string joinNames(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

char choiceLetter(int j) {
  MOE_CHECK(j >= 0 && j < kMaxChoices, "choice index ", j, " outside 0..", kMaxChoices - 1);
  return static_cast<char>('A' + j);
}

size_t MmluDataset::totalQuestions() const {
  size_t n = 0;
  for (const auto& s : subjects) n += s.eval.size();
  return n;
}

const SubjectData* MmluDataset::findSubject(const std::string& name) const {
  for (const auto& s : subjects)
    if (s.info.subject == name) return &s;
  return nullptr;
}

std::vector<Question> readMmluFile(const std::string& path, const std::string& subject, const std::string& split) {
  CsvOptions options;
  options.literalStrayQuotes = true;  // as pandas reads them; mmluQuestions warns
  return mmluQuestions(readCsvFile(path, options), path, subject, split);
}

std::vector<Question> mmluQuestions(const std::vector<CsvRecord>& records, const std::string& path,
                                    const std::string& subject, const std::string& split) {
  MOE_CHECK(!records.empty(), path, ":1: no rows");
  const CsvRecord& first = records.front();
  const size_t cols = first.fields.size();
  MOE_CHECK(cols >= 4, path, ":", first.line, ": row has ", cols,
            " field(s); an MMLU row is: question, at least 2 choices, answer letter (at least 4 fields)");
  MOE_CHECK(cols - 2 <= static_cast<size_t>(kMaxChoices), path, ":", first.line, ": row has ", cols - 2,
            " choices; at most ", kMaxChoices, " (letters A-Z) are supported");
  const int nChoices = static_cast<int>(cols - 2);
  std::vector<Question> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const CsvRecord& r = records[i];
    MOE_CHECK(r.fields.size() == cols, path, ":", r.line, ": row has ", r.fields.size(), " fields (",
              r.fields.size() >= 2 ? r.fields.size() - 2 : 0, " choices) but the first row (line ", first.line,
              ") has ", cols, " fields (", nChoices,
              " choices); every row of a file needs the same number of choices");
    const std::string answer = trimAscii(r.fields.back());
    const bool ok = answer.size() == 1 && answer[0] >= 'A' && answer[0] < 'A' + nChoices;
    MOE_CHECK(ok, path, ":", r.line, ": field ", cols, " (answer) is ", quoted(r.fields.back()),
              "; expected one of the letters ", allowedLetters(nChoices), " (the file has ", nChoices,
              " choices per row)");
    if (r.strayQuote)
      logWarn(path, ":", r.line, ": a quote inside an unquoted field is kept as a literal character (as pandas "
              "reads it); the field should be quoted, with the quote doubled");
    Question q;
    q.subject = subject;
    q.split = split;
    q.index = static_cast<int64_t>(i);
    q.line = r.line;
    q.question = r.fields[0];
    q.choices.assign(r.fields.begin() + 1, r.fields.end() - 1);
    q.gold = answer[0] - 'A';
    out.push_back(std::move(q));
  }
  return out;
}

MmluDataset loadMmlu(const std::string& root, const std::string& split, const std::vector<std::string>& subjects,
                     int64_t limitPerSubject, int shots) {
  MOE_CHECK(split == "test" || split == "val" || split == "dev", "unknown split '", split,
            "': expected test, val or dev");
  MOE_CHECK(limitPerSubject >= 0, "limit per subject must be >= 0, got ", limitPerSubject);
  MOE_CHECK(shots >= 0, "shots must be >= 0, got ", shots);
  MOE_CHECK(!root.empty(), "no MMLU data root given (--data DIR): expected ", kLayout);
  MOE_CHECK(isDirectory(root), "MMLU data root ", root, " is not a directory: expected ", kLayout);

  fs::path dir;
  for (const fs::path& candidate : {fs::path(root), fs::path(root) / "data"})
    if (isDirectory(candidate / split)) {
      dir = candidate;
      break;
    }
  MOE_CHECK(!dir.empty(), "no '", split, "' folder in MMLU data root ", root, ": expected ", kLayout);

  const fs::path splitDir = dir / split;
  const std::vector<std::string> found = discoverSubjects(splitDir, split);
  MOE_CHECK(!found.empty(), "no subjects in MMLU data root ", root, ": ", splitDir.string(),
            " holds no <subject>_", split, ".csv file; expected ", kLayout);

  std::vector<std::string> wanted;
  if (subjects.empty()) {
    wanted = found;
  } else {
    std::set<std::string> unique(subjects.begin(), subjects.end());
    for (const auto& s : unique)
      MOE_CHECK(std::binary_search(found.begin(), found.end(), s), "unknown subject '", s, "' (--subjects): ",
                splitDir.string(), " has no ", s, "_", split, ".csv; subjects found: ", joinNames(found));
    wanted.assign(unique.begin(), unique.end());
  }

  std::string fewShots;  // subjects with fewer dev examples than shots, for one warning
  MmluDataset ds;
  ds.root = root;
  ds.dir = dir.string();
  ds.split = split;
  for (const auto& name : wanted) {
    SubjectData sd;
    sd.info = classifySubject(name);
    if (!sd.info.known)
      logInfo("subject '", name, "' is not one of the 57 MMLU subjects: reported in category 'other'");
    sd.evalFile = (splitDir / (name + "_" + split + ".csv")).string();
    sd.eval = readMmluFile(sd.evalFile, name, split);
    sd.evalRows = static_cast<int64_t>(sd.eval.size());

    const fs::path devPath = dir / "dev" / (name + "_dev.csv");
    if (split == "dev") {
      sd.devFile = sd.evalFile;
      sd.dev = sd.eval;
    } else if (isFile(devPath)) {
      sd.devFile = devPath.string();
      sd.dev = readMmluFile(sd.devFile, name, "dev");
    } else {
      MOE_CHECK(shots == 0, "subject '", name, "' has no dev file ", devPath.string(), ": the ", shots,
                " few-shot example(s) per prompt (--shots) come from it; add the file or use --shots 0");
    }
    if (!sd.dev.empty() && !sd.eval.empty())
      MOE_CHECK(sd.dev.front().choices.size() == sd.eval.front().choices.size(), sd.devFile, ":",
                sd.dev.front().line, ": dev rows have ", sd.dev.front().choices.size(), " choices but ",
                sd.evalFile, " has ", sd.eval.front().choices.size(), "; a subject's files must agree");
    // Evaluating dev itself, a question is never its own example: one fewer row is available.
    const size_t available = split == "dev" ? sd.dev.size() - 1 : sd.dev.size();
    if (shots > 0 && available < static_cast<size_t>(shots))
      fewShots += str(fewShots.empty() ? "" : ", ", name, " (", available, ")");

    if (limitPerSubject > 0 && sd.evalRows > limitPerSubject) sd.eval.resize(static_cast<size_t>(limitPerSubject));
    for (const auto* qs : {&sd.eval, &sd.dev})
      for (const auto& q : *qs) ds.maxChoices = std::max(ds.maxChoices, static_cast<int>(q.choices.size()));
    ds.subjects.push_back(std::move(sd));
  }
  if (!fewShots.empty())
    logWarn("fewer dev examples than --shots ", shots,
            split == "dev" ? " (a dev question is never its own example)" : "", " for: ", fewShots,
            "; their prompts use the examples there are");
  return ds;
}

MmluDataset loadMmlu(const RunConfig& cfg) {
  return loadMmlu(cfg.data, cfg.split, cfg.subjects, cfg.limit, cfg.shots);
}

}  // namespace moe
