#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <sstream>

#include "common/error.h"

namespace moe {
namespace {

enum class Kind { Flag, String, Int, Double, StringList, DoubleList };

using Setter = std::function<void(RunConfig&, const std::vector<std::string>&, const std::string& where)>;
using Getter = std::function<std::string(const RunConfig&)>;  // YAML text of the value

struct OptionDef {
  const char* name;  // kebab-case, as on the command line without "--"
  Kind kind;
  const char* metavar;
  const char* help;
  bool yaml;  // may appear in a config file
  Setter set;
  Getter get;
};

std::string yamlKey(const char* name) {
  std::string k(name);
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

const std::string& single(const std::vector<std::string>& v, const std::string& where) {
  MOE_CHECK(v.size() == 1, where, ": expected one value, got ", v.size());
  return v[0];
}

int64_t parseInt(const std::string& s, const std::string& where, int64_t lo, int64_t hi) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  MOE_CHECK(!s.empty() && end && *end == '\0' && errno == 0, where, ": expected an integer, got '", s, "'");
  MOE_CHECK(v >= lo && v <= hi, where, ": ", v, " is out of range [", lo, ", ", hi, "]");
  return v;
}

double parseDouble(const std::string& s, const std::string& where) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  MOE_CHECK(!s.empty() && end && *end == '\0' && errno == 0 && std::isfinite(v), where,
            ": expected a number, got '", s, "'");
  return v;
}

bool parseBool(const std::string& s, const std::string& where) {
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  MOE_THROW(where, ": expected true or false, got '", s, "'");
}

std::string oneOf(const std::string& s, std::initializer_list<const char*> allowed, const std::string& where) {
  std::string list;
  for (const char* a : allowed) {
    if (s == a) return s;
    list += list.empty() ? "" : ", ";
    list += a;
  }
  MOE_THROW(where, ": '", s, "' is not one of: ", list);
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out + "\"";
}

template <typename T>
std::string seq(const std::vector<T>& v) {
  std::ostringstream os;
  os.precision(17);
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) os << ", ";
    if constexpr (std::is_same_v<T, std::string>) os << quote(v[i]); else os << v[i];
  }
  os << "]";
  return os.str();
}

#define STR_OPT(NAME, FIELD, META, HELP, YAML_OK)                                               \
  OptionDef{NAME, Kind::String, META, HELP, YAML_OK,                                           \
            [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) { c.FIELD = single(v, w); }, \
            [](const RunConfig& c) { return quote(c.FIELD); }}
