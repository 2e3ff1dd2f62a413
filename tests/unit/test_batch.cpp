#include <gtest/gtest.h>

#include "common/batch.h"
#include "common/error.h"

TEST(Batch, RoundTripAndPrompt) {
  moe::Batch b;
  b.id = 17;
  b.subject = 3;
  b.choices = 3;
  b.header = "H\n\n";
  b.shots = {"s1 A\n\n", "s2 B\n\n"};
  b.questions = {{5, 2, "q1\nAnswer:"}, {9, 0, "q2 \xE2\x82\xAC\nAnswer:"}};
  auto bytes = moe::serializeBatch(b);
  moe::Batch c = moe::deserializeBatch(bytes.data(), bytes.size());
  EXPECT_EQ(c.id, 17);
  EXPECT_EQ(c.subject, 3);
  EXPECT_EQ(c.choices, 3);
  EXPECT_EQ(c.shots, b.shots);
  ASSERT_EQ(c.questions.size(), 2u);
  EXPECT_EQ(c.questions[1].id, 9);
  EXPECT_EQ(c.questions[1].text, b.questions[1].text);
  EXPECT_EQ(c.prompt(0, 2), "H\n\ns1 A\n\ns2 B\n\nq1\nAnswer:");
  EXPECT_EQ(c.prompt(1, 0), "H\n\nq2 \xE2\x82\xAC\nAnswer:");
  EXPECT_THROW(c.prompt(0, 3), moe::Error);
  c.questions[0].skipShot = 0;  // dev split: the question is shot 0 itself
  EXPECT_EQ(c.availableShots(0), 1u);
  EXPECT_EQ(c.prompt(0, 1), "H\n\ns2 B\n\nq1\nAnswer:");
  EXPECT_THROW(c.prompt(0, 2), moe::Error);
}

TEST(Batch, TruncatedMessagesAreErrors) {
  moe::Batch b;
  b.id = 1;
  b.questions = {{1, 1, "text"}};
  auto bytes = moe::serializeBatch(b);
  for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_THROW(moe::deserializeBatch(bytes.data(), cut), moe::Error);
  bytes.push_back(0);
  EXPECT_THROW(moe::deserializeBatch(bytes.data(), bytes.size()), moe::Error);
}
