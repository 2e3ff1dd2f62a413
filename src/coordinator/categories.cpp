#include "coordinator/categories.h"

#include <utility>

#include "common/error.h"

namespace moe {
namespace {

const std::vector<std::pair<std::string, std::string>>& subjectTable() {
  static const std::vector<std::pair<std::string, std::string>> t = {
      {"abstract_algebra", "math"},
      {"anatomy", "health"},
      {"astronomy", "physics"},
      {"business_ethics", "business"},
      {"clinical_knowledge", "health"},
      {"college_biology", "biology"},
      {"college_chemistry", "chemistry"},
      {"college_computer_science", "computer science"},
      {"college_mathematics", "math"},
      {"college_medicine", "health"},
      {"college_physics", "physics"},
      {"computer_security", "computer science"},
      {"conceptual_physics", "physics"},
      {"econometrics", "economics"},
      {"electrical_engineering", "engineering"},
      {"elementary_mathematics", "math"},
      {"formal_logic", "philosophy"},
      {"global_facts", "other"},
      {"high_school_biology", "biology"},
      {"high_school_chemistry", "chemistry"},
      {"high_school_computer_science", "computer science"},
      {"high_school_european_history", "history"},
      {"high_school_geography", "geography"},
      {"high_school_government_and_politics", "politics"},
      {"high_school_macroeconomics", "economics"},
      {"high_school_mathematics", "math"},
      {"high_school_microeconomics", "economics"},
      {"high_school_physics", "physics"},
      {"high_school_psychology", "psychology"},
      {"high_school_statistics", "math"},
      {"high_school_us_history", "history"},
      {"high_school_world_history", "history"},
      {"human_aging", "health"},
      {"human_sexuality", "culture"},
      {"international_law", "law"},
      {"jurisprudence", "law"},
      {"logical_fallacies", "philosophy"},
      {"machine_learning", "computer science"},
      {"management", "business"},
      {"marketing", "business"},
      {"medical_genetics", "health"},
      {"miscellaneous", "other"},
      {"moral_disputes", "philosophy"},
      {"moral_scenarios", "philosophy"},
      {"nutrition", "health"},
      {"philosophy", "philosophy"},
      {"prehistory", "history"},
      {"professional_accounting", "other"},
      {"professional_law", "law"},
      {"professional_medicine", "health"},
      {"professional_psychology", "psychology"},
      {"public_relations", "politics"},
      {"security_studies", "politics"},
      {"sociology", "culture"},
      {"us_foreign_policy", "politics"},
      {"virology", "health"},
      {"world_religions", "philosophy"},
  };
  return t;
}

// categories.py's `categories`, in its order (which is also report order). It names the last
// category "other (business, health, misc.)"; reports say "other".
const std::vector<std::pair<std::string, std::string>>& subcategoryTable() {
  static const std::vector<std::pair<std::string, std::string>> t = {
      {"physics", "STEM"},        {"chemistry", "STEM"},         {"biology", "STEM"},
      {"computer science", "STEM"}, {"math", "STEM"},            {"engineering", "STEM"},
      {"history", "humanities"},  {"philosophy", "humanities"},  {"law", "humanities"},
      {"politics", "social sciences"}, {"culture", "social sciences"}, {"economics", "social sciences"},
      {"geography", "social sciences"}, {"psychology", "social sciences"},
      {"other", "other"},         {"business", "other"},         {"health", "other"},
  };
  return t;
}

const std::string& categoryOf(const std::string& subcategory) {
  for (const auto& [sub, cat] : subcategoryTable())
    if (sub == subcategory) return cat;
  MOE_THROW("categories.cpp: subcategory '", subcategory, "' has no category");
}

}  // namespace

SubjectInfo classifySubject(const std::string& subject) {
  for (const auto& [s, sub] : subjectTable())
    if (s == subject) return SubjectInfo{subject, sub, categoryOf(sub), true};
  return SubjectInfo{subject, "other", "other", false};
}

const std::vector<std::string>& mmluCategories() {
  static const std::vector<std::string> c = {"STEM", "humanities", "social sciences", "other"};
  return c;
}

const std::vector<std::string>& mmluSubcategories() {
  static const std::vector<std::string> c = [] {
    std::vector<std::string> v;
    for (const auto& [sub, cat] : subcategoryTable()) v.push_back(sub);
    return v;
  }();
  return c;
}

const std::vector<std::string>& mmluSubjects() {
  static const std::vector<std::string> c = [] {
    std::vector<std::string> v;
    for (const auto& [s, sub] : subjectTable()) v.push_back(s);
    return v;
  }();
  return c;
}

}  // namespace moe
