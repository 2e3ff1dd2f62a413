// CSV reader: RFC 4180 cases and every malformed input naming file:line.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "coordinator/csv.h"
#include "test_util.h"

using moe::test::errorOf;

using moe::CsvRecord;
using moe::parseCsv;

namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows fieldsOf(const std::vector<CsvRecord>& recs) {
  Rows r;
  for (const auto& rec : recs) r.push_back(rec.fields);
  return r;
}

std::vector<size_t> linesOf(const std::vector<CsvRecord>& recs) {
  std::vector<size_t> v;
  for (const auto& rec : recs) v.push_back(rec.line);
  return v;
}


std::string parseError(const std::string& text) {
  return errorOf([&] { parseCsv(text, "f.csv"); });
}

}  // namespace

TEST(Csv, PlainRecords) {
  const auto recs = parseCsv("a,b,c\nd,e,f\n", "f.csv");
  EXPECT_EQ(fieldsOf(recs), (Rows{{"a", "b", "c"}, {"d", "e", "f"}}));
  EXPECT_EQ(linesOf(recs), (std::vector<size_t>{1, 2}));
}

TEST(Csv, TrailingNewlineOrNot) {
  EXPECT_EQ(fieldsOf(parseCsv("a,b\nc,d", "f.csv")), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(fieldsOf(parseCsv("a,b\nc,d\n", "f.csv")), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(fieldsOf(parseCsv("a,b\r\nc,d\r\n", "f.csv")), (Rows{{"a", "b"}, {"c", "d"}}));
}

TEST(Csv, EmbeddedCommasAndDoubledQuotes) {
  const auto recs = parseCsv("\"x, y\",\"say \"\"hi\"\"\",\"\"\"\",plain\n", "f.csv");
  EXPECT_EQ(fieldsOf(recs), (Rows{{"x, y", "say \"hi\"", "\"", "plain"}}));
}

TEST(Csv, NewlinesInsideQuotesKeepLineNumbers) {
  const auto recs = parseCsv("\"line one\nline two\r\nline three\",b\nnext,row\n", "f.csv");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].fields[0], "line one\nline two\r\nline three");  // quoted content kept byte for byte
  EXPECT_EQ(recs[0].fields[1], "b");
  EXPECT_EQ(linesOf(recs), (std::vector<size_t>{1, 4}));
}

