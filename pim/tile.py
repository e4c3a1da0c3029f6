"""The crossbar tile: the chip of one weight matrix (program, drift, read).

A :class:`CrossbarTile` holds, in buffers, everything that exists on the chip for one weight
matrix ``[n_out, n_in]`` split over row tiles: device conductances, drift exponents, stuck-at
masks, device variation, ADC gain/offset errors, the drift-compensation calibration and the
effective normalised weights at the current drift time. The layer modules
(:mod:`physnn.pim.layers`) own the torch parameters and pass the weight matrix in; the tile
programs it, drifts it and reads it through the periphery (:mod:`physnn.pim.periphery`).

Stale chips cannot happen: the tile keeps the weight matrix it was programmed from
(``programmed_weight``) and, before every evaluation read, compares it exactly with the
current weights; any difference (training, ``load_state_dict``, ``weight.data = ...``,
in-place edits, a copy of a model trained after its last read) reprograms the chip from the
current weights, with the same seed-derived draws a fresh conversion makes, at the same drift
time.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.rng import NoiseStreams
from . import functional as PF
from . import periphery
from .config import PIMConfig
from .cost import tile_grid
from .devices import DeviceModel, get_device
from .memory import check_program, check_read

__all__ = ["CrossbarTile", "check_time", "unnamed_layer_name"]

_CALIBRATION_SEED = 20190601
"""Seed of the fixed calibration inputs of drift compensation (the same on every chip)."""

_UNNAMED = itertools.count()


def unnamed_layer_name(cls_name: str) -> str:
    """A process-unique stream name for a seeded layer built without ``name``.

    Two seeded layers built directly (not through ``convert``) would otherwise derive the same
    streams from ``(seed, "")`` and share every programming-noise pattern (issue 11, item 7).
    The counter makes the names reproducible for the same construction order; pass ``name=``
    for draws that do not depend on it.
    """
    return f"{cls_name}#{next(_UNNAMED)}"


def check_time(t: float) -> float:
    """Return ``t`` [s] as a float or raise ``ValueError`` naming the fix."""
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise ValueError(
            f"drift time t={t!r} must be a finite number of seconds >= 0 "
            "(1 day is 86400, 1 year 3.15e7)"
        )
    return float(t)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exact equality of two tensors (NaN never equals): numpy's vectorised comparison on
    the CPU (3x faster than ``torch.equal`` there), ``torch.equal`` elsewhere."""
    cpu = a.device.type == "cpu" and b.device.type == "cpu"
    if cpu and a.dtype == b.dtype and a.dtype in _NUMPY:
        return bool(np.array_equal(a.numpy(), b.numpy()))
    return torch.equal(a, b)


_NUMPY = (torch.float32, torch.float64, torch.float16)


