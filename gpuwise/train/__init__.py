"""``gpuwise train``: run the training for real, on the CPU, one GPU, or many through torchrun."""
