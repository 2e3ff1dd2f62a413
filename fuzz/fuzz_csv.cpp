// libFuzzer target for the CSV reader and the MMLU row checks.
// moe::Error is the expected outcome for bad input; anything else (crash, sanitizer report, other
// exception, a broken invariant below) is a bug. Each input is parsed strictly and with
// literalStrayQuotes (which must agree wherever strict parsing succeeds); the records are written
// back as RFC 4180 (every field quoted) and must parse to the same fields; then they go through
// the MMLU row checks, whose questions must agree with the records.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "coordinator/csv.h"
#include "coordinator/mmlu.h"

namespace {

std::string writeCsv(const std::vector<moe::CsvRecord>& records) {
  std::string out;
  for (const auto& r : records) {
    for (size_t i = 0; i < r.fields.size(); ++i) {
      if (i) out += ',';
      out += '"';
      for (char c : r.fields[i]) {
        if (c == '"') out += '"';
        out += c;
      }
      out += '"';
    }
    out += '\n';
  }
  return out;
}

bool sameRecords(const std::vector<moe::CsvRecord>& a, const std::vector<moe::CsvRecord>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].fields != b[i].fields) return false;
  return true;
}

}  // namespace

// Stray-quote warnings from mmluQuestions would flood the fuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  moe::setLogLevel(moe::LogLevel::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  moe::CsvOptions lenient;
  lenient.literalStrayQuotes = true;
  std::vector<moe::CsvRecord> strict, records;
  bool strictOk = true;
  try {
    strict = moe::parseCsv(text, "fuzz.csv");
  } catch (const moe::Error&) {
    strictOk = false;
  }
  try {
    records = moe::parseCsv(text, "fuzz.csv", lenient);
  } catch (const moe::Error&) {
    if (strictOk) __builtin_trap();  // leniency never rejects what strict parsing accepts
    return 0;
  }
  if (strictOk) {
    if (!sameRecords(strict, records)) __builtin_trap();
    for (const auto& r : records)
      if (r.strayQuote) __builtin_trap();
  }
  // Invariants: at least one record, each with a field; lines start at 1 and increase; no more
  // field bytes than input bytes.
  if (records.empty()) __builtin_trap();
  size_t lines = 1, bytes = 0, prevLine = 0;
  for (char c : text) lines += c == '\n';
  for (const auto& r : records) {
    if (r.fields.empty() || r.fields.size() > moe::kMaxCsvFields) __builtin_trap();
    if (r.line <= prevLine || r.line > lines) __builtin_trap();
    prevLine = r.line;
    for (const auto& f : r.fields) bytes += f.size();
  }
  if (bytes > size) __builtin_trap();

  // What was read is written back with every field quoted and must read the same, strictly.
  std::vector<moe::CsvRecord> again;
  try {
    again = moe::parseCsv(writeCsv(records), "fuzz-roundtrip.csv");
  } catch (const moe::Error&) {
    __builtin_trap();
  }
  if (!sameRecords(again, records)) __builtin_trap();

  try {
    const std::vector<moe::Question> qs = moe::mmluQuestions(records, "fuzz.csv", "fuzz", "test");
    if (qs.size() != records.size()) __builtin_trap();
    for (size_t i = 0; i < qs.size(); ++i) {
      const auto& q = qs[i];
      if (q.choices.size() < 2 || q.choices.size() + 2 != records[i].fields.size()) __builtin_trap();
      if (q.gold < 0 || q.gold >= static_cast<int>(q.choices.size())) __builtin_trap();
      if (q.question != records[i].fields[0] || q.line != records[i].line) __builtin_trap();
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
