"""Energy, latency and area of analog crossbar layers, analytic or from the programmed chip.

One matrix-vector multiplication (MVM) of a layer with ``n_in`` inputs and ``n_out`` outputs
on tiles of ``tile_rows x tile_cols`` cells (``T`` row blocks, ``Tc`` column blocks), with
``S`` weight slices, ``P`` input cycles (``bits - 1`` magnitude bits when bit-serial, else one
pulse-width-modulated pulse) and ``d`` devices per weight and slice (both polarities, with
``devices_per_polarity`` each) costs, each term reported in ``Cost.resources`` (keys ending in
``_energy`` are joules, as in :mod:`physnn.optical.cost`):

- ``cell_energy``: a device of conductance ``G`` on a row driven for ``a t_pulse`` dissipates
  ``v_read^2 G a t_pulse`` (``a`` = the input magnitude of a PWM pulse, or the bit of a
  bit-serial cycle): ``v_read^2 t_pulse sum_i A_i R_i`` with ``R_i`` the conductance of row
  ``i`` (every weight device, slice and column tile, and the one reference device of each
  column tile with ``scheme="reference"``) and ``A_i`` the activity of input ``i`` summed over
  cycles and MVMs. Given the programmed ``conductance`` and the ``inputs``, both come from
  the data; without data the cost assumes ``R_i = devices_per_row mean_state g_max`` and
  ``A_i = n_mvm P input_activity`` and says so in ``Cost.assumptions``;
- ``dac_energy``: ``n_in Tc P`` row conversions of ``dac_energy``;
- ``adc_energy``: ``n_out T S P`` conversions of ``adc_fom 2^bits`` (Walden figure of merit;
  Murmann, ADC Performance Survey 1997-2023);
- ``accumulation_energy``: ``n_out T S P`` additions or scalings of partial sums;
- ``io_energy``: ``(n_in dac_bits + n_out adc_bits) / 8`` bytes moved per MVM.

Latency per MVM: ``P (t_read + columns_per_adc t_conv) + digital_latency`` with ``t_read =
t_pulse`` and ``t_conv = bits t_adc`` for a SAR converter or ``t_adc`` for a flash converter;
a counting converter (CCO or ramp) counts ``2^bits`` periods of ``t_adc`` while the pulse
integrates, so ``t_read = max(t_pulse, 2^bits t_adc)`` and ``t_conv = 0``. All tiles work in
parallel; samples and conv positions are processed one after another. Area: every tile used
by the layer with its cells (weights and reference columns), ADCs (``tile_cols /
columns_per_adc``) and row drivers. Ideal converters (``bits=None``) are costed as 8-bit
converters. Gate nonlinearities of recurrent layers and activations are not costed here (the
digital reference costs modules left digital).
"""

from __future__ import annotations

import math

import torch

from ..common.cost import Cost
from .config import PIMConfig

__all__ = ["crossbar_cost", "input_activity", "tile_grid"]

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


def input_activity(config: PIMConfig, inputs: torch.Tensor) -> torch.Tensor:
    """Activity of every row summed over MVMs and input cycles, ``A [n_in]`` [1].

    Args:
        config: the accelerator (its DAC sets the levels and the cycles).
        inputs: normalised DAC inputs ``[n_mvm, n_in]`` (the layer input divided by its
            input range); the DAC clips them to ``[-1, 1]``.

    Returns:
        For PWM inputs the sum of the quantised magnitudes ``|x|`` (pulse width per full
        scale); for bit-serial inputs the number of ones of every magnitude code (one cycle
        per bit).
    """
    if inputs.dim() != 2 or not torch.isfinite(inputs).all():
        raise ValueError(
            f"inputs must be finite normalised DAC inputs [n_mvm, n_in], got shape "
            f"{tuple(inputs.shape)}; divide the layer input by its input range"
        )
    magnitude = inputs.detach().abs().clamp_max(1.0).double()
    bits = config.dac.bits
    if bits is None:
        return magnitude.sum(0)
    levels = 2 ** (bits - 1) - 1
    codes = torch.round(magnitude * levels)
    if not config.dac.bit_serial:
        return codes.sum(0) / levels
    ones = torch.zeros_like(codes)
    for bit in range(bits - 1):
        ones += torch.remainder(torch.div(codes, 2**bit, rounding_mode="floor"), 2)
    return ones.sum(0)


def _row_conductance(config: PIMConfig, conductance: torch.Tensor, n_in: int) -> torch.Tensor:
    """Conductance on every row ``[n_in]`` [S] of a ``[S, 2, D, n_in, n_out]`` chip."""
    m = config.mapping
    expected = (m.slices, 2, m.devices_per_polarity)
    if conductance.dim() != 5 or tuple(conductance.shape[:3]) != expected:
        raise ValueError(
            f"conductance must be the chip's devices [S, 2, D, n_in, n_out] = "
            f"[{m.slices}, 2, {m.devices_per_polarity}, {n_in}, n_out] [S], got shape "
            f"{tuple(conductance.shape)}; pass the crossbar tile's conductance buffer"
        )
    if conductance.shape[3] != n_in:
        raise ValueError(
            f"conductance has {conductance.shape[3]} rows but the layer has n_in={n_in}"
        )
    g = conductance.detach().double()
    if m.scheme != "reference":
        return g.sum((0, 1, 2, 4))
    # one reference device per row and column tile, replicated over that tile's columns
    _, _, _, cols = tile_grid(n_in, conductance.shape[4], config)
    return g[:, 0].sum((0, 1, 3)) + g[:, 1, :, :, ::cols].sum((0, 1, 3))