def _scaled(y: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """``y * factor`` for a ``y`` the read owns (a fresh intermediate, used only here): in
    place unless autograd records it or the factor broadcasts ``y`` up, and without a pass
    when the factor is the number 1."""
    if not isinstance(factor, torch.Tensor):
        if factor == 1.0:
            return y
        return y * factor if y.requires_grad else y.mul_(factor)
    grad = y.requires_grad or factor.requires_grad
    fits = factor.dim() <= y.dim() and all(
        f in (1, n) for f, n in zip(reversed(factor.shape), reversed(y.shape), strict=False)
    )  # the broadcasting rule in Python: torch.broadcast_shapes took 90 us a read
    if grad or not fits:
        return y * factor
    return y.mul_(factor)


@functools.lru_cache(maxsize=8)
def _calibration_inputs(
    n: int, n_in: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The fixed calibration inputs ``[n, n_in]``, uniform in [-1, 1) (the same on every chip;
    drawn once per geometry, read only)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(_CALIBRATION_SEED)
    return torch.rand((n, n_in), generator=gen, device=device, dtype=dtype).mul_(2).sub_(1)


def _rescaled(y: torch.Tensor, column: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``y * column + bias`` of a read's own output ``y [N, out]`` (one pass)."""
    if bias is None:
        return _scaled(y, column)
    return torch.addcmul(bias.to(y.dtype), y, column)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Chip arithmetic runs in float32 at least (conductances of 25e-6 S underflow fp16)."""
    return dtype if dtype == torch.float64 else torch.float32


class CrossbarTile(nn.Module):
    """The programmed chip of one ``[n_out, n_in]`` weight matrix on row tiles.

    Args:
        n_in: matrix inputs (crossbar rows).
        n_out: matrix outputs (crossbar columns).
        config: the accelerator.
        streams: the owning layer's random streams (shared, so resetting them resets these).
        key: this matrix's name inside the layer (prefixes its stream names), e.g. ``"ih_l0"``.
        device: torch device.
        dtype: dtype of the owning layer's weights.

    Buffers (shapes with ``S`` slices, polarity 2, ``D`` devices per polarity, ``T`` row
    tiles of ``R`` rows; empty when the mechanism is off):
        programmed_weight: the weight matrix the chip was programmed from ``[out, in]``.
        conductance: programmed conductances ``[S, 2, D, in, out]`` [S]; polarity 1 is the
            negative device or, with ``scheme="reference"``, the reference column's device of
            that row (one device per row and column tile, shared by the tile's columns).
        drift_nu: drift exponents, like ``conductance`` [1].
        fault_mask: 0 healthy, 1 stuck at ``g_min``, 2 stuck at ``g_max``, 3 stuck at a random
            level ``fault_level`` [S].
        device_g_max: each device's largest reachable conductance (variation) [S].
        adc_gain, adc_offset: static ADC errors per slice, tile and column ``[S, T, 1, out]``.
        weight_scale: weight mapped to ``g_max``, per column ``[out]``.
        slice_coeff: shift-and-add weights of the slices ``[S]``.
        calibration, compensation: drift-compensation reference and factor ``[out]``.
        w_eff: normalised effective weights at the drift time ``[S, T, R, out]`` (with the
            accumulated 1/f read noise frozen at that time).

    The drift time [s] is a Python float kept in the tile's extra state, so casting the layer
    (``.half()``) cannot round it.
    """

    programmed_weight: torch.Tensor
    conductance: torch.Tensor
    drift_nu: torch.Tensor
    fault_mask: torch.Tensor
    fault_level: torch.Tensor
    device_g_max: torch.Tensor
    adc_gain: torch.Tensor
    adc_offset: torch.Tensor
    weight_scale: torch.Tensor
    slice_coeff: torch.Tensor
    calibration: torch.Tensor
    compensation: torch.Tensor
    w_eff: torch.Tensor
    input_range_ready: torch.Tensor

    def __init__(
        self,
        n_in: int,
        n_out: int,
        config: PIMConfig,
        streams: NoiseStreams,
        *,
        key: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.n_in, self.n_out, self.key = n_in, n_out, key
        self.drift_time = 0.0
        self.load_saved_chip: bool | None = None
        """Set by the owning layer while loading: whether the saved chip is this chip."""
        self._inside = 0
        self._seen = 0
        self.bind(config, streams)
        self._build(device, dtype if dtype is not None else torch.get_default_dtype())

    # ------------------------------------------------------------------ construction
    def bind(self, config: PIMConfig, streams: NoiseStreams) -> None:
        """Use ``config`` and the layer's ``streams`` from now on (no rebuild)."""
        self.config = config
        self.streams = streams
        self.grid = tile_grid(self.n_in, self.n_out, config)

    def _build(self, device: Any, dtype: torch.dtype) -> None:
        """(Re)create every buffer for the bound config (all zero, unprogrammed)."""
        cfg = self.config
        m = cfg.mapping
        shape = (m.slices, 2, m.devices_per_polarity, self.n_in, self.n_out)
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        faults = cfg.faults
        has_faults = (faults.stuck_off_rate + faults.stuck_on_rate + faults.stuck_random_rate) > 0
        t_rows, rows, _, _ = self.grid
        adc_static = cfg.adc.gain_std > 0 or cfg.adc.offset_std > 0

        def maybe(on: bool, size: tuple[int, ...], fill: float = 0.0) -> torch.Tensor:
            return torch.full(size, fill, **kw) if on else torch.empty(0, **kw)

        self.register_buffer(
            "programmed_weight", torch.full((self.n_out, self.n_in), math.nan, **kw)
        )
        self.register_buffer("conductance", torch.zeros(shape, **kw))
        self.register_buffer("drift_nu", maybe(cfg.drift.model != "none", shape))
        self.register_buffer(
            "fault_mask",
            torch.zeros(shape, device=device, dtype=torch.int8)
            if has_faults
            else torch.empty(0, device=device, dtype=torch.int8),
        )
        self.register_buffer("fault_level", maybe(has_faults, shape))
        self.register_buffer("device_g_max", maybe(cfg.programming.device_variation > 0, shape))
        tiles = (m.slices, t_rows, 1, self.n_out)
        self.register_buffer("adc_gain", maybe(adc_static, tiles, 1.0))
        self.register_buffer("adc_offset", maybe(adc_static, tiles))
        self.register_buffer("weight_scale", torch.ones(self.n_out, **kw))
        self.register_buffer("slice_coeff", torch.ones(m.slices, **kw))
        self.register_buffer("calibration", torch.ones(self.n_out, **kw))
        self.register_buffer("compensation", torch.ones(self.n_out, **kw))
        self.register_buffer("w_eff", torch.zeros(m.slices, t_rows, rows, self.n_out, **kw))
        if cfg.dac.range_mode == "learned":
            self.input_range = nn.Parameter(torch.tensor(cfg.dac.input_bound, **kw))
            self.register_buffer(
                "input_range_ready", torch.zeros((), dtype=torch.bool, device=device)
            )
        elif self.learned_range:
            del self.input_range
            del self.input_range_ready

    @property
    def learned_range(self) -> bool:
        """True when the tile has a learned input range (``dac.range_mode="learned"``)."""
        return isinstance(getattr(self, "input_range", None), nn.Parameter)

    def rebuild(self, config: PIMConfig, streams: NoiseStreams, matrix: torch.Tensor) -> None:
        """A new chip for ``config``: new buffers, defects drawn, ``matrix`` programmed, and
        drifted to the current drift time. A learned input range is kept where it exists."""
        learned = self.input_range.detach().clone() if self.learned_range else None
        ready = bool(self.input_range_ready) if learned is not None else False
        self.bind(config, streams)
        self._build(self.conductance.device, self.programmed_weight.dtype)
        if learned is not None and self.learned_range:
            with torch.no_grad():
                self.input_range.copy_(learned)
                self.input_range_ready.fill_(ready)
        self.draw_defects()
        self.program(matrix, keep_time=True)

    # ------------------------------------------------------------------ static draws
    def _gen(self, stream: str) -> torch.Generator | None:
        return self.streams.static(self.key + stream, self.conductance.device)

    def _share_reference(self, t: torch.Tensor) -> torch.Tensor:
        """With ``scheme="reference"``, polarity 1 of each row is one device per column tile:
        copy the draw of the tile's first column to its other columns."""
        if self.config.mapping.scheme != "reference":
            return t
        cols = self.grid[3]
        first = torch.arange(self.n_out, device=t.device) // cols * cols
        t = t.clone()
        t[:, 1] = t[:, 1][..., first]
        return t

    def draw_defects(self) -> None:
        """Draw this chip's static defects: stuck-at faults, device variation, ADC errors."""
        cfg = self.config
        dev = self.conductance.device
        shape = self.conductance.shape
        with torch.no_grad():
            if self.fault_mask.numel():
                f = cfg.faults
                gen = self._gen("faults")
                u = self._share_reference(torch.rand(shape, generator=gen, device=dev))
                off, on = f.stuck_off_rate, f.stuck_off_rate + f.stuck_on_rate
                total = on + f.stuck_random_rate
                # u in [0, off): stuck off (1), [off, on): stuck on (2), [on, total): at a
                # random level (3), else healthy (0): 3 [u < total] - [u < on] - [u < off]
                # (in place on the int8 buffer, the comparisons' bools read as int8: 2x fewer
                # passes over the devices than fresh int8 conversions)
                stuck_off = u < off
                mask = self.fault_mask
                mask.copy_(u < total).mul_(3)
                mask.sub_((u < on).view(torch.int8)).sub_(stuck_off.view(torch.int8))
                g_min, g_max = cfg.mapping.g_min, cfg.mapping.g_max
                level = torch.where(stuck_off, g_min, g_max)
                if f.stuck_random_rate > 0:
                    draw = self._share_reference(torch.rand(shape, generator=gen, device=dev))
                    level = torch.where(self.fault_mask == 3, g_min + (g_max - g_min) * draw, level)
                self.fault_level.copy_(level)
            if self.device_g_max.numel():
                noise = torch.randn(shape, generator=self._gen("variation"), device=dev)
                g_max = cfg.mapping.g_max  # g_max (1 + variation N(0, 1)), floored at 0
                spread = self._share_reference(noise).mul_(g_max * cfg.programming.device_variation)
                self.device_g_max.copy_(spread.add_(g_max).clamp_min_(0.0))
            if self.adc_gain.numel():
                gen = self._gen("adc")
                gain = torch.randn(self.adc_gain.shape, generator=gen, device=dev)
                offset = torch.randn(self.adc_gain.shape, generator=gen, device=dev)
                self.adc_gain.copy_(1.0 + cfg.adc.gain_std * gain)
                self.adc_offset.copy_(cfg.adc.offset_std * offset)

    # ------------------------------------------------------------------ programming
    def _scale(self, w: torch.Tensor) -> torch.Tensor:
        """Weight-to-conductance scale ``[out]`` of ``w [out, in]``: its largest |weight| (per
        output column with ``mapping.scale="column"``)."""
        per_column = self.config.mapping.scale == "column"
        scale = w.abs().amax(1) if per_column else w.abs().amax().expand(self.n_out)
        return scale.clamp_min(torch.finfo(w.dtype).tiny)

    def _targets(self, w: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target conductances ``[S, 2, in, out]`` [S] and slice coefficients of the weights
        ``w [out, in]`` normalised by their ``scale [out]``.

        Differential: sign-magnitude digits on the pair. Reference: the offset-binary code of
        ``(w + 1) / 2`` on the cell against a mid-range reference, so a ``b``-bit cell holds
        its ``2**b`` levels (``w_slice = 2 d - 1``, recombined as ``sum_s c_s (2 d_s - 1)``).
        """
        m = self.config.mapping
        span = m.g_max - m.g_min
        # transposed once into a contiguous [in, out]: the passes below read a transposed
        # view 15x slower than a contiguous one
        wn = w.div(scale.unsqueeze(1)).t().contiguous()
        if m.scheme == "differential":
            digits, coeff = PF.slice_weights(wn, m.bits_per_cell, m.slices)
        else:
            digits, coeff = PF.slice_weights((wn + 1.0) / 2.0, m.bits_per_cell, m.slices)
        pair = digits.new_empty((digits.shape[0], 2, *digits.shape[1:]))
        if m.scheme == "differential":  # |digit| on the device of its sign, 0 on the other
            torch.clamp(digits, min=0.0, out=pair[:, 0])
            torch.clamp(digits, max=0.0, out=pair[:, 1]).neg_()
        else:
            pair[:, 0] = digits
            pair[:, 1] = 0.5
        pair.mul_(span)
        return pair if m.g_min == 0.0 else pair.add_(m.g_min), coeff

    def program(self, matrix: torch.Tensor, *, keep_time: bool = False) -> None:
        """Program ``matrix [out, in]`` onto the chip (programming noise, drift exponents).

        Static defects (faults, variation, ADC errors) are kept. The drift time is reset to 0
        (just programmed) unless ``keep_time``; the compensation reference is measured through
        the chip.
        """
        with torch.no_grad():
            w = matrix.detach()
            if w.shape != (self.n_out, self.n_in):
                raise ValueError(
                    f"weight matrix of shape {tuple(w.shape)} does not fit the "
                    f"{self.n_in}x{self.n_out} crossbar; rebuild the layer for the new shape"
                )
            if not (torch.isfinite(w.sum()) or torch.isfinite(w).all()):
                raise ValueError("weights contain NaN or inf; the chip cannot be programmed")
            check_program(self)
            work = _work_dtype(self.conductance.dtype)
            scale = self._scale(w_work := w.to(work))
            target, coeff = self._targets(w_work, scale)
            target = target.unsqueeze(2).expand(self.conductance.shape)
            self.conductance.copy_(self._programmed(target))
            if self.drift_nu.numel():
                # the PCM fits give nu as a function of the target state g = G_target / g_max
                # (Nandakumar 2019; aihwkit draws nu from g_target), not of the noisy G_prog
                self.drift_nu.copy_(self._drift_exponents(target))
            self.weight_scale.copy_(scale)
            self.slice_coeff.copy_(coeff)
            self.programmed_weight = w.clone()
            t = self.drift_time if keep_time else 0.0
            w0 = self._effective(0.0)
            self.calibration.copy_(self._calibration_response(w0))
            self.drift_time = t
            if t == 0.0:
                # the reference measurement is the read at t = 0: compensation 1 exactly
                self.compensation.fill_(1.0)
                self.w_eff.copy_(self._tiled(w0))
            else:
                self._store(t)

    def _programmed(self, target: torch.Tensor) -> torch.Tensor:
        """Programmed conductances for ``target`` [S]: the device model, then each device's
        own maximum (variation) and stuck-at faults."""
        cfg = self.config
        device = get_device(cfg.programming.model)
        work = target.dtype
        noise = torch.zeros_like(target)
        if device.noisy:
            draw = torch.randn(
                target.shape, generator=self._gen("programming"), device=target.device
            )
            noise = self._share_reference(draw.to(work))
        g = device.program(target, cfg.programming, cfg.mapping.g_max, noise)
        if self.device_g_max.numel():
            g = torch.minimum(g, self.device_g_max.to(work))
        if self.fault_mask.numel():
            g = torch.where(self.fault_mask.bool(), self.fault_level.to(work), g)
        return g

    def _drift_exponents(self, g: torch.Tensor) -> torch.Tensor:
        """Drift exponents of devices with target conductances ``g`` [S]."""
        d = self.config.drift
        gen = self._gen("drift")
        if d.model == "pcm":
            nu = PF.pcm_drift_exponents(g, gen, g_max=self.config.mapping.g_max)
        else:
            noise = torch.randn(g.shape, generator=gen, device=g.device).to(g.dtype)
            nu = (d.nu_mean + d.nu_std * noise).abs()
        nu = self._share_reference(nu)
        if self.fault_mask.numel():
            nu = nu.masked_fill_(self.fault_mask.bool(), 0.0)
        return nu

    # ------------------------------------------------------------------ drift
    def _effective(self, t: float) -> torch.Tensor:
        """Normalised effective weights ``[S, in, out]`` at time ``t`` after programming.

        The accumulated 1/f read noise of PCM is low-frequency: it is drawn once per drift
        time and frozen (as aihwkit's ``drift_analog_weights``), not redrawn per read.
        """
        cfg = self.config
        m = cfg.mapping
        work = _work_dtype(self.conductance.dtype)
        g0 = self.conductance.to(work)
        g = g0
        device = get_device(cfg.programming.model)
        if device.relaxes and t > 0:
            g = self._relaxed(device, g0, t)
        if self.drift_nu.numel() and t > 0:  # the drift factor is exactly 1 at t = 0
            g = g * PF.drift_factor(self.drift_nu.to(work), t, cfg.drift.t0)
        if cfg.read.pcm_1f and cfg.drift.model == "pcm":
            rel = PF.pcm_read_noise_scale(g0, t, cfg.drift.t0, cfg.read.t_read, g_max=m.g_max)
            gen = self._gen(f"read_1f@{t!r}")
            noise = torch.randn(g.shape, generator=gen, device=g.device).to(work)
            # |G| = G: conductances here are >= 0 (programming and faults clamp at 0)
            g = torch.addcmul(g, rel.mul_(g), self._share_reference(noise)).clamp_min_(0.0)
        if cfg.circuit.ir_drop == "fast":
            g = self._ir_drop(g)
        norm = m.devices_per_polarity * (m.g_max - m.g_min)
        if m.scheme == "reference":
            norm /= 2.0
        diff = torch.sub(g[:, 0], g[:, 1])
        return (diff[:, 0] if diff.shape[1] == 1 else diff.sum(1)).mul_(1.0 / norm)

    def _relaxed(self, device: DeviceModel, g: torch.Tensor, t: float) -> torch.Tensor:
        """Conductances ``g`` [S] after the device's relaxation at ``t`` [s]: one normal
        direction per device (the same at every ``t``); stuck devices do not move."""
        cfg = self.config
        w = self.programmed_weight.to(g.dtype)
        target, _ = self._targets(w, self.weight_scale.to(g.dtype))
        target = target.unsqueeze(2).expand(g.shape)
        noise = torch.randn(g.shape, generator=self._gen("relaxation"), device=g.device)
        noise = self._share_reference(noise.to(g.dtype))
        moved = device.relax(g, target, t, cfg.programming, cfg.mapping.g_max, noise)
        if self.fault_mask.numel():
            moved = torch.where(self.fault_mask > 0, g, moved)
        return moved

    def _ir_drop(self, g: torch.Tensor) -> torch.Tensor:
        """Effective conductances with wire resistance: both polarities (and the reference
        column) of a weight share the row wires of one array per tile."""
        c = self.config.circuit
        _, rows, _, cols = self.grid
        return PF.ir_drop_crossbar(
            g,
            tile_rows=rows,
            tile_cols=cols,
            r_row=c.r_wire_row,
            r_col=c.r_wire_col,
            layout=c.column_layout,
            reference=self.config.mapping.scheme == "reference",
        )

    def _tiled(self, w: torch.Tensor) -> torch.Tensor:
        """``[S, in, out] -> [S, T, R, out]`` (rows zero-padded to whole tiles)."""
        t_rows, rows, _, _ = self.grid
        if t_rows * rows != self.n_in:
            w = F.pad(w, (0, 0, 0, t_rows * rows - self.n_in))
        return w.reshape(w.shape[0], t_rows, rows, self.n_out)

    def _calibration_response(self, w: torch.Tensor) -> torch.Tensor:
        """Mean absolute output per column on the fixed calibration inputs, read through the
        chip with weights ``w [S, in, out]`` (DAC, read and output noise, ADC errors, ADC)."""
        n = self.config.drift.calibration_samples
        x = _calibration_inputs(n, self.n_in, w.device, w.dtype)
        one = torch.ones((), device=w.device, dtype=w.dtype)
        y = self._mvm(x, one, self._tiled(w), chip=True, generator=self._gen("calibration"))
        return y.abs().mean(0)

    def _store(self, t: float, w: torch.Tensor | None = None) -> None:
        cfg = self.config
        if w is None:
            w = self._effective(t)
        mode = cfg.drift.compensation
        if mode != "none" and cfg.drift.model != "none":
            now = self._calibration_response(w)
            tiny = torch.finfo(now.dtype).tiny
            if mode == "global":
                self.compensation.fill_(float(self.calibration.mean() / now.mean().clamp_min(tiny)))
            else:
                self.compensation.copy_(self.calibration / now.clamp_min(tiny))
        else:
            self.compensation.fill_(1.0)
        self.w_eff.copy_(self._tiled(w))

    def drift(self, t: float, matrix: torch.Tensor) -> None:
        """Move the chip to ``t`` [s] after programming (drift, 1/f noise, compensation)."""
        t = check_time(t)
        self.ensure_programmed(matrix)
        with torch.no_grad():
            self.drift_time = t
            self._store(t)

    def ensure_programmed(self, matrix: torch.Tensor) -> None:
        """Reprogram (at the same drift time) unless the chip holds exactly ``matrix``."""
        if not _same(matrix.detach(), self.programmed_weight):
            self.program(matrix, keep_time=True)

    def effective_matrix(self, matrix: torch.Tensor) -> torch.Tensor:
        """The weight matrix ``[out, in]`` the chip realises (mean read, compensated)."""
        self.ensure_programmed(matrix)
        w = torch.einsum("s,stro->tro", self.slice_coeff, self.w_eff)
        w = w.reshape(-1, self.n_out)[: self.n_in]
        return (w * (self.weight_scale * self.compensation)).t().to(matrix.dtype)

    # ------------------------------------------------------------------ training hooks
    def after_step(self, weight: torch.Tensor, *, clip: bool) -> None:
        """After an optimiser step: clip ``weight`` (HWA) and let a learned input range decay
        while at most ``1 - hwa.input_range_min_inside`` of the inputs clipped (aihwkit)."""
        hwa = self.config.hwa
        with torch.no_grad():
            if clip and hwa.clip_sigma is not None:
                bound = hwa.clip_sigma * weight.std()
                if torch.isfinite(bound) and bound > 0:
                    weight.clamp_(-bound, bound)
            if self.learned_range and bool(self.input_range_ready):
                inside = self._inside / self._seen if self._seen else 0.0
                if inside > hwa.input_range_min_inside:
                    self.input_range.mul_(1.0 - hwa.input_range_decay)
        self._inside = self._seen = 0

    # ------------------------------------------------------------------ read
    def _input_range(self, x: torch.Tensor) -> torch.Tensor:
        dac = self.config.dac
        tiny = torch.finfo(x.dtype).tiny
        if dac.range_mode == "dynamic":
            return x.detach().abs().amax(-1, keepdim=True).clamp_min(tiny)
        if dac.range_mode == "learned":
            if not self.training and not bool(self.input_range_ready):
                # never trained: no range learned yet, so read like range_mode="dynamic"
                return x.detach().abs().amax(-1, keepdim=True).clamp_min(tiny)
            if self.training and not bool(self.input_range_ready):
                peak = float(x.detach().abs().amax()) if x.numel() else 0.0
                if peak == 0.0:
                    # all-zero inputs (an LSTM's h0) compute 0 at any range: they must not
                    # set it, and must not put the range in the graph before it is set
                    return torch.ones((), device=x.device, dtype=x.dtype)
                with torch.no_grad():
                    self.input_range.fill_(peak)
                    self.input_range_ready.fill_(True)
            r = self.input_range.to(x.dtype).abs().clamp_min(tiny)
            if self.training:
                self._inside += int((x.detach().abs() <= r.detach()).sum())
                self._seen += x.numel()
            return r
        return torch.tensor(dac.input_bound, device=x.device, dtype=x.dtype)

    def forward(
        self, x: torch.Tensor, matrix: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x [N, n_in] -> [N, n_out]``: the analog MVM, plus the digital ``bias [n_out]``.

        Training: hardware-aware forward on the floating-point ``matrix`` (HWA weight noise
        redrawn per mini-batch, output noise, DAC/ADC with straight-through gradients).
        Evaluation: the programmed chip at its drift time (reprogrammed first when
        ``matrix`` changed). The bias is added with the final rescaling, in one pass.
        """
        check_read(self, x)
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        r = self._input_range(x)
        if self.training:
            w = matrix.to(x.dtype)
            scale = self._scale(w.detach())
            hwa_noise = self.config.hwa.weight_noise
            if hwa_noise > 0:
                # one noise matrix per mini-batch (Rasch 2023), std relative to the column's
                # largest weight; it needs no gradient, so it enters through one addcmul
                noise = torch.randn(w.shape, device=w.device, dtype=w.dtype)
                w = torch.addcmul(w, noise, (hwa_noise * scale).unsqueeze(1))
            y = self._mvm(x, r, w, chip=False, generator=None, col_gain=1.0 / scale)
            return _rescaled(y, scale, bias).to(dtype)
        self.ensure_programmed(matrix)
        work = _work_dtype(self.w_eff.dtype)
        gen = self.streams.dynamic(self.key + "read", x.device)
        y = self._mvm(x.to(work), r.to(work), self.w_eff.to(work), chip=True, generator=gen)
        return _rescaled(y, (self.weight_scale * self.compensation).to(work), bias).to(dtype)

    def _products(self, xp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Per-tile array products ``[P, S, T, N, out]`` of the inputs ``xp [P, N, in]``.

        ``w`` is the chip's tiled ``[S, T, R, out]`` or, in training, the matrix
        ``[out, in]``. The inputs of the tiles are strided views (no copies) unless a partial
        last tile needs zero rows.
        """
        t_rows, rows, _, _ = self.grid
        if w.dim() == 2:
            if t_rows == 1:
                return F.linear(xp, w).unsqueeze(1).unsqueeze(1)
            parts = zip(xp.split(rows, -1), w.split(rows, -1), strict=True)
            return torch.stack([F.linear(a, b) for a, b in parts], 1).unsqueeze(1)
        p, n, _ = xp.shape
        if p == 1 and w.shape[0] == 1:  # one read of one slice: one batched matmul of tiles
            x = (
                xp[0]
                if t_rows * rows == self.n_in
                else F.pad(xp[0], (0, t_rows * rows - self.n_in))
            )
            return torch.bmm(x.reshape(n, t_rows, rows).transpose(0, 1), w[0])[None, None]
        if w.shape[0] == 1:  # one slice: a plain (batched over planes) matmul per tile
            tiles = [a @ w[0, t, : a.shape[-1]] for t, a in enumerate(xp.split(rows, -1))]
            return torch.stack(tiles, 1).unsqueeze(1)
        # slices: einsum per tile, as a broadcast 5-D matmul is slow on CPU
        tiles = [
            torch.einsum("pnr,sro->psno", a, w[:, t, : a.shape[-1]])
            for t, a in enumerate(xp.split(rows, -1))
        ]
        return torch.stack(tiles, 2)

    def _mvm(
        self,
        x: torch.Tensor,
        r: torch.Tensor,
        w: torch.Tensor,
        *,
        chip: bool,
        generator: torch.Generator | None,
        col_gain: float | torch.Tensor = 1.0,
    ) -> torch.Tensor:
        """Normalised MVM of ``x [N, in]`` read with input range ``r`` -> ``[N, out]`` times
        ``r``, through the periphery.

        DAC codes, bit planes (chip reads only), I-V, per-tile array products with ``w``
        (see :meth:`_products`; ``col_gain`` normalises its columns), per-read weight noise
        and output noise (one exact normal per output: they are independent and normal),
        static ADC errors (chip reads), ADC per plane, slice and tile, then digital
        shift-and-add. Signals stay in units of the ADC step from the array to the ADC, so
        every normalisation is one multiplication.
        """
        cfg = self.config
        dac, adc = cfg.dac, cfg.adc
        plane_w: torch.Tensor | None = None
        unit = 1.0  # normalised input per unit of xp
        if dac.bits is not None:
            codes = periphery.dac_codes(x, dac.bits, r, inside=dac.range_mode == "dynamic")
            levels = 2 ** (dac.bits - 1) - 1
            if dac.bit_serial and chip:
                xp, plane_w = periphery.bit_planes(codes, dac.bits)  # [P, N, in]
            else:
                xp, unit = codes.unsqueeze(0), 1.0 / levels
        else:
            xp = (x / r).unsqueeze(0)
        if cfg.circuit.iv_v0 is not None:
            v = cfg.circuit.v_read
            xp = periphery.sinh_iv(xp * (unit * v), cfg.circuit.iv_v0) / v
            unit = 1.0
        y = self._products(xp, w)  # a fresh tensor: updated in place below where autograd allows
        step = 1.0 if adc.bits is None else adc.output_bound / (2 ** (adc.bits - 1) - 1)
        to_steps = col_gain * (unit / step)  # to ADC-step units, from here to the ADC
        gain = self.adc_gain.to(y.dtype) if chip and self.adc_gain.numel() else None
        if gain is not None:  # the scaling to ADC steps folds into the per-column gain
            y = torch.addcmul(self.adc_offset.to(y.dtype) / step, y, gain * to_steps)
            to_steps = 1.0
        var: float | torch.Tensor = (math.hypot(cfg.read.output_noise, adc.noise) / step) ** 2
        if chip and cfg.read.weight_noise > 0:
            t_rows, rows, _, _ = self.grid
            x_tiles = (
                xp if t_rows * rows == self.n_in else F.pad(xp, (0, t_rows * rows - self.n_in))
            )
            x_tiles = x_tiles.reshape(xp.shape[0], 1, xp.shape[1], t_rows, rows).transpose(2, 3)
            read = periphery.read_noise_variance(x_tiles, cfg.read.weight_noise * unit / step)
            if gain is not None:
                var = torch.addcmul(read.new_tensor(var), read, gain.square())
            else:
                var = read.add_(var)
        if isinstance(var, torch.Tensor):  # var is a fresh tensor without gradient
            noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
            y, sd = _scaled(y, to_steps), var.sqrt_()
            y = torch.addcmul(y, noise, sd) if y.requires_grad else y.addcmul_(noise, sd)
        elif var > 0:  # scaling and noise in one pass, into the noise draw
            noise = torch.empty_like(y).normal_(0.0, math.sqrt(var), generator=generator)
            if isinstance(to_steps, torch.Tensor):
                y = noise.addcmul_(y, to_steps)
            else:
                y = noise.add_(y, alpha=to_steps)
        else:
            y = _scaled(y, to_steps)
        if adc.bits is not None:
            y = periphery.adc_codes(y, adc.bits, owned=True)
        # digital shift-and-add of planes, slices (the chip's coefficients) and tiles
        coeff = self.slice_coeff.to(y.dtype) * step if chip else y.new_full((1,), step)
        if y.shape[:2] == (1, 1):  # tiles only: their sum, scaled once
            tiles = y[0, 0]
            out = tiles[0] if len(tiles) == 1 else torch.add(tiles[0], tiles[1])
            for t in range(2, len(tiles)):  # not a loop over tiles[2:]: that costs 20 us a read
                out = out.add_(tiles[t])
            return _scaled(out, coeff[0] * r)
        weights = coeff[:, None, None, None]
        if plane_w is not None:
            weights = plane_w.to(y.dtype)[:, None, None, None, None] * weights
        out = (y * weights).sum((0, 1, 2))
        if plane_w is not None and codes.requires_grad:
            # bits carry no gradient: pass d/dx of the parallel product straight through
            combined = torch.einsum("s,stro->tro", self.slice_coeff.to(w.dtype), w)
            lin = (codes / levels) @ combined.reshape(-1, self.n_out)[: self.n_in]
            out = out + (lin - lin.detach())
        return out * r

    # ------------------------------------------------------------------ state dict
    def get_extra_state(self) -> dict[str, float]:
        return {"drift_time": self.drift_time}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or "drift_time" not in state:
            raise ValueError(f"CrossbarTile: malformed extra state {state!r}")
        self.drift_time = check_time(state["drift_time"])

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # The owning layer decides (from the saved and the resulting config) whether a saved
        # chip is this chip; without saved chip state (e.g. an nn.Linear state dict) the chip
        # is kept and reprogrammed from the loaded weights on the next read.
        decision, self.load_saved_chip = self.load_saved_chip, None
        present = any(k.startswith(prefix) for k in state_dict)
        if not present:
            return
        if decision is False:
            saved = state_dict.get(prefix + "_extra_state")
            if isinstance(saved, dict) and saved.get("drift_time", 0.0) != self.drift_time:
                self.drift_time = check_time(saved["drift_time"])
                with torch.no_grad():
                    self._store(self.drift_time)
            return
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        t_rows, _, t_cols, _ = self.grid
        return f"{self.n_in}x{self.n_out}, tiles={t_rows}x{t_cols}, t={self.drift_time:g}s"
