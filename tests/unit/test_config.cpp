#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

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
  char name[] = "/tmp/moe_cfg_XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}
}  // namespace

TEST(Config, DefaultsAndCommandLine) {
  RunConfig c = parse({"--models", "a", "b", "c", "--batch-size", "7", "--shots=0", "--resume", "--subjects",
                       "anatomy,virology"});
  EXPECT_EQ(c.models, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c.batchSize, 7);
  EXPECT_EQ(c.shots, 0);
  EXPECT_TRUE(c.resume);
  EXPECT_FALSE(c.overwrite);
  EXPECT_EQ(c.subjects, (std::vector<std::string>{"anatomy", "virology"}));
  EXPECT_EQ(c.mode, "mean");
  EXPECT_EQ(c.split, "test");
}

TEST(Config, WeightsAcceptNumbersAndRejectNegatives) {
  RunConfig c = parse({"--weights", "0.5", "1", "2e-1", "--mode", "weighted"});
  EXPECT_EQ(c.weights, (std::vector<double>{0.5, 1.0, 0.2}));
  EXPECT_NE(errorOf([] { parse({"--weights", "-1"}); }).find("weights must be >= 0"), std::string::npos);
}

TEST(Config, BadValuesNameTheOption) {
  EXPECT_NE(errorOf([] { parse({"--batch-size", "x"}); }).find("option --batch-size: expected an integer, got 'x'"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parse({"--batch-size", "0"}); }).find("out of range"), std::string::npos);
  EXPECT_NE(errorOf([] { parse({"--mode", "median"}); }).find("'median' is not one of: mean, weighted, geometric"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parse({"--frob"}); }).find("unknown option '--frob'"), std::string::npos);
  EXPECT_NE(errorOf([] { parse({"--shots"}); }).find("option --shots: expected a value"), std::string::npos);
}

TEST(Config, MixtureOnIsAutoOrHost) {
  EXPECT_EQ(parse({}).mixtureOn, "auto");
  EXPECT_EQ(parse({"--mixture-on", "host"}).mixtureOn, "host");
  RunConfig c;
  moe::applyYamlString(c, "mixture_on: host\n", "cfg.yaml");
  EXPECT_EQ(c.mixtureOn, "host");
  EXPECT_NE(errorOf([] { parse({"--mixture-on", "gpu"}); }).find("'gpu' is not one of: auto, host"), std::string::npos);
}

TEST(Config, YamlThenCommandLineOverrides) {
  std::string path = writeTemp("models: [x, y]\nbatch_size: 3\nprompt-style: harness\nsubjects: [anatomy]\n");
  RunConfig c = parse({"--batch-size", "5", "--config", path.c_str()});
  EXPECT_EQ(c.models, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c.batchSize, 5);  // command line wins wherever --config stands
  EXPECT_EQ(c.promptStyle, "harness");
  EXPECT_EQ(c.subjects, (std::vector<std::string>{"anatomy"}));
  std::remove(path.c_str());
}

TEST(Config, YamlErrorsNameFileLineAndKey) {
  std::string path = writeTemp("models: [x]\nbatch_sise: 3\n");
  std::string e = errorOf([&] { RunConfig c; moe::applyYamlFile(c, path); });
  EXPECT_NE(e.find(path + ":2: key 'batch_sise': unknown key"), std::string::npos) << e;
  std::remove(path.c_str());

  e = errorOf([] { RunConfig c; moe::applyYamlString(c, "shots: [1, 2]\n", "cfg.yaml"); });
  EXPECT_NE(e.find("cfg.yaml:1: key 'shots': expected a single value, got a list"), std::string::npos) << e;
  e = errorOf([] { RunConfig c; moe::applyYamlString(c, "shots: five\n", "cfg.yaml"); });
  EXPECT_NE(e.find("cfg.yaml:1: key 'shots': expected an integer, got 'five'"), std::string::npos) << e;
  e = errorOf([] { RunConfig c; moe::applyYamlString(c, "a: [1, 2\n", "cfg.yaml"); });
  EXPECT_NE(e.find("cfg.yaml:"), std::string::npos);
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
  e = errorOf([] { RunConfig c; moe::applyYamlString(c, "json: true\n", "cfg.yaml"); });
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;  // command-only options are not config keys
  e = errorOf([] { RunConfig c; moe::applyYamlFile(c, "/nonexistent/x.yaml"); });
  EXPECT_NE(e.find("/nonexistent/x.yaml: cannot read config file"), std::string::npos) << e;
}

TEST(Config, ResolvedYamlRoundTrips) {
  RunConfig a = parse({"--models", "m1", "m 2", "--weights", "0.25", "0.75", "--mode", "geometric", "--limit", "9",
                       "--data", "/d/mmlu", "--overwrite"});
  RunConfig b;
  moe::applyYamlString(b, moe::toYaml(a), "resolved");
  EXPECT_EQ(moe::toYaml(a), moe::toYaml(b));
  EXPECT_EQ(b.models, a.models);
  EXPECT_EQ(b.weights, a.weights);
  EXPECT_EQ(b.limit, 9);
  EXPECT_TRUE(b.overwrite);
}

TEST(Config, PositionalArguments) {
  RunConfig c = parse({"run.h5", "--format", "csv"});
  EXPECT_EQ(c.positional, (std::vector<std::string>{"run.h5"}));
  EXPECT_EQ(c.format, "csv");
}

TEST(Config, HomeExpandsInModelAndDataPaths) {
  const char* old = std::getenv("HOME");
  std::string saved = old ? old : "";
  setenv("HOME", "/home/r", 1);
  auto c = parse({"--models", "~/m/a.gguf", "rel/b", "/abs/~/c", "--data", "~/mmlu/data", "--no-prefix-cache"});
  EXPECT_EQ(c.models, (std::vector<std::string>{"/home/r/m/a.gguf", "rel/b", "/abs/~/c"}));
  EXPECT_EQ(c.data, "/home/r/mmlu/data");
  EXPECT_TRUE(c.noPrefixCache);
  EXPECT_FALSE(parse({"--models", "a"}).noPrefixCache);
  if (old) setenv("HOME", saved.c_str(), 1); else unsetenv("HOME");
}
