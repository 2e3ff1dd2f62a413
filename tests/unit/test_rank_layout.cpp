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
