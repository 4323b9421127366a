"""Reference implementations (numpy) that the shipped kernels are tested against; used only by tests."""
