# Tokenizer: tokenizer.json parsing and encoding (src/worker/tokenizer*.cpp, bpe.cpp).
set(_tok_src ${SRC}/worker/tokenizer.cpp ${SRC}/worker/tokenizer_pipeline.cpp ${SRC}/worker/tokenizer_regex.cpp
    ${SRC}/worker/tokenizer_unicode.cpp ${SRC}/worker/tokenizer_unicode_data.cpp ${SRC}/worker/bpe.cpp)
moe_add_fuzzer(fuzz_tokenizer_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_tokenizer_json.cpp ${_tok_src}
               LIBS nlohmann_json::nlohmann_json PkgConfig::PCRE2)
