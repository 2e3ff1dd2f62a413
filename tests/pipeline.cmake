# Tests of the distributed pipeline pieces: scheduling, mixtures, the job end to end.
moe_add_test(test_scheduler SOURCES unit/test_scheduler.cpp LIBS moe_coordinator)
