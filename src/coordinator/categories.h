// MMLU subject taxonomy: 57 subjects -> 17 subcategories -> 4 categories, as in the original
// MMLU repository's categories.py (hendrycks/test), checked entry by entry against it. Subjects
// outside the table (other multiple-choice sets in the MMLU layout) get subcategory and category
// "other".
#pragma once

#include <string>
#include <vector>

namespace moe {

struct SubjectInfo {
  std::string subject;
  std::string subcategory;
  std::string category;  // "STEM", "humanities", "social sciences", "other"
  bool known;            // false: not one of the 57 standard subjects
};

SubjectInfo classifySubject(const std::string& subject);

// The four categories in report order; the 17 subcategories grouped by category in categories.py's
// order; the 57 subjects sorted by name.
const std::vector<std::string>& mmluCategories();
const std::vector<std::string>& mmluSubcategories();
const std::vector<std::string>& mmluSubjects();

}  // namespace moe
