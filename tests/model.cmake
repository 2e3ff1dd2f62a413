# Tests of the model configs (torch-free) and of the libtorch engine against transformers' golden
# outputs on the tiny checkpoints in tests/fixtures/models (made by tests/fixtures/make_tiny_models.py).
moe_add_test(test_model_config SOURCES unit/test_model_config.cpp LIBS moe_worker)
moe_add_test(test_model_golden SOURCES unit/test_model_golden.cpp
             LIBS moe_engine moe_worker nlohmann_json::nlohmann_json)
moe_add_test(test_prefix_cache SOURCES unit/test_prefix_cache.cpp
             LIBS moe_engine moe_worker nlohmann_json::nlohmann_json)
