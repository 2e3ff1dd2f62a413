// moe_results_synth: writes a synthetic results file through ResultsWriter, for the CLI, h5dump
// and h5py tests.
//   moe_results_synth OUT [--experts N] [--mode mean|weighted] [--scoring letters|vocab]
//                         [--space full-vocabulary|answer-letters] [--batch B]
//                         [--partial K]   write only the first K rows and leave the file running
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"
#include "test_results_synthetic.h"

int main(int argc, char** argv) {
  try {
    MOE_CHECK(argc >= 2, "usage: moe_results_synth OUT [options]");
    const std::string out = argv[1];
    moe::testing::SyntheticOptions o;
    size_t batch = 5;
    long partial = -1;
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      MOE_CHECK(i + 1 < argc, "option ", a, ": expected a value");
      const std::string v = argv[++i];
      if (a == "--experts") o.experts = std::atoi(v.c_str());
      else if (a == "--mode") o.mode = v;
      else if (a == "--scoring") o.scoring = v;
      else if (a == "--space") o.mixtureSpace = v;
      else if (a == "--batch") batch = static_cast<size_t>(std::atoi(v.c_str()));
      else if (a == "--partial") partial = std::atol(v.c_str());
      else MOE_THROW("unknown option ", a);
    }
    MOE_CHECK(o.experts >= 1 && batch >= 1, "need --experts >= 1 and --batch >= 1");
    auto rows = moe::testing::syntheticRows(o);
    if (partial >= 0 && static_cast<size_t>(partial) < rows.size()) rows.resize(static_cast<size_t>(partial));
    auto writer = moe::ResultsWriter::create(out, moe::testing::syntheticHeader(o), true);
    for (size_t i = 0; i < rows.size(); i += batch)
      writer.append(std::vector<moe::QuestionResult>(rows.begin() + i, rows.begin() + std::min(rows.size(), i + batch)));
    if (partial < 0) writer.finish();
    std::printf("wrote %zu rows to %s%s\n", rows.size(), out.c_str(), partial < 0 ? "" : " (partial)");
    return 0;
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "moe_results_synth: error: %s\n", e.what());
    return 1;
  }
}
