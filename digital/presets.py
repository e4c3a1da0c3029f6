"""Named, cited digital accelerator configurations.

``get(name, **changes)`` returns a preset; ``names()`` lists them; ``citation(name)`` says
where the numbers come from; ``registry`` is the :class:`PresetRegistry` itself.
"""

from __future__ import annotations

from ..common.backend import PresetRegistry
from .config import DigitalConfig

__all__ = ["LANDSCAPE", "citation", "get", "names", "registry"]

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


def _chip(tops: float, watts: float, bits: int = 8) -> DigitalConfig:
    """A published chip: ``tops`` [TOPS] at ``watts`` [W], energy per MAC from the ratio.

    Chip-level power covers memory, so SRAM/DRAM energies and the SRAM area are zero; one MAC
    is two operations. Latency uses the quoted peak at the default 13 % utilisation.
    """
    return DigitalConfig(
        bits=bits,
        mac_energy=2 * watts / (tops * 1e12),
        sram_energy_per_byte=0.0,
        dram_energy_per_byte=0.0,
        peak_macs_per_second=tops * 1e12 / 2,
        sram_bit_area=0.0,
    )


def _efficiency(tops_per_watt: float) -> DigitalConfig:
    """A chip published by its efficiency alone [TOPS/W]; throughput stays the int8 default."""
    return DigitalConfig(
        mac_energy=2 / (tops_per_watt * 1e12),
        sram_energy_per_byte=0.0,
        dram_energy_per_byte=0.0,
        sram_bit_area=0.0,
    )


# The accelerator landscape of the 2019 talk this project comes from (figures as quoted there)
# plus a current GPU, so that a study places every paradigm against the digital chips of its
# time on one TOPS/W axis.
LANDSCAPE: tuple[str, ...] = (
    "jetson-xavier",
    "deephi-zu9",
    "tpu-v1",
    "sticker-t",
    "thinker-ii",
    "gpu-h100",
)
"""Presets that are published chips (general-purpose processors and custom accelerators)."""

registry.register(
    "jetson-xavier",
    _chip(20.0, 20.0),
    "NVIDIA Jetson Xavier SoC as announced (GTC Europe 2016): 20 INT8 TOPS at 20 W, as quoted "
    "in the 2019 talk (1.0 TOPS/W; the shipped AGX Xavier is rated 32 TOPS at 30 W)",
)
registry.register(
    "deephi-zu9",
    _chip(2.7, 12.0),
    "DeePhi (now AMD/Xilinx) DPU on a Xilinx Zynq UltraScale+ ZU9 FPGA: 2.7 TOPS at 12 W, as "
    "quoted in the 2019 talk (0.225 TOPS/W)",
)
registry.register(
    "tpu-v1",
    _chip(86.0, 40.0),
    "Google TPU v1 (Jouppi et al., ISCA 2017: 92 TOPS peak INT8, 40 W busy power): 86 TOPS at "
    "40 W as quoted in the 2019 talk (2.15 TOPS/W)",
)
registry.register(
    "sticker-t",
    _efficiency(140.3),
    "Tsinghua STICKER-T, 65 nm (J. Yue et al., ISSCC 2019, 'A 65nm 0.39-to-140.3 TOPS/W "
    "1-to-12b unified neural-network processor using block-circulant-enabled "
    "transpose-domain acceleration'): 140.3 TOPS/W, its best case at low precision",
)
registry.register(
    "thinker-ii",
    _efficiency(90.0),
    "Tsinghua Thinker-II, 28 nm binary/ternary-weight processor (S. Yin et al., IEEE JSSC "
    "2019): 90 TOPS/W as quoted in the 2019 talk",
)
registry.register(
    "gpu-h100",
    _chip(1979.0, 700.0),
    "NVIDIA H100 SXM datasheet: 1,979 dense INT8 TOPS at 700 W board power (2.83 TOPS/W, "
    "memory included)",
)

get = registry.get
names = registry.names
citation = registry.citation
