#include <gtest/gtest.h>

#include "common/utf8.h"

TEST(Utf8, ValidAndInvalid) {
  EXPECT_EQ(moe::findInvalidUtf8("plain ascii"), moe::kUtf8Valid);
  EXPECT_EQ(moe::findInvalidUtf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"), moe::kUtf8Valid);
  EXPECT_EQ(moe::findInvalidUtf8("ab\xFF"), 2u);
  EXPECT_EQ(moe::findInvalidUtf8("a\xC0\xAF"), 1u);        // overlong '/'
  EXPECT_EQ(moe::findInvalidUtf8("a\xED\xA0\x80"), 1u);    // surrogate
  EXPECT_EQ(moe::findInvalidUtf8("abc\xE4\xB8"), 3u);      // truncated
  EXPECT_EQ(moe::findInvalidUtf8("\xF4\x90\x80\x80"), 0u); // > U+10FFFF
}

TEST(Utf8, EncodeDecodeRoundTrip) {
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u, 0x10FFFFu}) {
    std::string s;
    moe::appendUtf8(s, cp);
    size_t len = 0;
    EXPECT_EQ(moe::decodeUtf8(s, 0, len), static_cast<int32_t>(cp));
    EXPECT_EQ(len, s.size());
  }
}
