#include "common/gate_config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "common/error.h"

namespace moe {
namespace {

const char* const kPolicies[] = {"uniform", "static", "table", "calibrated", "entropy", "router", "retrieval"};

std::string where(const std::string& source, const YAML::Node& n, const std::string& key) {
  return str(source, ":", n.Mark().line + 1, ": key '", key, "'");
}

std::string scalar(const YAML::Node& v, const std::string& w) {
  MOE_CHECK(v.IsDefined() && !v.IsNull(), w, ": has no value");
  MOE_CHECK(v.IsScalar(), w, ": expected a single value, got a ", v.IsSequence() ? "list" : "mapping");
  return v.Scalar();
}

double number(const YAML::Node& v, const std::string& w) {
  const std::string s = scalar(v, w);
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  MOE_CHECK(!s.empty() && end && *end == '\0' && errno == 0 && std::isfinite(x), w, ": expected a number, got '", s,
            "'");
  return x;
}

int64_t integer(const YAML::Node& v, const std::string& w, int64_t lo, int64_t hi) {
  const std::string s = scalar(v, w);
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  MOE_CHECK(!s.empty() && end && *end == '\0' && errno == 0, w, ": expected an integer, got '", s, "'");
  MOE_CHECK(x >= lo && x <= hi, w, ": ", x, " is out of range [", lo, ", ", hi, "]");
  return x;
}

std::vector<std::string> strings(const YAML::Node& v, const std::string& w) {
  MOE_CHECK(v.IsSequence(), w, ": expected a list of strings");
  std::vector<std::string> out;
  for (const auto& item : v) out.push_back(scalar(item, w));
  return out;
}

// A row of expert weights: non-negative numbers, not all zero.
std::vector<double> weightRow(const YAML::Node& v, const std::string& w) {
  MOE_CHECK(v.IsSequence() && v.size() > 0, w, ": expected a list of weights, one per expert");
  std::vector<double> out;
  double sum = 0;
  for (const auto& item : v) {
    const double x = number(item, w);
    MOE_CHECK(x >= 0, w, ": weights must be >= 0, got ", x);
    out.push_back(x);
    sum += x;
  }
  MOE_CHECK(sum > 0, w, ": weights must not all be zero");
  return out;
}

std::string oneOf(const std::string& s, std::initializer_list<const char*> allowed, const std::string& w) {
  std::string list;
  for (const char* a : allowed) {
    if (s == a) return s;
    list += list.empty() ? "" : ", ";
    list += a;
  }
  MOE_THROW(w, ": '", s, "' is not one of: ", list);
}

std::string keyName(const YAML::Node& k) {
  std::string s = k.as<std::string>();
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

void applyRouterYaml(RouterConfig& r, const YAML::Node& node, const std::string& source, const std::string& prefix) {
  MOE_CHECK(node.IsMap(), where(source, node, prefix), ": expected a mapping (mode, seed, experts)");
  for (const auto& kv : node) {
    const std::string key = keyName(kv.first);
    const std::string w = where(source, kv.first, prefix + "." + key);
    if (key == "mode") {
      r.mode = oneOf(scalar(kv.second, w), {"hidden", "cheap_embed", "random"}, w);
    } else if (key == "seed") {
      r.seed = static_cast<uint64_t>(integer(kv.second, w, 0, INT64_MAX));
    } else if (key == "experts") {
      MOE_CHECK(kv.second.IsSequence(), w, ": expected a list with one entry per model (positive_prompts, ...)");
      r.experts.clear();
      size_t i = 0;
      for (const auto& e : kv.second) {
        const std::string ew = where(source, e, str(prefix, ".experts[", i, "]"));
        MOE_CHECK(e.IsMap(), ew, ": expected a mapping with positive_prompts (and optional negative_prompts)");
        RouterPrompts p;
        for (const auto& pk : e) {
          const std::string k2 = keyName(pk.first);
          const std::string w2 = where(source, pk.first, str(prefix, ".experts[", i, "].", k2));
          if (k2 == "positive_prompts") {
            p.positive = strings(pk.second, w2);
          } else if (k2 == "negative_prompts") {
            p.negative = strings(pk.second, w2);
          } else if (k2 == "model" || k2 == "source_model") {
            scalar(pk.second, w2);  // a label for the reader (mergekit-moe's source_model); order decides
          } else {
            MOE_THROW(w2, ": unknown key (known: positive_prompts, negative_prompts, model)");
          }
        }
        r.experts.push_back(std::move(p));
        ++i;
      }
    } else {
      MOE_THROW(w, ": unknown key (known: mode, seed, experts)");
    }
  }
}

void applyRetrievalYaml(RetrievalConfig& r, const YAML::Node& node, const std::string& source) {
  MOE_CHECK(node.IsMap(), where(source, node, "gate.retrieval"), ": expected a mapping (neighbours, experts)");
  for (const auto& kv : node) {
    const std::string key = keyName(kv.first);
    const std::string w = where(source, kv.first, "gate.retrieval." + key);
    if (key == "neighbours" || key == "neighbors") {
      r.neighbours = static_cast<int>(integer(kv.second, w, 1, 1 << 20));
    } else if (key == "experts") {
      MOE_CHECK(kv.second.IsSequence(), w, ": expected a list with one entry per model (exemplars, exemplars_file)");
      r.experts.clear();
      size_t i = 0;
      for (const auto& e : kv.second) {
        const std::string ew = where(source, e, str("gate.retrieval.experts[", i, "]"));
        MOE_CHECK(e.IsMap(), ew, ": expected a mapping with exemplars and/or exemplars_file");
        RetrievalExpert x;
        for (const auto& pk : e) {
          const std::string k2 = keyName(pk.first);
          const std::string w2 = where(source, pk.first, str("gate.retrieval.experts[", i, "].", k2));
          if (k2 == "exemplars") {
            x.exemplars = strings(pk.second, w2);
          } else if (k2 == "exemplars_file") {
            x.files = pk.second.IsSequence() ? strings(pk.second, w2) : std::vector<std::string>{scalar(pk.second, w2)};
          } else if (k2 == "model") {
            scalar(pk.second, w2);
          } else {
            MOE_THROW(w2, ": unknown key (known: exemplars, exemplars_file, model)");
          }
        }
        r.experts.push_back(std::move(x));
        ++i;
      }
    } else {
      MOE_THROW(w, ": unknown key (known: neighbours, experts)");
    }
  }
}

void loadTableFile(GateConfig& g, const std::string& path, const std::string& w);

void applyGateMap(GateConfig& g, const YAML::Node& node, const std::string& source, bool allowTableFile) {
  if (!node || node.IsNull()) return;
  MOE_CHECK(node.IsMap(), source, ":", node.Mark().line + 1, ": key 'gate': expected a mapping (policy: ...)");
  if (allowTableFile) g.origin = str(source, ":", node.Mark().line + 1);
  for (const auto& kv : node) {
    const std::string key = keyName(kv.first);
    const std::string w = where(source, kv.first, "gate." + key);
    const YAML::Node& v = kv.second;
    if (key == "policy") {
      const std::string p = scalar(v, w);
      MOE_CHECK(isGatePolicy(p), w, ": '", p, "' is not one of: uniform, static, table, calibrated, entropy, router, retrieval");
      g.policy = p;
    } else if (key == "top_k") {
      g.topK = static_cast<int>(integer(v, w, 0, 1 << 20));
    } else if (key == "temperature") {
      g.temperature = number(v, w);
      MOE_CHECK(g.temperature > 0, w, ": must be > 0, got ", g.temperature);
    } else if (key == "weights") {
      g.weights = weightRow(v, w);
    } else if (key == "by") {
      g.by = oneOf(scalar(v, w), {"category", "subject"}, w);
    } else if (key == "table") {
      MOE_CHECK(v.IsMap(), w, ": expected a mapping of category or subject: [weights, one per expert]");
      g.table.clear();
      for (const auto& row : v) {
        const std::string name = row.first.as<std::string>();
        const std::string rw = where(source, row.first, "gate.table." + name);
        MOE_CHECK(g.table.emplace(name, weightRow(row.second, rw)).second, rw, ": appears twice");
      }
    } else if (key == "default") {
      g.tableDefault = weightRow(v, w);
    } else if (key == "experts") {
      g.tableExperts = strings(v, w);
    } else if (key == "table_file") {
      MOE_CHECK(allowTableFile, w, ": a table file cannot name another table file");
      loadTableFile(g, scalar(v, w), w);
    } else if (key == "fitted_on") {
      MOE_CHECK(v.IsMap(), w, ": expected a mapping (file, split, data_root)");
      for (const auto& f : v) {
        const std::string k2 = keyName(f.first);
        const std::string w2 = where(source, f.first, "gate.fitted_on." + k2);
        if (k2 == "file") g.fittedOn = scalar(f.second, w2);
        else if (k2 == "split") g.fittedSplit = scalar(f.second, w2);
        else if (k2 == "data_root") g.fittedDataRoot = scalar(f.second, w2);
        else MOE_THROW(w2, ": unknown key (known: file, split, data_root)");
      }
    } else if (key == "calibration_file") {
      g.calibrationFile = scalar(v, w);
    } else if (key == "router") {
      applyRouterYaml(g.router, v, source, "gate.router");
    } else if (key == "retrieval") {
      applyRetrievalYaml(g.retrieval, v, source);
    } else {
      MOE_THROW(w, ": unknown key (known: policy, top_k, temperature, weights, by, table, default, experts, "
                   "table_file, fitted_on, calibration_file, router, retrieval)");
    }
  }
}

void loadTableFile(GateConfig& g, const std::string& path, const std::string& w) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    MOE_THROW(w, ": cannot read table file '", path, "'");
  } catch (const YAML::Exception& e) {
    MOE_THROW(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg);
  }
  MOE_CHECK(root.IsMap(), path, ": expected a mapping (the `gate:` section written by moe-dist calibrate)");
  const YAML::Node section = root["gate"] ? root["gate"] : root;
  GateConfig t;
  applyGateMap(t, section, path, false);
  MOE_CHECK(!t.table.empty() || !t.tableDefault.empty(), path, ": has no `table` or `default` rows");
  g.by = t.by;
  g.table = t.table;
  g.tableDefault = t.tableDefault;
  g.tableExperts = t.tableExperts;
  g.fittedOn = t.fittedOn;
  g.fittedSplit = t.fittedSplit;
  g.fittedDataRoot = t.fittedDataRoot;
  g.tableFile = path;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string numberText(double x) {
  std::ostringstream os;
  os.precision(17);
  os << x;
  return os.str();
}

std::string row(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + numberText(v[i]);
  return s + "]";
}
std::string stringRow(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + quote(v[i]);
  return s + "]";
}

}  // namespace

bool isGatePolicy(const std::string& s) {
  for (const char* p : kPolicies)
    if (s == p) return true;
  return false;
}

void applyGateYaml(GateConfig& gate, const YAML::Node& node, const std::string& source) {
  applyGateMap(gate, node, source, true);
}

void applyGateYamlString(GateConfig& gate, const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    MOE_THROW(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg);
  }
  if (root.IsMap() && root["gate"]) root = root["gate"];
  applyGateMap(gate, root, source, true);
}

