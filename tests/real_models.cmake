# The main job on the two real GGUF models (scripts/get-models.sh) and real MMLU: label slow, skips
# without them. See tests/e2e/real_mixture.sh.
add_test(NAME e2e_real_mixture
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/e2e/real_mixture.sh $<TARGET_FILE:moe-dist>
                 ${PROJECT_BINARY_DIR}/e2e_real_mixture)
set_tests_properties(e2e_real_mixture PROPERTIES LABELS slow TIMEOUT 1200 SKIP_RETURN_CODE 77)
