// The `gate:` section of the configuration (src/common/gate_config.h) and its CLI shortcuts.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "test_util.h"

using moe::test::errorOf;

using moe::RunConfig;

namespace {
RunConfig parse(std::vector<const char*> args) {
  args.insert(args.begin(), "moe-dist");
  return moe::parseCommandLine(static_cast<int>(args.size()), args.data(), 1);
}
std::string writeTemp(const std::string& text) {
  char name[] = "/tmp/moe_gate_XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}
}  // namespace

TEST(GateConfig, YamlSectionIsParsed) {
  RunConfig c;
  moe::applyYamlString(c,
                       "models: [a, b]\n"
                       "gate:\n"
                       "  policy: table\n"
                       "  top_k: 1\n"
                       "  temperature: 0.5\n"
                       "  by: subject\n"
                       "  table:\n"
                       "    astronomy: [1, 3]\n"
                       "    \"high school physics\": [2, 0]\n"
                       "  default: [1, 1]\n"
                       "  router:\n"
                       "    mode: hidden\n"
                       "    experts:\n"
                       "      - positive_prompts: [\"stars\", \"planets\"]\n"
                       "        negative_prompts: [\"cooking\"]\n"
                       "      - positive_prompts: [\"food\"]\n",
                       "g.yaml");
  const auto& g = c.gate;
  EXPECT_EQ(g.policy, "table");
  EXPECT_EQ(g.topK, 1);
  EXPECT_DOUBLE_EQ(g.temperature, 0.5);
  EXPECT_EQ(g.by, "subject");
  EXPECT_EQ(g.table.at("astronomy"), (std::vector<double>{1, 3}));
  EXPECT_EQ(g.table.at("high school physics"), (std::vector<double>{2, 0}));
  EXPECT_EQ(g.tableDefault, (std::vector<double>{1, 1}));
  ASSERT_EQ(g.router.experts.size(), 2u);
  EXPECT_EQ(g.router.experts[0].positive, (std::vector<std::string>{"stars", "planets"}));
  EXPECT_EQ(g.router.experts[0].negative, (std::vector<std::string>{"cooking"}));
  EXPECT_NO_THROW(moe::validateGate(g, 2));
  // Counts the run checks still name where the gate was configured.
  EXPECT_NE(errorOf([&] { moe::validateGate(g, 3); }).find("g.yaml:3: gate: gate.table.astronomy has 2 weights for 3 experts"),
            std::string::npos)
      << errorOf([&] { moe::validateGate(g, 3); });
}

TEST(GateConfig, CanonicalYamlRoundTrips) {
  RunConfig c;
  moe::applyYamlString(c,
                       "models: [a, b]\ngate:\n  policy: router\n  top_k: 2\n  temperature: 0.1\n"
                       "  router: {mode: random, seed: 42}\n",
                       "g.yaml");
  const std::string y = moe::gateYaml(c.gate);
  moe::GateConfig back;
  moe::applyGateYamlString(back, y, "canonical");
  EXPECT_EQ(moe::gateYaml(back), y);
  EXPECT_EQ(back.router.mode, "random");
  EXPECT_EQ(back.router.seed, 42u);
  // The whole configuration's YAML (as results files record it) carries the gate and parses back.
  RunConfig again;
  moe::applyYamlString(again, moe::toYaml(c), "recorded");
  EXPECT_EQ(moe::gateYaml(again.gate), y);
  // No gate: nothing recorded.
  EXPECT_EQ(moe::gateYaml(moe::GateConfig{}), "");
}

TEST(GateConfig, CommandLineShortcutsOverrideYaml) {
  std::string path = writeTemp("gate:\n  policy: entropy\n  temperature: 2\n");
  RunConfig c = parse({"--config", path.c_str(), "--gate", "router", "--gate-top-k", "2", "--gate-temperature",
                       "0.25", "--gate-calibration", "val.h5"});
  EXPECT_EQ(c.gate.policy, "router");
  EXPECT_EQ(c.gate.topK, 2);
  EXPECT_DOUBLE_EQ(c.gate.temperature, 0.25);
  EXPECT_EQ(c.gate.calibrationFile, "val.h5");
  std::remove(path.c_str());
  EXPECT_NE(errorOf([] { parse({"--gate", "oracle"}); }).find("option --gate: 'oracle' is not one of"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parse({"--gate-temperature", "0"}); }).find("must be > 0"), std::string::npos);
}

TEST(GateConfig, ErrorsNameFileLineAndKey) {
  auto err = [](const std::string& yaml) {
    return errorOf([&] {
      RunConfig c;
      moe::applyYamlString(c, yaml, "g.yaml");
    });
  };
  std::string e = err("models: [a]\ngate:\n  policy: entropy\n  top-k: x\n");
  EXPECT_NE(e.find("g.yaml:4: key 'gate.top_k': expected an integer, got 'x'"), std::string::npos) << e;
  e = err("gate:\n  policy: oracle\n");
  EXPECT_NE(e.find("g.yaml:2: key 'gate.policy': 'oracle' is not one of"), std::string::npos) << e;
  e = err("gate:\n  policy: table\n  tabel: {}\n");
  EXPECT_NE(e.find("g.yaml:3: key 'gate.tabel': unknown key"), std::string::npos) << e;
  e = err("gate:\n  policy: table\n  table:\n    STEM: [1, -1]\n");
  EXPECT_NE(e.find("g.yaml:4: key 'gate.table.STEM': weights must be >= 0"), std::string::npos) << e;
  e = err("gate:\n  policy: table\n  table:\n    STEM: [0, 0]\n");
  EXPECT_NE(e.find("must not all be zero"), std::string::npos) << e;
  e = err("gate:\n  temperature: -1\n");
  EXPECT_NE(e.find("g.yaml:2: key 'gate.temperature': must be > 0"), std::string::npos) << e;
  e = err("gate:\n  router:\n    experts:\n      - positive_prompt: [x]\n");
  EXPECT_NE(e.find("g.yaml:4: key 'gate.router.experts[0].positive_prompt': unknown key"), std::string::npos) << e;
  e = err("gate:\n  router:\n    mode: fancy\n");
  EXPECT_NE(e.find("g.yaml:3: key 'gate.router.mode': 'fancy' is not one of: hidden, cheap_embed, random"),
            std::string::npos)
      << e;
  e = err("gate: entropy\n");
  EXPECT_NE(e.find("g.yaml:1: key 'gate': expected a mapping"), std::string::npos) << e;
}

