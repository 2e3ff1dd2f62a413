#include "worker/tokenize_command.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "worker/gguf_tokenizer.h"
#include "worker/tokenizer.h"

namespace moe {
namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::unique_ptr<Tokenizer> loadTokenizer(const std::string& model) {
  MOE_CHECK(!model.empty(), "tokenize: --model is required (a model folder with tokenizer.json, or a .gguf file)");
  if (endsWith(model, ".gguf")) return tokenizerFromGguf(model);
  if (endsWith(model, ".json")) return Tokenizer::fromFile(model);
  return Tokenizer::fromModelFolder(model);
}

std::vector<std::string> inputs(const RunConfig& cfg) {
  MOE_CHECK(cfg.text.empty() || cfg.textFile.empty(), "tokenize: give either --text or --file, not both");
  if (!cfg.textFile.empty()) {
    std::ifstream in(cfg.textFile, std::ios::binary);
    MOE_CHECK(in, "tokenize: --file '", cfg.textFile, "': cannot open");
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    MOE_CHECK(!in.bad(), "tokenize: --file '", cfg.textFile, "': read error");
    return lines;
  }
  MOE_CHECK(!cfg.text.empty(), "tokenize: give the text with --text T or a file of lines with --file F");
  return {cfg.text};
}

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

int runTokenizeCommand(const RunConfig& cfg) {
  const auto tokenizer = loadTokenizer(cfg.model);
  for (const std::string& text : inputs(cfg)) {
    const std::vector<int32_t> ids = tokenizer->encode(text, true);
    std::string out;
    if (cfg.json) {
      nlohmann::json arr = nlohmann::json::array();
      for (int32_t id : ids) arr.push_back({{"id", id}, {"piece", tokenizer->pieceText(id)}});
      out = arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      std::ostringstream os;
      os << "ids:";
      for (int32_t id : ids) os << ' ' << id;
      os << "\npieces:";
      for (int32_t id : ids) os << ' ' << quoted(tokenizer->pieceText(id));
      os << '\n';
      out = os.str();
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace moe
