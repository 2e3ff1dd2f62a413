// Fuzz target: the input bytes as the text of a tokenizer.json. If a tokenizer builds from them,
// it must encode and decode a fixed text; every problem must end in moe::Error, never a crash,
// a sanitizer report, a hang or unbounded memory.
//   CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja && cmake --build build-fuzz --target fuzz_tokenizer_json
//   build-fuzz/fuzz_tokenizer_json fuzz/corpus/tokenizer_json
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/log.h"
#include "worker/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    moe::setLogLevel(moe::LogLevel::Error);  // mismatched added-token ids are warnings
    return true;
  }();
  (void)quiet;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto tok = moe::Tokenizer::fromJsonString(text, "fuzz/tokenizer.json");
    static const std::string kSample =
        "Hello  world!\n\tThe answer is 42: don't <s> caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x98\x80 \xFF";
    const auto ids = tok->encode(kSample, true);
    (void)tok->decode(ids, false);
    (void)tok->decode(ids, true);
    for (int32_t id : ids) (void)tok->pieceText(id);
    (void)tok->vocabSize();
  } catch (const moe::Error&) {
  }
  return 0;
}
