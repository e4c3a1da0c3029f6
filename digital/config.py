"""Config of the digital reference backend: operand precision and cost coefficients."""

from __future__ import annotations

import dataclasses

from ..common.config import BackendConfig, check_int, check_range

__all__ = ["DigitalConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DigitalConfig(BackendConfig):
    """A digital accelerator: operand precision and energy/latency coefficients.

    Defaults are the 45 nm figures of M. Horowitz, "Computing's energy problem (and what
    we can do about it)", ISSCC 2014, for 8-bit integer arithmetic.
    """

    backend = "digital"

    bits: int = 8
    """Operand precision including the sign [bit], 2..32; 32 means float32 arithmetic (no
    quantisation)."""

    mac_energy: float = 0.23e-12
    """Energy of one multiply-accumulate [J]; 8-bit int: 0.2 pJ mult + 0.03 pJ add
    (Horowitz 2014)."""

    sram_energy_per_byte: float = 1.25e-12
    """On-chip SRAM access energy [J/byte]; 10 pJ per 64-bit read of an 8 KB SRAM
    (Horowitz 2014)."""

    dram_energy_per_byte: float = 160e-12
    """Off-chip DRAM access energy [J/byte]; 1.3 nJ per 64-bit access (Horowitz 2014)."""

    weights_from_dram: bool = False
    """Fetch every weight from DRAM for each sample (no on-chip weight storage)."""

    peak_macs_per_second: float = 4.6e13
    """Peak throughput [MAC/s]; TPU v1: 65,536 8-bit MACs at 700 MHz (Jouppi et al.,
    ISCA 2017)."""

    utilization: float = 0.13
    """Achieved fraction of peak throughput; MLP workloads on TPU v1 reach about an eighth
    of peak (Jouppi et al., ISCA 2017, Table 3)."""

    sram_bit_area: float = 0.35e-12
    """Area of one SRAM bit cell [m^2]; about 0.35 um^2 for a 45 nm 6T cell (ITRS)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if isinstance(self.bits, int) and not isinstance(self.bits, bool) and self.bits < 2:
            # A signed integer needs a sign bit and at least one magnitude bit: with
            # bits=1 the grid has no level besides zero (issue 15 item 4: NaN outputs).
            raise ValueError(
                f"{owner}.bits={self.bits} leaves no magnitude bit next to the sign bit; use "
                "bits >= 2 (e.g. 8 for int8, 32 for float32 arithmetic)"
            )
        check_int(owner, "bits", self.bits, 2, 32)
        check_range(
            owner,
            "mac_energy",
            self.mac_energy,
            0,
            1e-6,
            unit="J",
            hint="energies are in joules: 0.23 pJ is 0.23e-12",
        )
        check_range(
            owner,
            "sram_energy_per_byte",
            self.sram_energy_per_byte,
            0,
            1e-6,
            unit="J",
            hint="energies are in joules",
        )
        check_range(
            owner,
            "dram_energy_per_byte",
            self.dram_energy_per_byte,
            0,
            1e-6,
            unit="J",
            hint="energies are in joules",
        )
        check_range(
            owner,
            "peak_macs_per_second",
            self.peak_macs_per_second,
            1.0,
            1e20,
            unit="MAC/s",
            hint="throughputs are in MAC/s: 46 TMAC/s is 4.6e13",
        )
        check_range(
            owner,
            "utilization",
            self.utilization,
            0,
            1,
            low_inclusive=False,
            hint="pass a fraction, not a percentage",
        )
        if self.peak_macs_per_second * self.utilization < 1.0:
            # latency = MACs / (peak * utilization): an underflowing product divides by zero
            raise ValueError(
                f"{owner}: peak_macs_per_second * utilization = "
                f"{self.peak_macs_per_second:g} * {self.utilization:g} is below 1 MAC/s; "
                "raise utilization (a fraction such as 0.13) or peak_macs_per_second"
            )
        check_range(
            owner,
            "sram_bit_area",
            self.sram_bit_area,
            0,
            1e-9,
            unit="m^2",
            hint="areas are in square metres: 0.35 um^2 is 0.35e-12",
        )
        if not isinstance(self.weights_from_dram, bool):
            raise TypeError(f"{owner}.weights_from_dram must be a bool")

    def ideal(self) -> DigitalConfig:
        """Float32 arithmetic (no quantisation), same cost coefficients."""
        return self.replace(bits=32)