TEST(Csv, CrlfLineEnds) {
  const auto recs = parseCsv("a,\"b\"\r\n\"c\",d\r\n", "f.csv");
  EXPECT_EQ(fieldsOf(recs), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(linesOf(recs), (std::vector<size_t>{1, 2}));
}

TEST(Csv, LeadingBomSkippedOnlyAtStart) {
  EXPECT_EQ(fieldsOf(parseCsv("\xEF\xBB\xBFq,a\n", "f.csv")), (Rows{{"q", "a"}}));
  EXPECT_EQ(fieldsOf(parseCsv("\xEF\xBB\xBF\"q\",a\n", "f.csv")), (Rows{{"q", "a"}}));
  // A BOM character later in the file is ordinary text.
  EXPECT_EQ(fieldsOf(parseCsv("q,\xEF\xBB\xBF" "a\n", "f.csv")), (Rows{{"q", "\xEF\xBB\xBF" "a"}}));
}

TEST(Csv, EmptyFields) {
  EXPECT_EQ(fieldsOf(parseCsv(",,\n\"\",x,\n", "f.csv")), (Rows{{"", "", ""}, {"", "x", ""}}));
  EXPECT_EQ(fieldsOf(parseCsv("a,", "f.csv")), (Rows{{"a", ""}}));
  EXPECT_EQ(fieldsOf(parseCsv("\"\"", "f.csv")), (Rows{{""}}));
}

TEST(Csv, BlankLinesBetweenRecordsAreSkipped) {
  const auto recs = parseCsv("a,b\n\n\r\nc,d\n\n", "f.csv");
  EXPECT_EQ(fieldsOf(recs), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(linesOf(recs), (std::vector<size_t>{1, 4}));
}

TEST(Csv, Utf8TextKept) {
  EXPECT_EQ(fieldsOf(parseCsv("Ren\xC3\xA9,\"\xE2\x80\x9Cquoted\xE2\x80\x9D, yes\"\n", "f.csv")),
            (Rows{{"Ren\xC3\xA9", "\xE2\x80\x9Cquoted\xE2\x80\x9D, yes"}}));
}

TEST(Csv, UnterminatedQuoteNamesRecordLine) {
  const std::string e = parseError("a,b\nc,\"open\nstill open\n");
  EXPECT_NE(e.find("f.csv:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("unterminated quoted field 2"), std::string::npos) << e;
}

TEST(Csv, StrayQuoteInUnquotedField) {
  const std::string e = parseError("a,b\nc,d\"e,f\n");
  EXPECT_NE(e.find("f.csv:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("stray quote inside unquoted field 2"), std::string::npos) << e;
}

TEST(Csv, StrayQuoteKeptOnRequest) {
  moe::CsvOptions lenient;
  lenient.literalStrayQuotes = true;
  const auto recs = parseCsv("a,b\nc,d\"e\",f\n\"g\",h\n", "f.csv", lenient);
  EXPECT_EQ(fieldsOf(recs), (Rows{{"a", "b"}, {"c", "d\"e\"", "f"}, {"g", "h"}}));
  EXPECT_FALSE(recs[0].strayQuote);
  EXPECT_TRUE(recs[1].strayQuote);
  EXPECT_FALSE(recs[2].strayQuote);
  // Only a quote inside an unquoted field is forgiven: text after a closing quote is still an error.
  const std::string e = errorOf([&] { parseCsv("\"ab\"c\n", "f.csv", lenient); });
  EXPECT_NE(e.find("f.csv:1: unexpected 'c' after the closing quote"), std::string::npos) << e;
}

TEST(Csv, TextAfterClosingQuote) {
  const std::string e = parseError("x\n\"ab\"c,d\n");
  EXPECT_NE(e.find("f.csv:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("unexpected 'c' after the closing quote of field 1"), std::string::npos) << e;
  // The record starts on line 1; the problem is on line 2.
  const std::string e2 = parseError("\"a\nb\" ,c\n");
  EXPECT_NE(e2.find("f.csv:1:"), std::string::npos) << e2;
  EXPECT_NE(e2.find("(on line 2)"), std::string::npos) << e2;
}

TEST(Csv, BareCarriageReturn) {
  const std::string e = parseError("a,b\rc,d\n");
  EXPECT_NE(e.find("f.csv:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("carriage return"), std::string::npos) << e;
}

TEST(Csv, EmptyFile) {
  for (const std::string text : {"", "\xEF\xBB\xBF", "\n\n", "\r\n"}) {
    const std::string e = parseError(text);
    EXPECT_NE(e.find("f.csv:1: empty CSV file"), std::string::npos) << e;
  }
}

TEST(Csv, InvalidUtf8NamesLineOfBadByte) {
  const std::string e = parseError("a,b\n\"multi\nline \xFF field\",c\n");
  EXPECT_NE(e.find("f.csv:3: invalid UTF-8: byte 0xFF at column 6"), std::string::npos) << e;
  const std::string e2 = parseError("\xC3\x28,x\n");  // a lead byte without its continuation
  EXPECT_NE(e2.find("f.csv:1: invalid UTF-8: byte 0xC3 at column 1"), std::string::npos) << e2;
}

TEST(Csv, TooManyFields) {
  const std::string text(moe::kMaxCsvFields, ',');  // kMaxCsvFields + 1 fields
  const std::string e = parseError(text);
  EXPECT_NE(e.find("f.csv:1: record has more than"), std::string::npos) << e;
  EXPECT_EQ(parseCsv(std::string(moe::kMaxCsvFields - 1, ','), "f.csv").front().fields.size(), moe::kMaxCsvFields);
}

TEST(Csv, ReadFile) {
  char name[] = "/tmp/moe_csv_XXXXXX";
  const int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(name, std::ios::binary) << "q,\"a, b\"\r\nr,s";
  const auto recs = moe::readCsvFile(name);
  EXPECT_EQ(fieldsOf(recs), (Rows{{"q", "a, b"}, {"r", "s"}}));
  std::ofstream(name, std::ios::binary) << "";
  const std::string e = errorOf([&] { moe::readCsvFile(name); });
  EXPECT_NE(e.find(std::string(name) + ":1: empty CSV file"), std::string::npos) << e;
  std::remove(name);
  const std::string missing = errorOf([&] { moe::readCsvFile(name); });
  EXPECT_NE(missing.find(std::string("cannot read CSV file ") + name), std::string::npos) << missing;
  const std::string dir = errorOf([] { moe::readCsvFile("/tmp"); });
  EXPECT_NE(dir.find("not a regular file"), std::string::npos) << dir;
}
