"""Benchmarks of this machine, measured the way GPU kernels must be timed.

``timer`` times (CUDA events after warm-up, L2 flush, enough samples), ``measurement`` holds
the raw samples and their statistics, ``suites/`` are the workloads, ``expect`` compares a
figure with the catalog's peak and the model's prediction, ``calibrate`` fits the model's
efficiencies from stored runs. Torch is imported only inside the functions that run work.
"""
