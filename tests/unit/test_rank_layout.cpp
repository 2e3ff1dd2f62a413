#include <gtest/gtest.h>

#include "common/error.h"
#include "common/rank_layout.h"

TEST(RankLayout, ExpertAndGroupOfEachRank) {
  for (int r = 0; r < 6; ++r) {
    auto l = moe::makeRankLayout(6, r, 3);
    EXPECT_EQ(l.groups, 2);
    EXPECT_EQ(l.expert, r % 3);
    EXPECT_EQ(l.group, r / 3);
    EXPECT_EQ(l.isGroupLeader(), r % 3 == 0);
    EXPECT_EQ(l.isCoordinator(), r == 0);
  }
  EXPECT_EQ(moe::makeRankLayout(6, 4, 3).leaderOf(1), 3);
}

TEST(RankLayout, CountsThatDoNotFitAreClearErrors) {
  try {
    moe::makeRankLayout(4, 0, 3);
    FAIL();
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("4 ranks, which is not a multiple of the 3 experts"), std::string::npos);
  }
  try {
    moe::makeRankLayout(2, 0, 3);
    FAIL();
  } catch (const moe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 experts need at least 3 ranks"), std::string::npos);
  }
  EXPECT_THROW(moe::makeRankLayout(3, 0, 0), moe::Error);
}

TEST(RankDevice, CudaSpreadsTheRanksOfANodeOverItsDevices) {
  // 8 ranks on a node with 4 GPUs: two per GPU, in local-rank order.
  for (int local = 0; local < 8; ++local)
    EXPECT_EQ(moe::rankDevice("cuda", local, 4), "cuda:" + std::to_string(local % 4)) << local;
  // One GPU visible per task (Slurm --gpus-per-task=1): every rank's own is cuda:0.
  EXPECT_EQ(moe::rankDevice("cuda", 3, 1), "cuda:0");
  // Kept as given: cpu, an explicit index, and cuda with no device visible (loading says why).
  EXPECT_EQ(moe::rankDevice("cpu", 3, 4), "cpu");
  EXPECT_EQ(moe::rankDevice("cuda:2", 3, 4), "cuda:2");
  EXPECT_EQ(moe::rankDevice("cuda", 3, 0), "cuda");
}

TEST(MixturePlacement, OnTheGpusOnlyWhenEveryExpertIsOnCudaAndTheBuildCan) {
  const auto gpu = moe::decideMixturePlacement({"n1 cuda:0", "n1 cuda:1"}, "auto", true);
  EXPECT_TRUE(gpu.device);
  EXPECT_EQ(gpu.why, "every expert of the group runs on its own GPU");
  struct Case {
    std::vector<std::string> hostDevices;
    const char* on;
    bool built;
    const char* why;
  };
  for (const Case& c : {Case{{"n1 cpu", "n1 cpu"}, "auto", true, "the experts run on the CPU"},
                        Case{{"n1 cuda:0", "n1 cpu"}, "auto", true, "some of the group's experts run on the CPU"},
                        Case{{"n1 cuda:0", "n1 cuda:1"}, "host", true, "--mixture-on host"},
                        Case{{"n1 cuda:0", "n1 cuda:1"}, "auto", false, "this build has no device mixture"},
                        Case{{"n1 cuda:0", "n1 cuda:0"}, "auto", true, "ranks 0 and 1 of the group share cuda:0 on n1"}}) {
    const auto p = moe::decideMixturePlacement(c.hostDevices, c.on, c.built);
    EXPECT_FALSE(p.device) << c.why;
    EXPECT_EQ(p.why.rfind(c.why, 0), 0u) << p.why;
  }
}

TEST(MixturePlacement, SharedGpusAreFoundPerHost) {
  EXPECT_EQ(moe::sharedGpuOf({"n1 cuda:0", "n1 cuda:1", "n1 cuda:2"}), "");
  EXPECT_EQ(moe::sharedGpuOf({"n1 cuda:0", "n2 cuda:0"}), "");  // one GPU each on two nodes
  EXPECT_EQ(moe::sharedGpuOf({"n1 cpu", "n1 cpu"}), "");        // the CPU is not a GPU to share
  EXPECT_EQ(moe::sharedGpuOf({"n1 cuda:0", "n1 cuda:1", "n1 cuda:0"}),
            "ranks 0 and 2 of the group share cuda:0 on n1");
  EXPECT_EQ(moe::sharedGpuOf({"a b cuda:1", "a b cuda:1"}), "ranks 0 and 1 of the group share cuda:1 on a b");
}
