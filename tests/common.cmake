# Tests of src/common, src/comm and the moe-dist binary's own surface.
moe_add_test(test_config SOURCES unit/test_config.cpp LIBS moe_common)
moe_add_test(test_rank_layout SOURCES unit/test_rank_layout.cpp LIBS moe_common)
moe_add_test(test_utf8 SOURCES unit/test_utf8.cpp LIBS moe_common)
moe_add_test(test_mpi_communicator SOURCES unit/test_mpi_communicator.cpp LIBS moe_comm RANKS 3)
moe_add_test(test_weighted_softmax SOURCES unit/test_weighted_softmax.cpp LIBS moe_kernels)

moe_add_cli_test(cli_version REGEX "moe-dist [0-9]+\\.[0-9]+\\.[0-9]+" COMMAND $<TARGET_FILE:moe-dist> --version)
moe_add_cli_test(cli_help REGEX "--models" COMMAND $<TARGET_FILE:moe-dist> --help)
moe_add_cli_test(cli_unknown_command EXPECT_FAIL REGEX "unknown command 'frobnicate'"
                 COMMAND $<TARGET_FILE:moe-dist> frobnicate)
moe_add_test(test_finalize SOURCES unit/test_finalize.cpp LIBS moe_kernels)
moe_add_test(test_batch SOURCES unit/test_batch.cpp LIBS moe_common)
moe_add_test(test_mixture_mpi SOURCES unit/test_mixture_mpi.cpp LIBS moe_worker moe_comm RANKS 3)
