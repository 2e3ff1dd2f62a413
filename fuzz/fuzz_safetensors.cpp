// libFuzzer target for the safetensors header parser and the tensor readers.
// Parses the input as a whole file image, then converts every tensor of a readable dtype (bounded
// to 1M elements) through SafetensorsWeights::readF32 and touches rawData, so a header that passes
// the checks but points outside the data section shows up as an ASan report. moe::Error is the
// expected outcome for bad input; anything else (crash, sanitizer report, other exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "worker/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::vector<moe::SafetensorsFile> files;
    files.push_back(moe::SafetensorsFile::parse(data, size, "fuzz.safetensors"));
    moe::SafetensorsWeights weights("fuzz", std::move(files));
    std::vector<float> buf;
    for (const std::string& name : weights.names()) {
      const moe::SafetensorsTensor& t = weights.tensor(name);
      // Every tensor's bytes must lie inside the input, whatever its dtype.
      const size_t bytes = static_cast<size_t>(t.end - t.begin);
      if (bytes > 0 && (t.data < data || t.data + bytes > data + size)) __builtin_trap();
      if (t.numel > (int64_t{1} << 20)) continue;
      if (!weights.has(name)) __builtin_trap();
      try {
        const moe::TensorMeta& m = weights.meta(name);
        if (moe::numel(m.shape) != t.numel) __builtin_trap();
        buf.assign(static_cast<size_t>(t.numel), 0.0f);
        weights.readF32(name, buf.data());
        volatile unsigned char sink = 0;
        if (bytes > 0) sink = static_cast<const unsigned char*>(weights.rawData(name))[bytes - 1];
        (void)sink;
      } catch (const moe::Error&) {
        // Not a weight dtype (I64, BOOL, ...): meta/readF32/rawData refuse it.
      }
    }
  } catch (const moe::Error&) {
  }
  return 0;
}
