// CSV reader (RFC 4180) for the MMLU files.
//
// Fields are separated by commas; a field that starts with `"` is quoted and may hold commas,
// line breaks and doubled quotes (`""` -> `"`); records end at CRLF or LF. The text must be
// UTF-8 (a leading byte order mark is skipped). Quoted content is kept byte for byte, including
// a CRLF inside it (MMLU has some). Blank lines between records are skipped, as pandas does, so a
// file ending in an extra newline reads the same. Records may have different field counts: the
// caller checks the shape it needs, with the record's line for its message.
//
// Strict where leniency would silently change a question: an unterminated quote, a quote inside
// an unquoted field, text after a closing quote, a bare CR outside quotes, invalid UTF-8 and a
// file without records are errors naming `file:line` (the line where the record starts; for
// invalid UTF-8 the line of the bad byte). The parser is fuzzed (fuzz/fuzz_csv.cpp).
//
// One leniency is available on request (CsvOptions::literalStrayQuotes): a quote inside an
// unquoted field read as a literal character, as Python's csv module and pandas read it. The
// real MMLU needs it: val/college_medicine_val.csv line 6 ends its question with a stray quote,
// and evaluate.py (pandas) keeps that quote in the prompt. Records read this way are marked.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

struct CsvRecord {
  std::vector<std::string> fields;
  size_t line = 0;          // 1-based line where the record starts
  bool strayQuote = false;  // a quote inside an unquoted field was kept (CsvOptions::literalStrayQuotes)
};

struct CsvOptions {
  bool literalStrayQuotes = false;  // default: a quote inside an unquoted field is an error
};

constexpr size_t kMaxCsvFileBytes = size_t{256} << 20;  // MMLU's largest file is about 2 MB
constexpr size_t kMaxCsvFields = 4096;                  // per record; MMLU has 6

// Parses `text`; `fileName` is used only in error messages. A record with more than kMaxCsvFields
// fields is an error (a bound on memory for a hostile file).
std::vector<CsvRecord> parseCsv(std::string_view text, const std::string& fileName, const CsvOptions& options = {});

// Reads and parses the file at `path`; a file larger than kMaxCsvFileBytes is refused.
std::vector<CsvRecord> readCsvFile(const std::string& path, const CsvOptions& options = {});

}  // namespace moe
