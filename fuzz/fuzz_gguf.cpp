// libFuzzer target for the GGUF reader: parses the input as a GGUF file image and, when it parses,
// reads every metadata value through the typed accessors and dequantizes every tensor of a
// supported type (up to a bounded number of elements, so a valid header describing gigabytes
// does not make the fuzzer slow). A moe::Error is the expected outcome for bad input; anything else
// (a crash, a sanitizer report, another exception) is a finding.
//   bash fuzz/run.sh build-fuzz-gguf 300      (seeds: fuzz/corpus/gguf)
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "worker/dequantize.h"
#include "worker/gguf.h"

namespace {
constexpr int64_t kMaxElements = int64_t{1} << 20;

void touchMetadata(const moe::GgufFile& f) {
  for (const moe::GgufValue& v : f.metadata()) {
    for (uint64_t i = 0; i < v.count() && i < 64; ++i) {
      try {
        switch (v.elementType()) {
          case moe::GgufType::String: (void)v.stringAt(i).size(); break;
          case moe::GgufType::Bool: (void)v.boolAt(i); break;
          case moe::GgufType::Float32:
          case moe::GgufType::Float64: (void)v.floatAt(i); break;
          default: (void)v.intAt(i); (void)v.uintAt(i);
        }
      } catch (const moe::Error&) {
        // uint64 above INT64_MAX, or a negative value read as unsigned
      }
    }
  }
  for (const char* key : {"general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.tokens"}) {
    try {
      if (f.has(key)) (void)f.getString(key);
    } catch (const moe::Error&) {
    }
    try {
      if (f.has(key)) (void)f.getStringArray(key).size();
    } catch (const moe::Error&) {
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    moe::GgufWeights w(moe::GgufFile::parse(data, size, "fuzz.gguf"));
    touchMetadata(w.gguf());
    std::vector<float> out;
    for (const moe::GgufTensorInfo& t : w.gguf().tensors()) {
      const moe::GgmlType* type = moe::ggmlType(t.type);
      if (!type || !type->supported) {
        try {
          w.readF32(t.name, nullptr);  // must throw naming the type, before touching `out`
          __builtin_trap();
        } catch (const moe::Error&) {
        }
        continue;
      }
      if (t.numel > kMaxElements) continue;
      out.assign(static_cast<size_t>(t.numel), 0.0f);
      w.readF32(t.name, out.data());
      (void)w.rawData(t.name);
      if (moe::storageBytes(type->storage, t.numel) != static_cast<int64_t>(t.bytes)) __builtin_trap();
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