#define CHOICE_OPT(NAME, FIELD, META, HELP, ...)                                                \
  OptionDef{NAME, Kind::String, META, HELP, true,                                              \
            [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {           \
              c.FIELD = oneOf(single(v, w), {__VA_ARGS__}, w);                                  \
            },                                                                                  \
            [](const RunConfig& c) { return quote(c.FIELD); }}
#define INT_OPT(NAME, FIELD, META, HELP, LO, HI)                                                \
  OptionDef{NAME, Kind::Int, META, HELP, true,                                                 \
            [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {           \
              c.FIELD = static_cast<decltype(c.FIELD)>(parseInt(single(v, w), w, LO, HI));      \
            },                                                                                  \
            [](const RunConfig& c) { return std::to_string(c.FIELD); }}
#define FLAG_OPT(NAME, FIELD, HELP, YAML_OK)                                                    \
  OptionDef{NAME, Kind::Flag, "", HELP, YAML_OK,                                               \
            [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {           \
              c.FIELD = v.empty() ? true : parseBool(single(v, w), w);                          \
            },                                                                                  \
            [](const RunConfig& c) { return std::string(c.FIELD ? "true" : "false"); }}

// "~/x" -> "$HOME/x" in path options, so configs can name the model and data caches portably.
std::string expandHome(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  MOE_CHECK(home != nullptr && *home, "cannot expand '", path, "': HOME is not set");
  return std::string(home) + path.substr(1);
}

const std::vector<OptionDef>& optionTable() {
  static const std::vector<OptionDef> table = {
      OptionDef{"models", Kind::StringList, "PATH...",
                "expert models: Hugging Face folders or .gguf files, one rank per expert", true,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  MOE_CHECK(!v.empty(), w, ": expected at least one model path");
                  c.models.clear();
                  for (const auto& m : v) c.models.push_back(expandHome(m));
                },
                [](const RunConfig& c) { return seq(c.models); }},
      OptionDef{"weights", Kind::DoubleList, "W...", "static expert weights (one per model, >= 0)", true,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.weights.clear();
                  for (const auto& s : v) {
                    double x = parseDouble(s, w);
                    MOE_CHECK(x >= 0, w, ": weights must be >= 0, got ", s);
                    c.weights.push_back(x);
                  }
                },
                [](const RunConfig& c) { return seq(c.weights); }},
      CHOICE_OPT("mode", mode, "MODE", "mixture: mean | weighted | geometric", "mean", "weighted", "geometric"),
      CHOICE_OPT("scoring", scoring, "HOW",
                 "letters (argmax over answer letters) | vocab (argmax over the vocabulary)", "letters", "vocab"),
      OptionDef{"data", Kind::String, "DIR", "MMLU root: DIR/{dev,val,test}/<subject>_<split>.csv (or DIR/data/...)",
                true,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.data = expandHome(single(v, w));
                },
                [](const RunConfig& c) { return quote(c.data); }},
      CHOICE_OPT("split", split, "SPLIT", "split to evaluate: test | val | dev", "test", "val", "dev"),
      OptionDef{"subjects", Kind::StringList, "S,...", "subjects to evaluate (comma separated, or all)", true,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.subjects.clear();
                  for (const auto& item : v) {
                    std::stringstream ss(item);
                    std::string s;
                    while (std::getline(ss, s, ',')) {
                      if (s.empty()) continue;
                      if (s == "all") { c.subjects.clear(); return; }
                      c.subjects.push_back(s);
                    }
                  }
                },
                [](const RunConfig& c) { return seq(c.subjects); }},
      INT_OPT("shots", shots, "K", "few-shot examples from the dev split (default 5)", 0, 1000),
      CHOICE_OPT("prompt-style", promptStyle, "STYLE",
                 "original (MMLU's evaluate.py) | harness (lm-evaluation-harness mmlu)", "original", "harness"),
      INT_OPT("limit", limit, "N", "at most N questions per subject (0: all)", 0, std::numeric_limits<int64_t>::max()),
      INT_OPT("max-context", maxContext, "T", "longest prompt in tokens; shots are dropped to fit (0: model's)", 0,
              1 << 24),
      INT_OPT("batch-size", batchSize, "B", "questions per batch (default 8)", 1, 4096),
      CHOICE_OPT("device", device, "DEV", "cpu | cuda", "cpu", "cuda"),
      CHOICE_OPT("dtype", dtype, "T", "auto | fp32 | bf16 | fp16 (auto: fp32 on cpu, bf16 on cuda)", "auto", "fp32",
                 "bf16", "fp16"),
      INT_OPT("threads", threads, "N", "compute threads per rank (0: library default)", 0, 4096),
      CHOICE_OPT("mixture-on", mixtureOn, "WHERE",
                 "auto (on the GPUs, over NCCL, when every expert of a replica group runs on cuda and the build has "
                 "CUDA and NCCL; else on the CPU) | host (always on the CPU: the reference path)",
                 "auto", "host"),
      FLAG_OPT("no-prefix-cache", noPrefixCache,
               "compute every prompt whole instead of computing a batch's shared prompt prefix once", true),
      OptionDef{"gate", Kind::String, "POLICY",
                "per-question expert weights: uniform | static | table | calibrated | entropy | router (YAML: the "
                "`gate:` section)",
                false,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  const std::string p = single(v, w);
                  MOE_CHECK(isGatePolicy(p), w, ": '", p,
                            "' is not one of: uniform, static, table, calibrated, entropy, router");
                  c.gate.policy = p;
                },
                [](const RunConfig& c) { return quote(c.gate.policy); }},
      OptionDef{"gate-top-k", Kind::Int, "K", "gate: keep the K largest weights per question, renormalised (0: all)",
                false,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.gate.topK = static_cast<int>(parseInt(single(v, w), w, 0, 1 << 20));
                },
                [](const RunConfig& c) { return std::to_string(c.gate.topK); }},
      OptionDef{"gate-temperature", Kind::Double, "T", "gate: softmax temperature (entropy, router, calibrate)", false,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  const double t = parseDouble(single(v, w), w);
                  MOE_CHECK(t > 0, w, ": must be > 0, got ", t);
                  c.gate.temperature = t;
                },
                [](const RunConfig& c) { return std::to_string(c.gate.temperature); }},
      OptionDef{"gate-calibration", Kind::String, "FILE",
                "gate calibrated: the labelled run's results file to fit the weights on", false,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.gate.calibrationFile = single(v, w);
                },
                [](const RunConfig& c) { return quote(c.gate.calibrationFile); }},
      OptionDef{"by", Kind::String, "KEY", "calibrate: fit weights per category | subject", false,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.gate.by = oneOf(single(v, w), {"category", "subject"}, w);
                },
                [](const RunConfig& c) { return quote(c.gate.by); }},
      STR_OPT("output", output, "FILE", "HDF5 results file", true),
      FLAG_OPT("resume", resume, "continue an existing results file, skipping questions already written", true),
      FLAG_OPT("overwrite", overwrite, "replace an existing results file", true),
      STR_OPT("config", configFile, "FILE", "YAML file with any of these options (snake_case keys)", false),
      FLAG_OPT("json", json, "machine-readable output (prompts, tokenize)", false),
      OptionDef{"format", Kind::String, "FMT", "report format: text | markdown | csv | json", false,
                [](RunConfig& c, const std::vector<std::string>& v, const std::string& w) {
                  c.format = oneOf(single(v, w), {"text", "markdown", "csv", "json"}, w);
                },
                [](const RunConfig& c) { return quote(c.format); }},
      STR_OPT("model", model, "PATH", "tokenize: the model folder or .gguf file whose tokenizer to use", false),
      STR_OPT("text", text, "T", "tokenize: the text to tokenize", false),
      STR_OPT("file", textFile, "F", "tokenize: a file whose lines to tokenize", false),
  };
  return table;
}

