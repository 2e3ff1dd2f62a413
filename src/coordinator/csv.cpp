#include "coordinator/csv.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/error.h"
#include "common/utf8.h"

namespace moe {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

std::string hexByte(unsigned char c) {
  static const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[c >> 4] + digits[c & 15];
}

// How a character is shown in a message: printable ASCII as itself, anything else as a byte.
std::string showChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return str("'", c, "'");
  return str("byte ", hexByte(u));
}

// " (on line N)" when the problem is not on the record's first line.
std::string onLine(size_t recordLine, size_t line) {
  return line == recordLine ? std::string() : str(" (on line ", line, ")");
}

}  // namespace

std::vector<CsvRecord> parseCsv(std::string_view text, const std::string& fileName, const CsvOptions& options) {
  size_t pos = text.substr(0, kBom.size()) == kBom ? kBom.size() : 0;
  const size_t bad = findInvalidUtf8(text.substr(pos));
  if (bad != kUtf8Valid) {
    const size_t at = pos + bad;
    size_t line = 1, lineStart = 0;
    for (size_t i = 0; i < at; ++i)
      if (text[i] == '\n') ++line, lineStart = i + 1;
    MOE_THROW(fileName, ":", line, ": invalid UTF-8: byte ", hexByte(static_cast<unsigned char>(text[at])),
              " at column ", at - lineStart + 1, " does not start a valid sequence (the file must be UTF-8)");
  }

  std::vector<CsvRecord> records;
  const size_t n = text.size();
  size_t line = 1;
  auto atLineEnd = [&](size_t p) { return text[p] == '\n' || (text[p] == '\r' && p + 1 < n && text[p + 1] == '\n'); };
  while (pos < n) {
    if (atLineEnd(pos)) {  // blank line between records
      pos += text[pos] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    CsvRecord rec;
    rec.line = line;
    for (;;) {
      const size_t fieldNo = rec.fields.size() + 1;
      MOE_CHECK(fieldNo <= kMaxCsvFields, fileName, ":", rec.line, ": record has more than ", kMaxCsvFields,
                " fields");
      std::string field;
      if (pos < n && text[pos] == '"') {
        ++pos;
        for (;;) {
          MOE_CHECK(pos < n, fileName, ":", rec.line, ": unterminated quoted field ", fieldNo,
                    ": the quote that opens it is never closed before the end of the file");
          const size_t quote = text.find('"', pos);
          const size_t end = quote == std::string_view::npos ? n : quote;
          for (size_t i = pos; i < end; ++i)
            if (text[i] == '\n') ++line;
          field.append(text.data() + pos, end - pos);
          pos = end;
          if (pos == n) continue;  // reports the unterminated quote
          if (pos + 1 < n && text[pos + 1] == '"') {
            field += '"';
            pos += 2;
            continue;
          }
          ++pos;  // the closing quote
          break;
        }
        MOE_CHECK(pos == n || text[pos] == ',' || atLineEnd(pos), fileName, ":", rec.line, ": unexpected ",
                  showChar(text[pos]), " after the closing quote of field ", fieldNo, onLine(rec.line, line),
                  ": expected a comma or the end of the line (a quote inside a quoted field is written \"\")");
      } else {
        const size_t start = pos;
        for (; pos < n && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r'; ++pos) {
          if (text[pos] != '"') continue;
          MOE_CHECK(options.literalStrayQuotes, fileName, ":", rec.line, ": stray quote inside unquoted field ",
                    fieldNo, onLine(rec.line, line),
                    ": a field that contains quotes must be enclosed in quotes, with each inner quote doubled");
          rec.strayQuote = true;
        }
        MOE_CHECK(pos == n || text[pos] != '\r' || atLineEnd(pos), fileName, ":", rec.line,
                  ": carriage return not followed by a line feed in field ", fieldNo, onLine(rec.line, line),
                  ": lines must end in LF or CRLF");
        field.assign(text.data() + start, pos - start);
      }
      rec.fields.push_back(std::move(field));
      if (pos == n) break;
      if (text[pos] == ',') {
        ++pos;
        continue;
      }
      pos += text[pos] == '\r' ? 2 : 1;  // the line end checked above
      ++line;
      break;
    }
    records.push_back(std::move(rec));
  }
  MOE_CHECK(!records.empty(), fileName, ":1: empty CSV file: no records (expected one record per line)");
  return records;
}

std::vector<CsvRecord> readCsvFile(const std::string& path, const CsvOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) MOE_THROW("cannot read CSV file ", path, ": ", std::strerror(errno));
  MOE_CHECK(S_ISREG(st.st_mode), "cannot read CSV file ", path, ": not a regular file");
  MOE_CHECK(static_cast<uint64_t>(st.st_size) <= kMaxCsvFileBytes, "CSV file ", path, " has ", st.st_size,
            " bytes, more than the limit of ", kMaxCsvFileBytes, " bytes");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) MOE_THROW("cannot open CSV file ", path, ": ", std::strerror(errno));
  std::string text(static_cast<size_t>(st.st_size), '\0');
  const size_t got = text.empty() ? 0 : std::fread(text.data(), 1, text.size(), f.get());
  MOE_CHECK(got == text.size(), "cannot read CSV file ", path, ": read ", got, " of ", text.size(), " bytes");
  return parseCsv(text, path, options);
}

}  // namespace moe
