# Tests of the checkpoint readers (src/worker: safetensors).
moe_add_test(test_safetensors SOURCES unit/test_safetensors.cpp
             LIBS moe_worker nlohmann_json::nlohmann_json)