const OptionDef* findOption(const std::string& name) {
  for (const auto& o : optionTable())
    if (name == o.name) return &o;
  return nullptr;
}

std::string knownYamlKeys() {
  std::string s;
  for (const auto& o : optionTable()) {
    if (!o.yaml) continue;
    s += s.empty() ? "" : ", ";
    s += yamlKey(o.name);
  }
  return s + ", gate";
}

void applyYamlNode(RunConfig& cfg, const YAML::Node& root, const std::string& source) {
  if (!root || root.IsNull()) return;  // an empty file configures nothing
  MOE_CHECK(root.IsMap(), source, ":", root.Mark().line + 1, ": expected a mapping of option: value at top level");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const std::string where = str(source, ":", kv.first.Mark().line + 1, ": key '", key, "'");
    if (key == "gate") {
      applyGateYaml(cfg.gate, kv.second, source);
      cfg.givenOptions.push_back("gate");
      continue;
    }
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    const OptionDef* opt = findOption(name);
    MOE_CHECK(opt && opt->yaml, where, ": unknown key (known keys: ", knownYamlKeys(), ")");
    std::vector<std::string> values;
    const YAML::Node& v = kv.second;
    if (v.IsScalar()) {
      values.push_back(v.Scalar());
    } else if (v.IsSequence()) {
      MOE_CHECK(opt->kind == Kind::StringList || opt->kind == Kind::DoubleList, where,
                ": expected a single value, got a list");
      for (const auto& item : v) {
        MOE_CHECK(item.IsScalar(), where, ": list items must be plain values");
        values.push_back(item.Scalar());
      }
    } else if (v.IsNull()) {
      MOE_THROW(where, ": has no value");
    } else {
      MOE_THROW(where, ": expected a value or a list, got a mapping");
    }
    opt->set(cfg, values, where);
    cfg.givenOptions.push_back(opt->name);
  }
}

}  // namespace

bool isValidPromptStyle(const std::string& s) { return s == "original" || s == "harness"; }

void applyYamlString(RunConfig& cfg, const std::string& yaml, const std::string& sourceName) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    MOE_THROW(sourceName, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg);
  }
  applyYamlNode(cfg, root, sourceName);
}

void applyYamlFile(RunConfig& cfg, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    MOE_THROW(path, ": cannot read config file");
  } catch (const YAML::Exception& e) {
    MOE_THROW(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg);
  }
  applyYamlNode(cfg, root, path);
}

RunConfig parseCommandLine(int argc, const char* const* argv, int first) {
  RunConfig cfg;
  // Pass 1: the config file, so that command-line options override it wherever they stand.
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config") {
      MOE_CHECK(i + 1 < argc, "option --config: expected a file name");
      cfg.configFile = argv[i + 1];
    } else if (a.rfind("--config=", 0) == 0) {
      cfg.configFile = a.substr(9);
    }
  }
  if (!cfg.configFile.empty()) applyYamlFile(cfg, cfg.configFile);

  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 3 || a.rfind("--", 0) != 0) {
      MOE_CHECK(a.empty() || a[0] != '-' || a == "-", "unknown option '", a, "' (see --help)");
      cfg.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::vector<std::string> values;
    bool inlineValue = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      values.push_back(name.substr(eq + 1));
      name = name.substr(0, eq);
      inlineValue = true;
    }
    const OptionDef* opt = findOption(name);
    MOE_CHECK(opt, "unknown option '--", name, "' (see --help)");
    const std::string where = "option --" + name;
    if (!inlineValue) {
      if (opt->kind == Kind::Flag) {
        // flags take no value on the command line
      } else if (opt->kind == Kind::StringList || opt->kind == Kind::DoubleList) {
        // Lists take every following argument up to the next option. Negative numbers are values.
        while (i + 1 < argc) {
          std::string next = argv[i + 1];
          bool isOption = next.size() >= 2 && next[0] == '-' && !(std::isdigit(static_cast<unsigned char>(next[1])) || next[1] == '.');
          if (isOption) break;
          values.push_back(next);
          ++i;
        }
      } else {
        MOE_CHECK(i + 1 < argc, where, ": expected a value");
        values.push_back(argv[++i]);
      }
    }
    if (name == "config") continue;  // already applied
    opt->set(cfg, values, where);
    cfg.givenOptions.push_back(opt->name);
  }
  return cfg;
}

std::string toYaml(const RunConfig& cfg) {
  std::string out;
  for (const auto& o : optionTable()) {
    if (!o.yaml) continue;
    out += yamlKey(o.name) + ": " + o.get(cfg) + "\n";
  }
  return out + gateYaml(cfg.gate);
}

std::string optionsHelp() {
  std::string out;
  for (const auto& o : optionTable()) {
    std::string left = std::string("  --") + o.name + (o.metavar[0] ? std::string(" ") + o.metavar : "");
    if (left.size() < 26) left.resize(26, ' '); else left += "  ";
    out += left + o.help + "\n";
  }
  return out;
}

}  // namespace moe
