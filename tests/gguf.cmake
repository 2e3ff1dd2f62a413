# GGUF reader and block dequantization (src/worker/gguf.*, src/worker/dequantize.*).
# Fixtures: tests/fixtures/gguf/, made by tests/fixtures/make_gguf_fixtures.py.
moe_add_test(test_dequantize SOURCES unit/test_dequantize.cpp LIBS moe_worker)
moe_add_test(test_gguf SOURCES unit/test_gguf.cpp LIBS moe_worker nlohmann_json::nlohmann_json)
# The two real models fetched by scripts/get-models.sh; skips when they are not in the cache.
moe_add_test(test_gguf_models SOURCES unit/test_gguf_models.cpp LIBS moe_worker LABELS slow TIMEOUT 1200)
