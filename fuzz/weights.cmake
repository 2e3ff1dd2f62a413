# Safetensors header parser and tensor readers.
moe_add_fuzzer(fuzz_safetensors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_safetensors.cpp
  ${SRC}/worker/safetensors.cpp ${SRC}/worker/mapped_file.cpp ${SRC}/worker/half.cpp
  ${SRC}/worker/weights.cpp LIBS nlohmann_json::nlohmann_json)
