# Tests of the MMLU data layer: CSV reader, loader, taxonomy, prompts and `moe-dist prompts`.
moe_add_test(test_csv SOURCES unit/test_csv.cpp LIBS moe_coordinator)
moe_add_test(test_categories SOURCES unit/test_categories.cpp LIBS moe_coordinator)
moe_add_test(test_mmlu SOURCES unit/test_mmlu.cpp LIBS moe_coordinator ARGS --gtest_filter=-MmluReal.*)
moe_add_test(test_prompt SOURCES unit/test_prompt.cpp LIBS moe_coordinator nlohmann_json::nlohmann_json)
# The real MMLU (test split, 57 subjects) from ../shared/mmlu/data or $MOE_MMLU_DIR; skips when absent.
add_test(NAME test_mmlu_real COMMAND test_mmlu --gtest_filter=MmluReal.*)
set_tests_properties(test_mmlu_real PROPERTIES LABELS slow TIMEOUT 300 SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")

set(_sample ${PROJECT_SOURCE_DIR}/data/sample)
moe_add_cli_test(cli_prompts_plain
  REGEX "^### subject=high_school_physics split=test index=1 gold=C shots=5 style=original$"
  COMMAND $<TARGET_FILE:moe-dist> prompts --data ${_sample} --subjects high_school_physics --limit 2)
moe_add_cli_test(cli_prompts_header_two_spaces
  REGEX "^The following are multiple choice questions \\(with answers\\) about  high school physics\\.$"
  COMMAND $<TARGET_FILE:moe-dist> prompts --data ${_sample} --subjects high_school_physics --limit 1 --shots 0)
moe_add_cli_test(cli_prompts_harness
  REGEX "^The following are multiple choice questions \\(with answers\\) about high school geography\\.$"
  COMMAND $<TARGET_FILE:moe-dist> prompts --data ${_sample} --subjects high_school_geography --limit 1
          --prompt-style harness)
# The JSON string holds the prompt's newlines as \n escapes.
set(_json_prompt "\"prompt\": \"The following are multiple choice questions \\(with answers\\) about  team trivia\\.")
moe_add_cli_test(cli_prompts_json
  REGEX "${_json_prompt}\\\\n\\\\nHow many players of one team"
  COMMAND $<TARGET_FILE:moe-dist> prompts --data ${_sample} --split val --subjects team_trivia --shots 1 --json)
moe_add_cli_test(cli_prompts_bad_root EXPECT_FAIL
  REGEX "error: MMLU data root /nonexistent/mmlu is not a directory: expected <root>/\\{dev,val,test\\}"
  COMMAND $<TARGET_FILE:moe-dist> prompts --data /nonexistent/mmlu)
moe_add_cli_test(cli_prompts_unknown_subject EXPECT_FAIL
  REGEX "unknown subject 'astrology' \\(--subjects\\).*subjects found: astronomy, high_school_geography"
  COMMAND $<TARGET_FILE:moe-dist> prompts --data ${_sample} --subjects astrology)