def crossbar_cost(
    config: PIMConfig,
    n_in: int,
    n_out: int,
    n_mvm: int,
    *,
    conductance: torch.Tensor | None = None,
    inputs: torch.Tensor | None = None,
) -> Cost:
    """Cost of ``n_mvm`` matrix-vector products of an ``n_in -> n_out`` crossbar layer.

    Args:
        config: the accelerator (its ``energy`` block holds every coefficient).
        n_in: inputs (crossbar rows used).
        n_out: outputs (crossbar columns used).
        n_mvm: number of MVMs (samples times positions or time steps).
        conductance: the programmed devices ``[S, 2, D, n_in, n_out]`` [S] (a crossbar
            tile's ``conductance`` buffer, or its drifted values); None assumes every
            device at ``mean_state g_max``.
        inputs: the normalised DAC inputs of the ``n_mvm`` MVMs ``[n_mvm, n_in]`` (see
            :func:`input_activity`); None assumes ``input_activity``.
    """
    e = config.energy
    m = config.mapping
    t_rows, _, t_cols, _ = tile_grid(n_in, n_out, config)
    cycles = input_cycles(config)
    slices = m.slices
    adc_bits = config.adc.bits or _DEFAULT_BITS
    dac_bits = config.dac.bits or _DEFAULT_BITS
    per_weight = devices_per_weight(config)
    reference_devices = n_in * t_cols * slices * m.devices_per_polarity
    devices = n_in * n_out * per_weight + (reference_devices if m.scheme == "reference" else 0)
    assumptions = []
    if conductance is None:
        row_g = torch.full((n_in,), devices / n_in * e.mean_state * m.g_max, dtype=torch.float64)
        assumptions.append(
            f"PIM cell energy: every device at {e.mean_state:g} g_max (no conductance data)"
        )
    else:
        row_g = _row_conductance(config, conductance, n_in).cpu()
    if inputs is None:
        activity = torch.full((n_in,), n_mvm * cycles * e.input_activity, dtype=torch.float64)
        assumptions.append(
            f"PIM cell energy: input activity {e.input_activity:g} per cycle (no input data)"
        )
    else:
        if inputs.shape[:1] != (n_mvm,):
            raise ValueError(
                f"inputs has {inputs.shape[0] if inputs.dim() else 0} rows but n_mvm={n_mvm}; "
                "pass one normalised input vector per MVM"
            )
        activity = input_activity(config, inputs).cpu()
    dac_conv = n_in * t_cols * cycles
    adc_conv = n_out * t_rows * slices * cycles
    resources = {
        "cell_energy": config.circuit.v_read**2 * e.read_pulse * float(activity @ row_g),
        "dac_energy": dac_conv * n_mvm * e.dac_energy,
        "adc_energy": adc_conv * n_mvm * e.adc_fom * 2**adc_bits,
        "accumulation_energy": adc_conv * n_mvm * e.accumulate_energy,
        "io_energy": (n_in * dac_bits + n_out * adc_bits) / 8 * n_mvm * e.io_energy_per_byte,
        "adc_conversions": float(adc_conv * n_mvm),
        "dac_conversions": float(dac_conv * n_mvm),
        "cell_reads": float(devices * cycles * n_mvm),
    }
    if e.adc_architecture == "counting":
        t_read, t_conv = max(e.read_pulse, 2**adc_bits * e.adc_time), 0.0
    else:
        t_read = e.read_pulse
        t_conv = adc_bits * e.adc_time if e.adc_architecture == "sar" else e.adc_time
    latency = cycles * (t_read + e.columns_per_adc * t_conv) + e.digital_latency
    tiles = t_rows * t_cols * slices
    cells_per_tile = m.tile_rows * m.tile_cols * (per_weight // slices)
    if m.scheme == "reference":
        cells_per_tile += m.tile_rows * m.devices_per_polarity  # the reference columns
    periphery_area = (
        math.ceil(m.tile_cols / e.columns_per_adc) * e.adc_area + m.tile_rows * e.dac_area
    )
    tile_area = cells_per_tile * e.cell_area + periphery_area
    resources["analog_area"] = tiles * cells_per_tile * e.cell_area
    resources["periphery_area"] = tiles * periphery_area
    return Cost(
        energy=sum(v for k, v in resources.items() if k.endswith("_energy")),
        latency=latency * n_mvm,
        area=tiles * tile_area,
        macs=n_in * n_out * n_mvm,
        resources=resources,
        assumptions=tuple(assumptions),
    )
