"""Analytic cost model of the digital reference backend.

Cost per sample and layer (linear in the batch):

- energy = MACs * ``mac_energy`` + (weight + input + output bytes) * ``sram_energy_per_byte``
  (+ weight bytes * ``dram_energy_per_byte`` when ``weights_from_dram``): weights are read
  once per sample, a conservative no-reuse assumption;
- latency = MACs / (``peak_macs_per_second`` * ``utilization``);
- area = weight bits * ``sram_bit_area`` (on-chip weight storage).
"""

from __future__ import annotations

import math

from torch import nn

from ..common.config import BackendConfig
from ..common.cost import Cost, count_macs, output_shape
from .config import DigitalConfig
from .presets import registry

__all__ = ["digital_cost"]


def digital_cost(
    module: nn.Module, input_shape: tuple[int, ...], config: BackendConfig | str | None = None
) -> Cost:
    """Cost of a torch module on a digital accelerator (see the module docstring).

    Args:
        module: a torch module (Linear, Conv1d/2d, RNN/LSTM/GRU are costed; others are free).
        input_shape: input shape with the batch.
        config: a :class:`DigitalConfig`, a preset name, or None for ``int8``.
    """
    if isinstance(config, str) or config is None:
        config = registry.get(config or "int8")
    if not isinstance(config, DigitalConfig):
        raise TypeError(
            f"digital_cost needs a DigitalConfig or a digital preset name, got "
            f"{type(config).__name__}; e.g. physnn.digital.presets.get('int8')"
        )
    macs = count_macs(module, input_shape)
    if macs == 0:
        return Cost()
    n_weights = sum(p.numel() for p in module.parameters())
    out = output_shape(module, input_shape)
    out_numel = math.prod(out) if out is not None else 0
    byte = config.bits / 8
    batch = input_shape[0]
    weight_bytes = n_weights * byte * batch
    act_bytes = (math.prod(input_shape) + out_numel) * byte
    energy = macs * config.mac_energy + (weight_bytes + act_bytes) * config.sram_energy_per_byte
    if config.weights_from_dram:
        energy += weight_bytes * config.dram_energy_per_byte
    return Cost(
        energy=energy,
        latency=macs / (config.peak_macs_per_second * config.utilization),
        area=n_weights * config.bits * config.sram_bit_area,
        macs=macs,
        resources={"memory_bytes": weight_bytes + act_bytes},
    )
