# GGUF models through the engine (src/worker/gguf_model.*): config and names from GGUF metadata,
# Q/K un-permutation, tied output; the tiny llama GGUF against transformers, and SmolLM2 on real
# MMLU prompts (slow; skips without the model or the data). Fixtures: tests/fixtures/gguf_models/,
# made by tests/fixtures/make_gguf_model_goldens.py.
moe_add_test(test_gguf_model SOURCES unit/test_gguf_model.cpp
             LIBS moe_engine moe_worker nlohmann_json::nlohmann_json)
moe_add_test(test_gguf_model_golden SOURCES unit/test_gguf_model_golden.cpp
             LIBS moe_engine moe_coordinator moe_worker nlohmann_json::nlohmann_json LABELS slow TIMEOUT 1200)
