# Tokenizers (src/worker/tokenizer*.cpp, bpe.cpp): golden ids from Python `tokenizers`, unit
# tests of errors, specs and pieces, and the `moe-dist tokenize` command.
moe_add_test(test_tokenizer_golden SOURCES unit/test_tokenizer_golden.cpp
             LIBS moe_worker nlohmann_json::nlohmann_json)
moe_add_test(test_tokenizer SOURCES unit/test_tokenizer.cpp LIBS moe_worker nlohmann_json::nlohmann_json)

set(_tok ${PROJECT_SOURCE_DIR}/tests/fixtures/tokenizers)
moe_add_cli_test(cli_tokenize_text REGEX "ids: 1 15043 3186"
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${_tok}/llama2 --text "Hello world")
moe_add_cli_test(cli_tokenize_pieces REGEX "pieces: \"<s>\" \" Hello\" \" world\""
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${_tok}/llama2 --text "Hello world")
moe_add_cli_test(cli_tokenize_json REGEX "^\\[\\{\"id\":15496,\"piece\":\"Hello\"\\},\\{\"id\":995,\"piece\":\" world\"\\}\\]$"
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${_tok}/gpt2 --text "Hello world" --json)
moe_add_cli_test(cli_tokenize_file REGEX "pieces: \"Hello\" \"<\\|endoftext\\|>\""
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${_tok}/gpt2 --file ${_tok}/tokenize_lines.txt)
# A .gguf --model goes to the GGUF reader: a missing file is a clean error naming it.
moe_add_cli_test(cli_tokenize_gguf_missing EXPECT_FAIL REGEX "no-such-model\\.gguf"
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${CMAKE_CURRENT_BINARY_DIR}/no-such-model.gguf --text "x")
moe_add_cli_test(cli_tokenize_no_tokenizer EXPECT_FAIL REGEX "has no tokenizer.json"
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${PROJECT_SOURCE_DIR}/tests --text "x")
moe_add_cli_test(cli_tokenize_no_text EXPECT_FAIL REGEX "give the text with --text"
                 COMMAND $<TARGET_FILE:moe-dist> tokenize --model ${_tok}/gpt2)
