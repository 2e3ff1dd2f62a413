# Gated mixtures: gate configuration and policies.
moe_add_test(test_gate_config SOURCES unit/test_gate_config.cpp LIBS moe_common)
moe_add_test(test_gate_policies SOURCES unit/test_gate_policies.cpp LIBS moe_worker)
