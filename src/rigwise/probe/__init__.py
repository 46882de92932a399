"""Inventory of the local machine: CPU, memory, NUMA, GPUs (NVML, sysfs), software stack.

:func:`rigwise.probe.inventory.take_inventory` gathers the facts,
:func:`rigwise.probe.doctor.diagnose` turns them into verdicts with fixes.
"""