TEST(GateConfig, ValidationNamesTheProblem) {
  moe::GateConfig g;
  g.policy = "router";
  EXPECT_NE(errorOf([&] { moe::validateGate(g, 2); }).find("policy router needs a `router:` section"),
            std::string::npos);
  g.router.experts.resize(1);
  g.router.experts[0].positive = {"x"};
  EXPECT_NE(errorOf([&] { moe::validateGate(g, 2); }).find("gate.router.experts has 1 entries for 2 models"),
            std::string::npos);
  g.policy = "table";
  g.router = {};
  EXPECT_NE(errorOf([&] { moe::validateGate(g, 2); }).find("policy table needs `table` rows"), std::string::npos);
  g.policy = "entropy";
  g.topK = 3;
  EXPECT_NE(errorOf([&] { moe::validateGate(g, 2); }).find("top_k is 3 but there are only 2 experts"),
            std::string::npos);
  g.policy = "calibrated";
  g.topK = 0;
  EXPECT_NE(errorOf([&] { moe::validateGate(g, 2); }).find("policy calibrated needs `calibration_file`"),
            std::string::npos);
  moe::GateConfig none;
  none.topK = 1;
  EXPECT_NE(errorOf([&] { moe::validateGate(none, 2); }).find("no gate policy"), std::string::npos);
}

TEST(GateConfig, TableFileIsInlined) {
  std::string table = writeTemp(
      "# from moe-dist calibrate\n"
      "gate:\n  policy: table\n  by: category\n  experts: [\"x\", \"y\"]\n"
      "  table:\n    \"STEM\": [0.25, 0.75]\n  default: [0.5, 0.5]\n"
      "  fitted_on: {file: \"val.h5\", split: \"val\", data_root: \"data/sample\"}\n");
  RunConfig c;
  moe::applyYamlString(c, "gate:\n  policy: table\n  top_k: 1\n  table_file: " + table + "\n", "g.yaml");
  EXPECT_EQ(c.gate.table.at("STEM"), (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(c.gate.tableExperts, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c.gate.fittedSplit, "val");
  EXPECT_EQ(c.gate.topK, 1);
  EXPECT_NE(moe::gateYaml(c.gate).find("\"STEM\": [0.25, 0.75]"), std::string::npos);
  std::remove(table.c_str());
  const std::string e = errorOf([] {
    RunConfig c;
    moe::applyYamlString(c, "gate:\n  table_file: /nonexistent/t.yaml\n", "g.yaml");
  });
  EXPECT_NE(e.find("g.yaml:2: key 'gate.table_file': cannot read table file '/nonexistent/t.yaml'"),
            std::string::npos)
      << e;
}

TEST(GateConfig, RetrievalSection) {
  RunConfig c;
  moe::applyYamlString(c,
                       "gate:\n  policy: retrieval\n  top_k: 1\n  retrieval:\n    neighbours: 3\n    experts:\n"
                       "      - exemplars: [\"a\", \"b\"]\n      - exemplars_file: x.csv\n",
                       "g.yaml");
  ASSERT_EQ(c.gate.retrieval.experts.size(), 2u);
  EXPECT_EQ(c.gate.retrieval.neighbours, 3);
  EXPECT_EQ(c.gate.retrieval.experts[0].exemplars, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.gate.retrieval.experts[1].files, (std::vector<std::string>{"x.csv"}));
  EXPECT_NO_THROW(moe::validateGate(c.gate, 2));
  EXPECT_NE(errorOf([&] { moe::validateGate(c.gate, 3); }).find("gate.retrieval.experts has 2 entries for 3 models"),
            std::string::npos);
  moe::GateConfig back;
  moe::applyGateYamlString(back, moe::gateYaml(c.gate), "canonical");
  EXPECT_EQ(moe::gateYaml(back), moe::gateYaml(c.gate));
  c.gate.router.mode = "random";
  EXPECT_NE(errorOf([&] { moe::validateGate(c.gate, 2); }).find("keep one"), std::string::npos);
  std::string e = errorOf([] {
    RunConfig x;
    moe::applyYamlString(x, "gate:\n  retrieval:\n    experts:\n      - exemplar: [a]\n", "g.yaml");
  });
  EXPECT_NE(e.find("g.yaml:4: key 'gate.retrieval.experts[0].exemplar': unknown key"), std::string::npos) << e;
  moe::GateConfig none;
  none.policy = "retrieval";
  EXPECT_NE(errorOf([&] { moe::validateGate(none, 2); }).find("policy retrieval needs a `retrieval:` section"),
            std::string::npos);
}
