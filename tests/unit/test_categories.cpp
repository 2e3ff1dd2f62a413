// MMLU taxonomy against categories.py of hendrycks/test: 57 subjects, 17 subcategories, 4 categories.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "coordinator/categories.h"

namespace {

// Subjects per category as categories.py assigns them (through their subcategory), written out
// independently of the table in categories.cpp.
const std::map<std::string, std::set<std::string>>& expectedSubjects() {
  static const std::map<std::string, std::set<std::string>> m = {
      {"STEM",
       {"abstract_algebra", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
        "college_mathematics", "college_physics", "computer_security", "conceptual_physics",
        "electrical_engineering", "elementary_mathematics", "high_school_biology", "high_school_chemistry",
        "high_school_computer_science", "high_school_mathematics", "high_school_physics",
        "high_school_statistics", "machine_learning"}},
      {"humanities",
       {"formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
        "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios",
        "philosophy", "prehistory", "professional_law", "world_religions"}},
      {"social sciences",
       {"econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology", "human_sexuality",
        "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy"}},
      {"other",
       {"anatomy", "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition", "professional_accounting",
        "professional_medicine", "virology"}},
  };
  return m;
}

}  // namespace

TEST(Categories, Counts) {
  EXPECT_EQ(moe::mmluSubjects().size(), 57u);
  EXPECT_EQ(moe::mmluSubcategories().size(), 17u);
  EXPECT_EQ(moe::mmluCategories(), (std::vector<std::string>{"STEM", "humanities", "social sciences", "other"}));
  EXPECT_TRUE(std::is_sorted(moe::mmluSubjects().begin(), moe::mmluSubjects().end()));
  EXPECT_EQ(std::set<std::string>(moe::mmluSubjects().begin(), moe::mmluSubjects().end()).size(), 57u);
  EXPECT_EQ(moe::mmluSubcategories(),
            (std::vector<std::string>{"physics", "chemistry", "biology", "computer science", "math", "engineering",
                                      "history", "philosophy", "law", "politics", "culture", "economics",
                                      "geography", "psychology", "other", "business", "health"}));
}

TEST(Categories, EverySubjectInItsCategory) {
  size_t total = 0;
  std::set<std::string> usedSubcategories;
  for (const auto& [category, subjects] : expectedSubjects()) {
    total += subjects.size();
    for (const auto& s : subjects) {
      const moe::SubjectInfo info = moe::classifySubject(s);
      EXPECT_TRUE(info.known) << s;
      EXPECT_EQ(info.subject, s);
      EXPECT_EQ(info.category, category) << s;
      usedSubcategories.insert(info.subcategory);
    }
  }
  EXPECT_EQ(total, 57u);
  EXPECT_EQ(usedSubcategories.size(), 17u);  // every subcategory has at least one subject
  for (const auto& s : moe::mmluSubjects()) {
    const auto& cat = moe::classifySubject(s).category;
    EXPECT_EQ(expectedSubjects().at(cat).count(s), 1u) << s;
  }
}

TEST(Categories, SubcategoriesOfSomeSubjects) {
  EXPECT_EQ(moe::classifySubject("abstract_algebra").subcategory, "math");
  EXPECT_EQ(moe::classifySubject("anatomy").subcategory, "health");  // STEM elsewhere, "other" in categories.py
  EXPECT_EQ(moe::classifySubject("astronomy").subcategory, "physics");
  EXPECT_EQ(moe::classifySubject("formal_logic").subcategory, "philosophy");
  EXPECT_EQ(moe::classifySubject("global_facts").subcategory, "other");
  EXPECT_EQ(moe::classifySubject("human_sexuality").subcategory, "culture");
  EXPECT_EQ(moe::classifySubject("professional_accounting").subcategory, "other");
  EXPECT_EQ(moe::classifySubject("public_relations").subcategory, "politics");
  EXPECT_EQ(moe::classifySubject("world_religions").subcategory, "philosophy");
  EXPECT_EQ(moe::classifySubject("electrical_engineering").subcategory, "engineering");
  EXPECT_EQ(moe::classifySubject("high_school_geography").subcategory, "geography");
  EXPECT_EQ(moe::classifySubject("econometrics").subcategory, "economics");
  EXPECT_EQ(moe::classifySubject("management").subcategory, "business");
}

TEST(Categories, UnknownSubjectIsOther) {
  const moe::SubjectInfo info = moe::classifySubject("team_trivia");
  EXPECT_FALSE(info.known);
  EXPECT_EQ(info.subject, "team_trivia");
  EXPECT_EQ(info.subcategory, "other");
  EXPECT_EQ(info.category, "other");
  EXPECT_FALSE(moe::classifySubject("").known);
  EXPECT_FALSE(moe::classifySubject("Astronomy").known);
}
