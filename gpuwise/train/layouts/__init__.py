"""Real training data, one module per workload family; ``gpuwise.train.data.open_data`` picks one."""
