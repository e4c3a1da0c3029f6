"""Analytic energy, latency and area of analog crossbar layers.

One matrix-vector multiplication (MVM) of a layer with ``n_in`` inputs and ``n_out`` outputs
on tiles of ``tile_rows x tile_cols`` cells (``T`` row blocks, ``Tc`` column blocks), with
``S`` weight slices, ``P`` input cycles (``bits - 1`` magnitude bits when bit-serial, else one
pulse-width-modulated pulse) and ``d`` devices per weight and slice (both polarities, with
``devices_per_polarity`` each) costs:

- cells: ``n_in n_out S d`` devices (plus the shared reference column of each column tile
  with ``scheme="reference"``) each dissipate ``v_read^2 G_mean t_pulse a`` per cycle
  (``G_mean = mean_state g_max``, ``a = input_activity``);
- DACs: ``n_in Tc P`` row conversions of ``dac_energy``;
- ADCs: ``n_out T S P`` conversions of ``adc_fom 2^bits`` (Walden figure of merit; Murmann,
  ADC Performance Survey 1997-2023);
- digital: ``n_out T S P`` additions/scalings of partial sums (``accumulate_energy``) and
  ``(n_in + n_out)`` bytes moved (``io_energy_per_byte``).

Latency per MVM: ``P (t_pulse + columns_per_adc t_adc) + digital_latency`` (all tiles work in
parallel; samples and conv positions are processed one after another). Area: every tile used
by the layer with its cells, ADCs (``tile_cols / columns_per_adc``) and row drivers. Ideal
converters (``bits=None``) are costed as 8-bit converters. Gate nonlinearities of recurrent
layers and activations are not costed here (the digital reference costs modules left digital).
"""

from __future__ import annotations

import math

from ..common.cost import Cost
from .config import PIMConfig

__all__ = ["crossbar_cost", "tile_grid"]

_DEFAULT_BITS = 8


def tile_grid(n_in: int, n_out: int, config: PIMConfig) -> tuple[int, int, int, int]:
    """``(T, rows_per_tile, Tc, cols_per_tile)``: rows are split evenly over the fewest tiles."""
    m = config.mapping
    t_rows = math.ceil(n_in / m.tile_rows)
    t_cols = math.ceil(n_out / m.tile_cols)
    return t_rows, math.ceil(n_in / t_rows), t_cols, math.ceil(n_out / t_cols)


def devices_per_weight(config: PIMConfig) -> int:
    """Devices holding one weight (both polarities, all slices)."""
    m = config.mapping
    return m.slices * m.devices_per_polarity * (2 if m.scheme == "differential" else 1)


def input_cycles(config: PIMConfig) -> int:
    """Input cycles per MVM: magnitude bits when bit-serial, else one PWM pulse."""
    dac = config.dac
    return (dac.bits - 1) if dac.bit_serial and dac.bits is not None else 1


def crossbar_cost(config: PIMConfig, n_in: int, n_out: int, n_mvm: int) -> Cost:
    """Cost of ``n_mvm`` matrix-vector products of an ``n_in -> n_out`` crossbar layer.

    Args:
        config: the accelerator (its ``energy`` block holds every coefficient).
        n_in: inputs (crossbar rows used).
        n_out: outputs (crossbar columns used).
        n_mvm: number of MVMs (samples times positions or time steps).
    """
    e = config.energy
    m = config.mapping
    t_rows, _, t_cols, _ = tile_grid(n_in, n_out, config)
    cycles = input_cycles(config)
    slices = m.slices
    adc_bits = config.adc.bits or _DEFAULT_BITS
    dac_bits = config.dac.bits or _DEFAULT_BITS
    per_weight = devices_per_weight(config)
    devices = n_in * n_out * per_weight
    if m.scheme == "reference":
        devices += n_in * t_cols * slices * m.devices_per_polarity
    g_mean = e.mean_state * m.g_max
    cell_energy = devices * cycles * config.circuit.v_read**2 * g_mean * e.read_pulse
    cell_energy *= e.input_activity
    dac_conv = n_in * t_cols * cycles
    adc_conv = n_out * t_rows * slices * cycles
    energy = (
        cell_energy
        + dac_conv * e.dac_energy
        + adc_conv * e.adc_fom * 2**adc_bits
        + adc_conv * e.accumulate_energy
        + (n_in * dac_bits + n_out * adc_bits) / 8 * e.io_energy_per_byte
    )
    latency = cycles * (e.read_pulse + e.columns_per_adc * e.adc_time) + e.digital_latency
    tiles = t_rows * t_cols * slices
    tile_area = (
        m.tile_rows * m.tile_cols * (per_weight // slices) * e.cell_area
        + math.ceil(m.tile_cols / e.columns_per_adc) * e.adc_area
        + m.tile_rows * e.dac_area
    )
    return Cost(
        energy=energy * n_mvm,
        latency=latency * n_mvm,
        area=tiles * tile_area,
        macs=n_in * n_out * n_mvm,
        resources={
            "adc_conversions": float(adc_conv * n_mvm),
            "dac_conversions": float(dac_conv * n_mvm),
            "cell_reads": float(devices * cycles * n_mvm),
        },
    )
