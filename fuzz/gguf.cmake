# GGUF reader and block dequantization. Seeds: fuzz/corpus/gguf (small valid files of every
# supported tensor type, from tests/fixtures/make_gguf_fixtures.py, and hand-made edge cases).
moe_add_fuzzer(fuzz_gguf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_gguf.cpp
  ${SRC}/worker/gguf.cpp ${SRC}/worker/dequantize.cpp ${SRC}/worker/half.cpp ${SRC}/worker/mapped_file.cpp
  ${SRC}/worker/weights.cpp)
