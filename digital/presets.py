"""Named, cited digital accelerator configurations.

``get(name, **changes)`` returns a preset; ``names()`` lists them; ``citation(name)`` says
where the numbers come from; ``registry`` is the :class:`PresetRegistry` itself.
"""

from __future__ import annotations

from ..common.backend import PresetRegistry
from .config import DigitalConfig

__all__ = ["citation", "get", "names", "registry"]

registry = PresetRegistry("digital")
registry.register(
    "int8",
    DigitalConfig(),
    "Horowitz, ISSCC 2014 (45 nm energies); Jouppi et al., ISCA 2017 (TPU v1 throughput)",
)
registry.register(
    "fp32",
    DigitalConfig(bits=32, mac_energy=4.6e-12, peak_macs_per_second=4.6e13 / 4),
    "Horowitz, ISSCC 2014: 32-bit float mult 3.7 pJ + add 0.9 pJ at 45 nm",
)
registry.register(
    "gpu-a100",
    DigitalConfig(
        bits=8,
        mac_energy=400.0 / 312e12,
        sram_energy_per_byte=0.0,
        dram_energy_per_byte=0.0,
        peak_macs_per_second=312e12,
        utilization=0.3,
        sram_bit_area=0.0,
    ),
    "NVIDIA A100 datasheet: 624 dense INT8 TOPS at 400 W board power (1.28 pJ per MAC, "
    "memory included); 30 % utilisation assumed",
)

get = registry.get
names = registry.names
citation = registry.citation