void validateGate(const GateConfig& g, size_t experts, bool offline) {
  // Where the gate was configured, so a count that only the run can check still names the file.
  const std::string at = g.origin.empty() ? std::string() : g.origin + ": ";
  if (!g.enabled()) {
    MOE_CHECK(g.topK == 0 && !g.router.configured() && g.table.empty(), at,
              "gate: options are set (top_k, router or table) but no gate policy: add `policy:` to the gate "
              "section (or --gate POLICY)");
    return;
  }
  const size_t E = experts;
  auto rowCheck = [&](const std::vector<double>& w, const std::string& what) {
    MOE_CHECK(E == 0 || w.size() == E, at, "gate: ", what, " has ", w.size(), " weights for ", E, " experts");
  };
  MOE_CHECK(E == 0 || g.topK <= static_cast<int>(E), at, "gate: top_k is ", g.topK, " but there are only ", E,
            " experts");
  if (g.policy == "static") {
    if (!g.weights.empty()) rowCheck(g.weights, "gate.weights");
  } else if (g.policy == "table") {
    MOE_CHECK(!g.table.empty() || !g.tableDefault.empty(), at,
              "gate: policy table needs `table` rows (category or subject: [weights]) or `table_file`");
    for (const auto& [k, w] : g.table) rowCheck(w, "gate.table." + k);
    if (!g.tableDefault.empty()) rowCheck(g.tableDefault, "gate.default");
    MOE_CHECK(g.tableExperts.empty() || E == 0 || g.tableExperts.size() == E, at, "gate: the table was made for ",
              g.tableExperts.size(), " experts, this run has ", E);
  } else if (g.policy == "calibrated") {
    MOE_CHECK(!g.calibrationFile.empty() || !g.table.empty() || !g.tableDefault.empty(), at,
              "gate: policy calibrated needs `calibration_file` (a labelled run's results file, e.g. of the val "
              "split; or --gate-calibration FILE)");
  } else if (g.policy == "router") {
    MOE_CHECK(offline || g.router.configured(), at,
              "gate: policy router needs a `router:` section with one `experts` entry per model (positive_prompts), "
              "or mode: random");
  }
  if (g.policy == "retrieval") {
    MOE_CHECK(offline || g.retrieval.configured(), at,
              "gate: policy retrieval needs a `retrieval:` section with one `experts` entry per model (exemplars or "
              "exemplars_file)");
  }
  MOE_CHECK(!(g.retrieval.configured() && g.router.configured()), at,
            "gate: a `router:` and a `retrieval:` section both score the experts and one file stores one score per "
            "expert (gate_scores): keep one");
  if (g.retrieval.configured()) {
    MOE_CHECK(E == 0 || g.retrieval.experts.size() == E, at, "gate.retrieval.experts has ",
              g.retrieval.experts.size(), " entries for ", E, " models; list one per model, in model order");
    for (size_t e = 0; e < g.retrieval.experts.size(); ++e)
      MOE_CHECK(!g.retrieval.experts[e].exemplars.empty() || !g.retrieval.experts[e].files.empty(), at,
                "gate.retrieval.experts[", e, "]: no exemplars (give exemplars or exemplars_file)");
  }
  if (g.router.configured()) {
    MOE_CHECK(g.router.mode == "random" || E == 0 || g.router.experts.size() == E, at,
              "gate.router.experts has ",
              g.router.experts.size(), " entries for ", E, " models; list one per model, in model order");
    if (g.router.mode != "random")
      for (size_t e = 0; e < g.router.experts.size(); ++e)
        MOE_CHECK(!g.router.experts[e].positive.empty(), at, "gate.router.experts[", e,
                  "]: positive_prompts is empty (mode ", g.router.mode, " needs at least one)");
  }
}

