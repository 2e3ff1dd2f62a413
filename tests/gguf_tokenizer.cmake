# Tokenizers from GGUF metadata (src/worker/gguf_tokenizer.*) and `moe-dist tokenize --model X.gguf`.
# Unit: tiny GGUF files written by the test (both tokenizer kinds, flags, malformed metadata, CLI).
moe_add_test(test_gguf_tokenizer SOURCES unit/test_gguf_tokenizer.cpp LIBS moe_worker)
target_compile_definitions(test_gguf_tokenizer PRIVATE MOE_DIST_BIN="$<TARGET_FILE:moe-dist>")
add_dependencies(test_gguf_tokenizer moe-dist)
# Slow: the two real models of scripts/get-models.sh against golden ids
# (tests/fixtures/gguf_tokenizers/goldens.json, from tests/fixtures/make_gguf_tokenizer_goldens.py),
# on real MMLU prompts and a varied corpus, and the CLI on them; skips when the models or MMLU are absent.
moe_add_test(test_gguf_tokenizer_models SOURCES unit/test_gguf_tokenizer_models.cpp
             LIBS moe_worker moe_coordinator nlohmann_json::nlohmann_json LABELS slow TIMEOUT 900)
target_compile_definitions(test_gguf_tokenizer_models PRIVATE MOE_DIST_BIN="$<TARGET_FILE:moe-dist>")
add_dependencies(test_gguf_tokenizer_models moe-dist)