std::string routerYaml(const RouterConfig& r) {
  if (!r.configured()) return "";
  std::string out = "  router:\n    mode: " + r.mode + "\n    seed: " + std::to_string(r.seed) + "\n";
  if (!r.experts.empty()) {
    out += "    experts:\n";
    for (const auto& e : r.experts) {
      out += "      - positive_prompts: " + stringRow(e.positive) + "\n";
      if (!e.negative.empty()) out += "        negative_prompts: " + stringRow(e.negative) + "\n";
    }
  }
  return out;
}

std::string retrievalYaml(const RetrievalConfig& r) {
  if (!r.configured()) return "";
  std::string out = "  retrieval:\n    neighbours: " + std::to_string(r.neighbours) + "\n    experts:\n";
  for (const auto& e : r.experts) {
    out += "      - exemplars: " + stringRow(e.exemplars) + "\n";
    if (!e.files.empty()) out += "        exemplars_file: " + stringRow(e.files) + "\n";
  }
  return out;
}

std::string gateYaml(const GateConfig& g) {
  if (!g.enabled()) return "";
  std::string out = "gate:\n  policy: " + g.policy + "\n  top_k: " + std::to_string(g.topK) +
                    "\n  temperature: " + numberText(g.temperature) + "\n";
  if (g.policy == "static" && !g.weights.empty()) out += "  weights: " + row(g.weights) + "\n";
  if (g.policy == "table" || g.policy == "calibrated") {
    out += "  by: " + g.by + "\n";
    if (!g.tableExperts.empty()) out += "  experts: " + stringRow(g.tableExperts) + "\n";
    if (!g.table.empty()) {
      out += "  table:\n";
      for (const auto& [k, w] : g.table) out += "    " + quote(k) + ": " + row(w) + "\n";
    }
    if (!g.tableDefault.empty()) out += "  default: " + row(g.tableDefault) + "\n";
    if (!g.fittedOn.empty() || !g.fittedSplit.empty())
      out += "  fitted_on: {file: " + quote(g.fittedOn) + ", split: " + quote(g.fittedSplit) +
             ", data_root: " + quote(g.fittedDataRoot) + "}\n";
  }
  return out + routerYaml(g.router) + retrievalYaml(g.retrieval);
}

}  // namespace moe
