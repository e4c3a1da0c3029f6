"""Crossbar layers: ``PIMLinear``, ``PIMConv1d``, ``PIMConv2d``, ``PIMLSTM``, ``PIMGRU``.

Each layer keeps torch's ``weight``/``bias`` parameters (same names and shapes) and, in
buffers, the chip they are programmed onto: device conductances, drift exponents, stuck-at
masks, the drift time, ADC gain/offset errors and the calibration data of drift compensation.
From these, the effective normalised weight at the current drift time (with IR drop) and the
per-read noise std are precomputed once, so an evaluation forward pass is one noise draw of
the weight's shape, one (batched over tiles) matmul and a few elementwise converter ops.

Modes:
    - ``train()``: hardware-aware training (Rasch et al., Nat. Commun. 14, 5282, 2023):
      weight and output noise injection and DAC/ADC quantisation with straight-through
      gradients on the floating-point weights; ``after_step()`` clips weights.
    - ``eval()``: the programmed chip at its drift time, read noise redrawn per forward.
    - inside ``physnn.ideal()`` or with an ideal config: exactly ``nn.Linear``/``nn.Conv``.

A layer whose weights changed since programming (training, ``load`` of other weights, manual
edits) is reprogrammed automatically on its next evaluation forward pass.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..common.config import BackendConfig
from ..common.cost import Cost
from ..common.layer import PhysicalModule
from ..common.rng import is_ideal
from . import functional as PF
from .config import PIMConfig
from .cost import crossbar_cost, tile_grid

__all__ = ["PIMGRU", "PIMLSTM", "PIMConv1d", "PIMConv2d", "PIMLinear", "drift"]

_CALIBRATION_SEED = 20190601
"""Seed of the fixed calibration inputs of drift compensation (the same on every chip)."""


def _empty(device: Any, dtype: Any) -> torch.Tensor:
    return torch.empty(0, device=device, dtype=dtype)


def _check_time(t: float) -> float:
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise ValueError(
            f"drift time t={t!r} must be a finite number of seconds >= 0 "
            "(1 day is 86400, 1 year 3.15e7)"
        )
    return float(t)


def _crossbar_parameter_counts(module: nn.Module) -> dict[str, int]:
    """Weights live on the crossbars; biases and learned input ranges are digital."""
    counts = {"physical": 0, "classical": 0}
    for name, p in module.named_parameters():
        if p.requires_grad:
            key = "physical" if name.rpartition(".")[2].startswith("weight") else "classical"
            counts[key] += p.numel()
    return counts


class _Crossbar(PhysicalModule):
    """Chip state and analog MVM of a weight matrix ``[n_out, n_in]`` (mixin).

    Subclasses provide ``_matrix()`` (the weight as ``[n_out, n_in]``) and call
    ``_init_chip(n_in, n_out, device, dtype)`` after ``_init_physical``.

    Buffers (the chip; shapes with ``S`` slices, polarity 2, ``D`` devices per polarity,
    ``T`` row tiles of ``R`` rows; empty when the mechanism is off):
        drift_time: seconds since programming [s] (float64).
        conductance: programmed conductances ``[S, 2, D, in, out]`` [S]; polarity 1 is the
            negative device or, with ``scheme="reference"``, the row's reference device.
        drift_nu: drift exponents, like ``conductance`` [1].
        fault_mask: 0 healthy, 1 stuck at ``g_min``, 2 stuck at ``g_max``, 3 stuck at a random
            level ``fault_level`` [S].
        device_g_max: each device's largest reachable conductance (variation) [S].
        adc_gain, adc_offset: static ADC errors per slice, tile and column ``[S, T, 1, out]``.
        weight_scale: weight mapped to ``g_max``, per column ``[out]``.
        slice_coeff: shift-and-add weights of the slices ``[S]``.
        calibration, compensation: drift-compensation reference and factor ``[out]``.
        w_eff: normalised effective weights at ``drift_time`` ``[S, T, R, out]``.
        read_std: per-read weight-noise std, like ``w_eff``.
    """

    def parameter_counts(self) -> dict[str, int]:
        return _crossbar_parameter_counts(self)

    config_type = PIMConfig
    transfers_weights = True
    config: PIMConfig
    weight: torch.Tensor
    drift_time: torch.Tensor
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
    read_std: torch.Tensor
    input_range: torch.Tensor
    input_range_ready: torch.Tensor

    @abc.abstractmethod
    def _matrix(self) -> torch.Tensor:
        """The weight as a ``[n_out, n_in]`` matrix (a view of the torch parameter)."""

    # ------------------------------------------------------------------ construction
    def _init_chip(self, n_in: int, n_out: int, device: Any, dtype: Any) -> None:
        cfg = self.config
        m = cfg.mapping
        self._n_in = n_in
        self._n_out = n_out
        self._grid = tile_grid(n_in, n_out, cfg)
        shape = (m.slices, 2, m.devices_per_polarity, n_in, n_out)
        factory: dict[str, Any] = {
            "device": device,
            "dtype": dtype if dtype is not None else torch.get_default_dtype(),
        }
        faults = cfg.faults
        has_faults = (faults.stuck_off_rate + faults.stuck_on_rate + faults.stuck_random_rate) > 0
        self.register_buffer("drift_time", torch.zeros((), device=device, dtype=torch.float64))
        self.register_buffer("conductance", torch.zeros(shape, **factory))
        self.register_buffer(
            "drift_nu",
            torch.zeros(shape, **factory) if cfg.drift.model != "none" else _empty(**factory),
        )
        self.register_buffer(
            "fault_mask",
            torch.zeros(shape, device=device, dtype=torch.int8)
            if has_faults
            else torch.empty(0, device=device, dtype=torch.int8),
        )
        self.register_buffer(
            "fault_level", torch.zeros(shape, **factory) if has_faults else _empty(**factory)
        )
        self.register_buffer(
            "device_g_max",
            torch.zeros(shape, **factory)
            if cfg.programming.device_variation > 0
            else _empty(**factory),
        )
        t_rows, rows, _, _ = self._grid
        tiles = (m.slices, t_rows, 1, n_out)
        adc_static = cfg.adc.gain_std > 0 or cfg.adc.offset_std > 0
        self.register_buffer(
            "adc_gain", torch.ones(tiles, **factory) if adc_static else _empty(**factory)
        )
        self.register_buffer(
            "adc_offset", torch.zeros(tiles, **factory) if adc_static else _empty(**factory)
        )
        self.register_buffer("weight_scale", torch.ones(n_out, **factory))
        self.register_buffer("slice_coeff", torch.ones(m.slices, **factory))
        self.register_buffer("calibration", torch.ones(n_out, **factory))
        self.register_buffer("compensation", torch.ones(n_out, **factory))
        self.register_buffer("w_eff", torch.zeros(m.slices, t_rows, rows, n_out, **factory))
        self.register_buffer(
            "read_std",
            torch.zeros(m.slices, t_rows, rows, n_out, **factory)
            if self._has_read_noise()
            else _empty(**factory),
        )
        if cfg.dac.range_mode == "learned":
            self.input_range = nn.Parameter(torch.tensor(cfg.dac.input_bound, **factory))
            self.register_buffer(
                "input_range_ready", torch.zeros((), dtype=torch.bool, device=device)
            )
        self._refresh_flags()
        self._draw_chip()
        self.program()

    def _has_read_noise(self) -> bool:
        r = self.config.read
        return (r.pcm_1f and self.config.drift.model == "pcm") or r.weight_noise > 0

    def _refresh_flags(self) -> None:
        self._ideal_config = self.config.is_ideal
        self._programmed_version = -1

    # ------------------------------------------------------------------ chip state
    def _draw_chip(self) -> None:
        """Draw the static defects of this chip: stuck-at faults, device variation, ADC errors."""
        cfg = self.config
        with torch.no_grad():
            if self.fault_mask.numel():
                f = cfg.faults
                gen = self.streams.static("faults", self.conductance.device)
                u = torch.rand(
                    self.conductance.shape, generator=gen, device=self.conductance.device
                )
                mask = torch.zeros_like(self.fault_mask)
                edges = (f.stuck_off_rate, f.stuck_off_rate + f.stuck_on_rate)
                total = edges[1] + f.stuck_random_rate
                mask[u < edges[0]] = 1
                mask[(u >= edges[0]) & (u < edges[1])] = 2
                mask[(u >= edges[1]) & (u < total)] = 3
                self.fault_mask.copy_(mask)
                level = torch.rand(u.shape, generator=gen, device=u.device, dtype=u.dtype)
                g_min, g_max = cfg.mapping.g_min, cfg.mapping.g_max
                level = g_min + (g_max - g_min) * level
                level = torch.where(mask == 1, g_min, torch.where(mask == 2, g_max, level))
                self.fault_level.copy_(level.to(self.fault_level.dtype))
            if self.device_g_max.numel():
                gen = self.streams.static("variation", self.conductance.device)
                noise = torch.randn(
                    self.conductance.shape, generator=gen, device=self.conductance.device
                )
                spread = 1.0 + cfg.programming.device_variation * noise
                self.device_g_max.copy_(cfg.mapping.g_max * spread.clamp_min(0.0))
            if self.adc_gain.numel():
                gen = self.streams.static("adc", self.adc_gain.device)
                shape = self.adc_gain.shape
                gain = torch.randn(shape, generator=gen, device=self.adc_gain.device)
                offset = torch.randn(shape, generator=gen, device=self.adc_gain.device)
                self.adc_gain.copy_(1.0 + cfg.adc.gain_std * gain)
                self.adc_offset.copy_(cfg.adc.offset_std * offset)

    def resample_noise(self) -> None:
        """A new chip from the same design: redraw faults, variation, ADC errors, programming."""
        super().resample_noise()
        self._draw_chip()
        self.program()

    def program(self) -> None:
        """Program the current weights onto the chip (programming noise, drift exponents).

        The drift time is reset to 0 (just programmed) and the compensation reference is
        measured. Static defects (faults, variation) of the chip are kept.
        """
        cfg = self.config
        m = cfg.mapping
        with torch.no_grad():
            w = self._matrix().detach()
            if not torch.isfinite(w).all():
                raise ValueError(f"{type(self).__name__}: weights contain NaN or inf")
            wt = w.t().to(self.conductance.dtype)
            scale = self._scale(wt).expand(self._n_out)
            digits, coeff = PF.slice_weights(wt / scale, m.bits_per_cell, m.slices)
            span = m.g_max - m.g_min
            if m.scheme == "differential":
                pos, neg = digits.clamp_min(0.0), (-digits).clamp_min(0.0)
            else:
                pos, neg = (digits + 1.0) / 2.0, torch.full_like(digits, 0.5)
            target = m.g_min + span * torch.stack((pos, neg), 1)  # [S, 2, in, out]
            target = target.unsqueeze(2).expand(self.conductance.shape)
            g = self._programmed(target)
            self.conductance.copy_(g)
            if self.drift_nu.numel():
                # the PCM fits give nu as a function of the target state g = G_target / g_max
                # (Nandakumar 2019; aihwkit draws nu from g_target), not of the noisy G_prog
                self.drift_nu.copy_(self._drift_exponents(target))
            self.weight_scale.copy_(scale)
            self.slice_coeff.copy_(coeff)
            self.drift_time.zero_()
            w0, _ = self._effective(0.0)
            self.calibration.copy_(self._calibration_response(w0))
            self._store(0.0)
        self._programmed_version = self.weight._version

    def _programmed(self, target: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        p = cfg.programming
        dev = target.device
        g = target
        if p.model != "none":
            gen = self.streams.static("programming", dev)
            noise = torch.randn(target.shape, generator=gen, device=dev, dtype=target.dtype)
            if cfg.mapping.scheme == "reference":
                # one reference device per row, shared by all columns
                noise[:, 1] = noise[:, 1, ..., :1]
            if p.model == "pcm":
                sigma = PF.pcm_programming_sigma(target / cfg.mapping.g_max, cfg.mapping.g_max)
            elif p.model == "measured":
                target, sigma = PF.snap_to_levels(target, p.levels, p.level_sigma)
            else:
                sigma = torch.sqrt(p.sigma_abs**2 + (p.sigma_rel * target) ** 2)
            g = (target + sigma * noise).clamp_min(0.0)
        if self.device_g_max.numel():
            g = torch.minimum(g, self.device_g_max)
        if self.fault_mask.numel():
            g = torch.where(self.fault_mask > 0, self.fault_level, g)
        return g

    def _drift_exponents(self, g: torch.Tensor) -> torch.Tensor:
        """Drift exponents of devices with target conductances ``g`` [S]."""
        d = self.config.drift
        gen = self.streams.static("drift", g.device)
        if d.model == "pcm":
            nu = PF.pcm_drift_exponents(g / self.config.mapping.g_max, gen)
        else:
            noise = torch.randn(g.shape, generator=gen, device=g.device, dtype=g.dtype)
            nu = (d.nu_mean + d.nu_std * noise).abs()
        if self.config.mapping.scheme == "reference":
            # one reference device per row, shared by all columns (as in _programmed)
            nu[:, 1] = nu[:, 1, ..., :1].clone()
        if self.fault_mask.numel():
            nu = torch.where(self.fault_mask > 0, 0.0, nu)
        return nu

    def _effective(self, t: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised effective weights ``[S, in, out]`` and per-read noise std at time t."""
        cfg = self.config
        m = cfg.mapping
        g = self.conductance
        if self.drift_nu.numel():
            g = g * PF.drift_factor(self.drift_nu, t, cfg.drift.t0)
        var = None
        if cfg.read.pcm_1f and cfg.drift.model == "pcm":
            rel = PF.pcm_read_noise_scale(
                self.conductance / m.g_max, t, cfg.drift.t0, cfg.read.t_read
            )
            var = ((g * rel) ** 2).sum((1, 2))
        if cfg.circuit.ir_drop == "fast":
            g = self._ir_drop(g)
        norm = m.devices_per_polarity * (m.g_max - m.g_min)
        if m.scheme == "reference":
            norm /= 2.0
        w = (g[:, 0] - g[:, 1]).sum(1) / norm
        std = None
        if var is not None or cfg.read.weight_noise > 0:
            total = (var / norm**2) if var is not None else torch.zeros_like(w)
            std = torch.sqrt(total + cfg.read.weight_noise**2)
        return w, std

    def _ir_drop(self, g: torch.Tensor) -> torch.Tensor:
        c = self.config.circuit
        t_rows, rows, t_cols, cols = self._grid
        lead = g.shape[:3]
        padded = F.pad(g, (0, t_cols * cols - self._n_out, 0, t_rows * rows - self._n_in))
        tiles = padded.reshape(*lead, t_rows, rows, t_cols, cols).transpose(-3, -2)
        eff = PF.ir_drop_fast(tiles, r_row=c.r_wire_row, r_col=c.r_wire_col)
        eff = eff.transpose(-3, -2).reshape(*lead, t_rows * rows, t_cols * cols)
        return eff[..., : self._n_in, : self._n_out]

    def _calibration_response(self, w: torch.Tensor) -> torch.Tensor:
        """Mean absolute output per column on the fixed calibration inputs."""
        gen = torch.Generator(device=w.device)
        gen.manual_seed(_CALIBRATION_SEED)
        n = self.config.drift.calibration_samples
        x = torch.rand((n, self._n_in), generator=gen, device=w.device, dtype=w.dtype) * 2 - 1
        combined = torch.einsum("s,sio->io", self.slice_coeff, w)
        return (x @ combined).abs().mean(0)

    def _store(self, t: float) -> None:
        cfg = self.config
        w, std = self._effective(t)
        mode = cfg.drift.compensation
        if mode != "none" and cfg.drift.model != "none":
            now = self._calibration_response(w)
            tiny = torch.finfo(now.dtype).tiny
            if mode == "global":
                factor = self.calibration.mean() / now.mean().clamp_min(tiny)
                self.compensation.fill_(float(factor))
            else:
                self.compensation.copy_(self.calibration / now.clamp_min(tiny))
        else:
            self.compensation.fill_(1.0)
        t_rows, rows, _, _ = self._grid
        pad = t_rows * rows - self._n_in
        self.w_eff.copy_(F.pad(w, (0, 0, 0, pad)).reshape(self.w_eff.shape))
        if std is not None and self.read_std.numel():
            self.read_std.copy_(F.pad(std, (0, 0, 0, pad)).reshape(self.read_std.shape))

    def drift(self, t: float) -> None:
        """Move the chip to ``t`` seconds after programming (drift, 1/f noise, compensation)."""
        t = _check_time(t)
        self._ensure_programmed()
        with torch.no_grad():
            self.drift_time.fill_(t)
            self._store(t)

    def _ensure_programmed(self) -> None:
        if self.weight._version != self._programmed_version:
            t = float(self.drift_time)
            self.program()
            if t > 0:
                self.drift(t)

    def _sync_version(self) -> None:
        self._programmed_version = self.weight._version

    # ------------------------------------------------------------------ torch plumbing
    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self._ideal_config = self.config.is_ideal

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # moving or casting the layer keeps the programmed chip (and a float64 drift time)
        synced = self._programmed_version == self.weight._version
        t = float(self.drift_time)
        result = super()._apply(fn, recurse)
        self.drift_time = torch.tensor(t, dtype=torch.float64, device=self.drift_time.device)
        if synced:
            self._sync_version()
        return result

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._sync_version()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        # the loaded buffers are the chip programmed from the loaded weights
        self._sync_version()

    def after_step(self) -> None:
        """Clip weights (HWA) and decay a learned input range after an optimiser step."""
        hwa = self.config.hwa
        with torch.no_grad():
            if hwa.clip_sigma is not None and not self._ideal_config:
                w = self.weight
                bound = hwa.clip_sigma * w.std()
                if torch.isfinite(bound) and bound > 0:
                    w.clamp_(-bound, bound)
            if self.config.dac.range_mode == "learned" and bool(self.input_range_ready):
                r = self.input_range
                r.mul_(1.0 - hwa.input_range_decay).clamp_(min=1e-6)

    # ------------------------------------------------------------------ forward
    def _input_range(self, x: torch.Tensor) -> torch.Tensor:
        dac = self.config.dac
        if dac.range_mode == "dynamic":
            return x.detach().abs().amax(-1, keepdim=True).clamp_min(1e-12)
        if dac.range_mode == "learned":
            if self.training and not bool(self.input_range_ready):
                with torch.no_grad():
                    self.input_range.fill_(float(x.detach().abs().amax().clamp_min(1e-6)))
                    self.input_range_ready.fill_(True)
            return self.input_range.abs().clamp_min(1e-6)
        return torch.tensor(dac.input_bound, device=x.device, dtype=x.dtype)

    def _crossbar(self, x: torch.Tensor) -> torch.Tensor:
        """The analog MVM of ``x [N, n_in]`` (train: HWA noise; eval: the programmed chip).

        Signals are carried in converter code units (integers after each converter) and the
        converters' step sizes are folded into one digital scale at the end.
        """
        cfg = self.config
        dac = cfg.dac
        adc = cfg.adc
        dev = x.device
        r = self._input_range(x)
        unit = 1.0  # normalised input per code unit
        planes_coeff: torch.Tensor | None = None
        if dac.bits is not None:
            levels = 2 ** (dac.bits - 1) - 1
            xq = PF.quantize_codes(x * (levels / r), levels)
            unit = 1.0 / levels
            if dac.bit_serial and not self.training:
                bits = torch.arange(dac.bits - 1, device=dev)
                planes_coeff = (2.0**bits).to(x.dtype)
                mag = torch.div(xq.abs(), planes_coeff[:, None, None], rounding_mode="floor")
                xq = torch.sign(xq) * torch.remainder(mag, 2)  # [P, N, in] bit planes
        else:
            xq = x / r
        if xq.dim() == 2:
            xq = xq.unsqueeze(0)  # [P, N, in]
        if cfg.circuit.iv_v0 is not None:
            v = cfg.circuit.v_read * unit
            xq = PF.sinh_iv(xq * v, cfg.circuit.iv_v0) / v
        w, scale, coeff = self._weights(x)
        y = self._tile_matmul(xq, w)  # [P, S, T, N, out] in units of `unit`
        if adc.bits is not None:
            levels = 2 ** (adc.bits - 1) - 1
            out_unit = adc.output_bound / levels
        else:
            out_unit = unit
        to_out = unit / out_unit
        if self.adc_gain.numel():
            y = y * (self.adc_gain * to_out) + self.adc_offset / out_unit
        elif to_out != 1.0:
            y = y * to_out
        sigma = math.hypot(cfg.read.output_noise, adc.noise)
        if sigma > 0:
            if self.training:
                noise = torch.randn(y.shape, device=dev, dtype=y.dtype)
            else:
                noise = PF.gaussian_noise(
                    tuple(y.shape),
                    generator=self.streams.dynamic("output", dev),
                    device=dev,
                    dtype=y.dtype,
                    table=cfg.read.noise_table,
                )
            y = torch.add(y, noise, alpha=sigma / out_unit)
        if adc.bits is not None:
            y = PF.quantize_codes(y, 2 ** (adc.bits - 1) - 1)
        if planes_coeff is not None or y.shape[1] > 1 or y.shape[2] > 1:
            weights = coeff[:, None, None, None]
            if planes_coeff is not None:
                weights = planes_coeff[:, None, None, None, None] * weights
            y = (y * weights).sum((0, 1, 2))
        else:
            y = y[0, 0, 0]
        if r.dim() == 0:
            return y * (scale * (r * out_unit))
        return y * r * (scale * out_unit)

    def _weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tile weights ``[S, T, R, out]``, digital output scale and slice coefficients.

        Training: the floating-point weights, normalised, with HWA weight noise. Evaluation:
        the programmed chip at its drift time with per-read noise drawn once for the batch.
        """
        t_rows, rows, _, _ = self._grid
        if self.training:
            hwa = self.config.hwa
            matrix = self._matrix()
            scale = self._scale(matrix.detach().t())
            w = (matrix.t() / scale).unsqueeze(0)
            if hwa.weight_noise > 0:
                w = w + hwa.weight_noise * torch.randn_like(w)
            w = F.pad(w, (0, 0, 0, t_rows * rows - self._n_in)).reshape(1, t_rows, rows, -1)
            return w, scale, torch.ones(1, device=x.device, dtype=x.dtype)
        self._ensure_programmed()
        w = self.w_eff
        if self.read_std.numel():
            noise = PF.gaussian_noise(
                tuple(w.shape),
                generator=self.streams.dynamic("read", x.device),
                device=x.device,
                dtype=w.dtype,
                table=self.config.read.noise_table,
            )
            w = torch.addcmul(w, self.read_std, noise)
        return w, self.weight_scale * self.compensation, self.slice_coeff

    def _scale(self, wt: torch.Tensor) -> torch.Tensor:
        """Weight-to-conductance scale of ``wt [in, out]``: its largest |weight| (per column)."""
        per_column = self.config.mapping.scale == "column"
        scale = wt.abs().amax(0) if per_column else wt.abs().amax()
        return scale.clamp_min(torch.finfo(wt.dtype).tiny)

    def _tile_matmul(self, xn: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[P, N, in] x [S, T, R, out] -> [P, S, T, N, out]`` (tiles batched, no Python loop)."""
        p, n, _ = xn.shape
        s, t_rows, rows, n_out = w.shape
        if t_rows * rows != self._n_in:
            xn = F.pad(xn, (0, t_rows * rows - self._n_in))
        if p == 1 and s == 1 and t_rows == 1:
            return (xn[0] @ w[0, 0]).reshape(1, 1, 1, n, n_out)
        x4 = xn.reshape(p, n, t_rows, rows)
        return torch.einsum("pntr,stro->pstno", x4, w)

    def _check_features(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self._n_in:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                f"{self._n_in} (input shape {tuple(x.shape)})"
            )

    def _analog(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer's matrix to ``x [..., n_in]`` (ideal or analog), without bias."""
        self._check_features(x)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self._n_in)
        ideal = is_ideal() or self._ideal_config
        y = flat @ self._matrix().t() if ideal else self._crossbar(flat)
        _check_finite(self, x, y)
        return y.reshape(*lead, self._n_out)

    def _mvm_cost(self, n_mvm: int) -> Cost:
        return crossbar_cost(self.config, self._n_in, self._n_out, n_mvm)

    def _chip_repr(self) -> str:
        t_rows, _, t_cols, _ = self._grid
        return f"{self._physical_repr()}, tiles={t_rows}x{t_cols}, t={float(self.drift_time):g}s"


def _check_finite(layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ``ValueError`` when the output is not finite (one reduction in the normal case)."""
    if torch.isfinite(y.sum()) or torch.isfinite(y).all():
        return
    if not torch.isfinite(x).all():
        raise ValueError(f"{type(layer).__name__}: input contains NaN or inf")
    raise ValueError(f"{type(layer).__name__}: weights or input range are not finite")


class PIMLinear(_Crossbar, nn.Linear):
    """``nn.Linear`` computed on analog crossbar tiles.

    Args:
        in_features: input width (crossbar rows).
        out_features: output width (crossbar columns).
        bias: learn an additive bias (applied digitally).
        config: the accelerator (default: ``PIMConfig()``, the ``pcm`` device model).
        name: qualified name, seeds this layer's random streams.
        device: torch device.
        dtype: torch dtype.

    Shape:
        ``(*, in_features) -> (*, out_features)``.

    Physics:
        See :mod:`physnn.pim.layers` and :class:`~physnn.pim.config.PIMConfig`.

    Examples:
        >>> import torch, physnn.pim as pim
        >>> layer = pim.PIMLinear(64, 10, config=pim.presets.get("pcm", seed=0))
        >>> layer.eval()(torch.rand(8, 64)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg}={value!r} must be a positive int")
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_physical(config, name)
        self._init_chip(in_features, out_features, device, dtype)

    def _matrix(self) -> torch.Tensor:
        return self.weight

    def reset_parameters(self) -> None:
        nn.Linear.reset_parameters(self)
        if hasattr(self, "_grid"):
            self.program()

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> PIMLinear:
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        layer = cls(
            module.in_features,
            module.out_features,
            module.bias is not None,
            config=config,  # type: ignore[arg-type]
            name=name,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(module.weight)
            if module.bias is not None and layer.bias is not None:
                layer.bias.copy_(module.bias)
        layer.program()
        return layer

    def to_torch(self) -> nn.Linear:
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            linear.weight.copy_(self.weight)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-1], self.out_features)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        return self._mvm_cost(math.prod(input_shape[:-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_ideal() or self._ideal_config:
            self._check_features(x)
            y = F.linear(x, self.weight, self.bias)
            _check_finite(self, x, y)
            return y
        y = self._analog(x)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"{nn.Linear.extra_repr(self)}, {self._chip_repr()}"


class _PIMConv(_Crossbar):
    """Convolution lowered to crossbar MVMs by unfolding (im2col)."""

    torch_type: type[nn.Conv1d] | type[nn.Conv2d]
    _nd: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    bias: torch.Tensor | None
    padding: str | tuple[int, ...]
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"]
    _reversed_padding_repeated_twice: list[int]

    def _setup(self, config: PIMConfig | None, name: str, device: Any, dtype: Any) -> None:
        if self.groups != 1:
            raise ValueError(
                f"{type(self).__name__}: groups={self.groups} is not supported (a crossbar "
                "maps one dense matrix); split the grouped conv into groups=1 convs"
            )
        self._init_physical(config, name)
        n_in = self.in_channels * math.prod(self.kernel_size)
        self._init_chip(n_in, self.out_channels, device, dtype)

    def _matrix(self) -> torch.Tensor:
        return self.weight.flatten(1)

    def reset_parameters(self) -> None:
        self.torch_type.reset_parameters(self)  # type: ignore[arg-type]
        if hasattr(self, "_grid"):
            self.program()

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> _PIMConv:
        cls.check_module(module, cls.torch_type, exact=True)
        cls.check_config(config)
        assert isinstance(module, nn.Conv1d | nn.Conv2d)
        layer = cls(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
            config=config,
            name=name,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(module.weight)
            if module.bias is not None and layer.bias is not None:
                layer.bias.copy_(module.bias)
        layer.program()
        return layer

    def to_torch(self) -> nn.Module:
        conv = self.torch_type(
            self.in_channels,
            self.out_channels,
            self.kernel_size,  # type: ignore[arg-type]
            stride=self.stride,  # type: ignore[arg-type]
            padding=self.padding,  # type: ignore[arg-type]
            dilation=self.dilation,  # type: ignore[arg-type]
            groups=self.groups,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            if self.bias is not None and conv.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        from ..common.cost import output_shape

        out = output_shape(self.to_torch(), input_shape)
        assert out is not None
        return out

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        out = self.output_shape(input_shape)
        positions = math.prod(out[-self._nd :]) * math.prod(out[: -self._nd - 1])
        return self._mvm_cost(positions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd = self._nd
        if x.dim() not in (nd + 1, nd + 2):
            raise ValueError(
                f"{type(self).__name__}: expected a {nd + 2}-D (batched) or {nd + 1}-D input, "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[-nd - 1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-nd - 1]} channels, expected "
                f"{self.in_channels} (input shape {tuple(x.shape)})"
            )
        unbatched = x.dim() == nd + 1
        if unbatched:
            x = x.unsqueeze(0)
        if is_ideal() or self._ideal_config:
            y = self.torch_type._conv_forward(self, x, self.weight, self.bias)  # type: ignore[arg-type]
            _check_finite(self, x, y)
            return y.squeeze(0) if unbatched else y
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        x = F.pad(x, self._reversed_padding_repeated_twice, mode=mode)
        if nd == 1:
            x2 = x.unsqueeze(2)
            kernel, dil, stride = (1, *self.kernel_size), (1, *self.dilation), (1, *self.stride)
        else:
            x2, kernel, dil, stride = x, self.kernel_size, self.dilation, self.stride
        cols = F.unfold(x2, kernel, dilation=dil, stride=stride)  # [B, C*k, L]
        batch = cols.shape[0]
        y = self._analog(cols.transpose(1, 2))  # [B, L, out]
        if self.bias is not None:
            y = y + self.bias
        spatial = [
            (x.shape[-nd + i] - self.dilation[i] * (self.kernel_size[i] - 1) - 1) // self.stride[i]
            + 1
            for i in range(nd)
        ]
        y = y.transpose(1, 2).reshape(batch, self.out_channels, *spatial)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return f"{self.torch_type.extra_repr(self)}, {self._chip_repr()}"  # type: ignore[arg-type]


class PIMConv1d(_PIMConv, nn.Conv1d):
    """``nn.Conv1d`` on crossbar tiles (im2col); same arguments as ``nn.Conv1d``.

    Shape:
        ``(N, C_in, L) -> (N, C_out, L_out)``; ``groups`` must be 1.
    """

    torch_type = nn.Conv1d
    _nd = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: str | int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        nn.Conv1d.__init__(
            self,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        self._setup(config, name, device, dtype)


class PIMConv2d(_PIMConv, nn.Conv2d):
    """``nn.Conv2d`` on crossbar tiles (im2col); same arguments as ``nn.Conv2d``.

    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``; ``groups`` must be 1.
    """

    torch_type = nn.Conv2d
    _nd = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        nn.Conv2d.__init__(
            self,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        self._setup(config, name, device, dtype)


class _PIMRecurrent(PhysicalModule):
    """LSTM/GRU whose input and hidden matrices are crossbars (``PIMLinear``).

    Per layer and direction, ``ih`` maps ``x_t`` (all time steps in one batched MVM) and
    ``hh`` maps ``h_{t-1}``; the gate nonlinearities, the cell update and the biases stay
    digital. ``proj_size`` is not supported.
    """

    config_type = PIMConfig
    transfers_weights = True
    mode: str
    gates: int

    def parameter_counts(self) -> dict[str, int]:
        return _crossbar_parameter_counts(self)

    torch_type: type[nn.LSTM] | type[nn.GRU]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        nn.Module.__init__(self)
        for arg, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg}={value!r} must be a positive int")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
        cfg = self._init_physical(config, name)
        assert isinstance(cfg, PIMConfig)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        dirs = 2 if bidirectional else 1
        self.ih = nn.ModuleList()
        self.hh = nn.ModuleList()
        prefix = f"{name}." if name else ""
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * dirs
            for direction in range(dirs):
                suffix = f"l{layer}" + ("_reverse" if direction else "")
                kw = {"config": cfg, "device": device, "dtype": dtype}
                self.ih.append(
                    PIMLinear(
                        in_size, self.gates * hidden_size, bias, name=f"{prefix}ih_{suffix}", **kw
                    )
                )
                self.hh.append(
                    PIMLinear(
                        hidden_size,
                        self.gates * hidden_size,
                        bias,
                        name=f"{prefix}hh_{suffix}",
                        **kw,
                    )
                )

    def _param_names(self) -> Iterator[tuple[int, str]]:
        dirs = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            for direction in range(dirs):
                yield layer * dirs + direction, f"l{layer}" + ("_reverse" if direction else "")

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> _PIMRecurrent:
        cls.check_module(module, cls.torch_type, exact=True)
        assert isinstance(module, nn.LSTM | nn.GRU)
        if getattr(module, "proj_size", 0):
            raise TypeError(f"{cls.__name__}: LSTM proj_size > 0 is not supported")
        cls.check_config(config)
        layer = cls(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bias,
            module.batch_first,
            float(module.dropout),
            module.bidirectional,
            config=config,  # type: ignore[arg-type]
            name=name,
            device=module.weight_ih_l0.device,
            dtype=module.weight_ih_l0.dtype,
        )
        with torch.no_grad():
            for idx, suffix in layer._param_names():
                for part, target in (("ih", layer.ih[idx]), ("hh", layer.hh[idx])):
                    assert isinstance(target, PIMLinear)
                    target.weight.copy_(getattr(module, f"weight_{part}_{suffix}"))
                    if module.bias and target.bias is not None:
                        target.bias.copy_(getattr(module, f"bias_{part}_{suffix}"))
                    target.program()
        return layer

    def to_torch(self) -> nn.Module:
        ref = self.ih[0].weight
        rnn = self.torch_type(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            device=ref.device,
            dtype=ref.dtype,
        )
        with torch.no_grad():
            for idx, suffix in self._param_names():
                for part, source in (("ih", self.ih[idx]), ("hh", self.hh[idx])):
                    getattr(rnn, f"weight_{part}_{suffix}").copy_(source.weight)
                    if self.bias:
                        getattr(rnn, f"bias_{part}_{suffix}").copy_(source.bias)
        return rnn

    def _steps(self, input_shape: tuple[int, ...]) -> int:
        return math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        dirs = 2 if self.bidirectional else 1
        return (*input_shape[:-1], dirs * self.hidden_size)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        steps = self._steps(input_shape)
        total = Cost()
        for ih, hh in zip(self.ih, self.hh, strict=True):
            assert isinstance(ih, PIMLinear) and isinstance(hh, PIMLinear)
            total = total + ih._mvm_cost(steps) + hh._mvm_cost(steps)
        return total

    def resample_noise(self) -> None:
        super().resample_noise()
        for module in (*self.ih, *self.hh):
            assert isinstance(module, PIMLinear)
            module.resample_noise()

    def after_step(self) -> None:
        for module in (*self.ih, *self.hh):
            assert isinstance(module, PIMLinear)
            module.after_step()

    def drift(self, t: float) -> None:
        """Drift every crossbar of this layer to time ``t`` [s] after programming."""
        for module in (*self.ih, *self.hh):
            assert isinstance(module, PIMLinear)
            module.drift(t)

    @abc.abstractmethod
    def _cell(
        self, gx: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, hh: PIMLinear
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One time step: input gates ``gx``, state ``h`` (and ``c``) -> new ``h`` (and ``c``)."""

    def forward(self, x: torch.Tensor, hx: Any = None) -> tuple[torch.Tensor, Any]:
        if x.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: expected a 2-D or 3-D input, got {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                f"{self.input_size} (input shape {tuple(x.shape)})"
            )
        if not torch.isfinite(x).all():
            raise ValueError(f"{type(self).__name__}: input contains NaN or inf")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        steps, batch, _ = x.shape
        dirs = 2 if self.bidirectional else 1
        h0, c0 = self._initial(hx, batch, x, unbatched)
        layer_input = x
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(dirs):
                idx = layer * dirs + direction
                ih, hh = self.ih[idx], self.hh[idx]
                assert isinstance(ih, PIMLinear) and isinstance(hh, PIMLinear)
                gx = ih(layer_input)  # [T, B, gates*H], all steps in one MVM batch
                h = h0[idx]
                c = c0[idx] if c0 is not None else None
                order = range(steps - 1, -1, -1) if direction else range(steps)
                seq: list[torch.Tensor] = [h] * steps
                for t in order:
                    h, c = self._cell(gx[t], h, c, hh)
                    seq[t] = h
                outputs.append(torch.stack(seq))
                h_n.append(h)
                if c is not None:
                    c_n.append(c)
            layer_input = torch.cat(outputs, -1) if dirs == 2 else outputs[0]
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        out = layer_input
        hn = torch.stack(h_n)
        if unbatched:
            out, hn = out.squeeze(1), hn.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if self.mode == "LSTM":
            cn = torch.stack(c_n)
            return out, (hn, cn.squeeze(1) if unbatched else cn)
        return out, hn

    def _initial(
        self, hx: Any, batch: int, x: torch.Tensor, unbatched: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dirs = 2 if self.bidirectional else 1
        shape = (self.num_layers * dirs, batch, self.hidden_size)
        zeros = torch.zeros(shape, device=x.device, dtype=x.dtype)
        if hx is None:
            return zeros, (zeros if self.mode == "LSTM" else None)
        if self.mode == "LSTM":
            h0, c0 = hx
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            return h0, c0
        return (hx.unsqueeze(1) if unbatched else hx), None

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, {self._physical_repr()}"
        )


class PIMLSTM(_PIMRecurrent):
    """``nn.LSTM`` with crossbar input/hidden matrices; same arguments (no ``proj_size``).

    Shape:
        as ``nn.LSTM``: returns ``output, (h_n, c_n)``.
    """

    mode = "LSTM"
    gates = 4
    torch_type = nn.LSTM

    def _cell(
        self, gx: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, hh: PIMLinear
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert c is not None
        i, f, g, o = (gx + hh(h)).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PIMGRU(_PIMRecurrent):
    """``nn.GRU`` with crossbar input/hidden matrices; same arguments.

    Shape:
        as ``nn.GRU``: returns ``output, h_n``.
    """

    mode = "GRU"
    gates = 3
    torch_type = nn.GRU

    def _cell(
        self, gx: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, hh: PIMLinear
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        xr, xz, xn = gx.chunk(3, -1)
        hr, hz, hn = hh(h).chunk(3, -1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None


def drift(model: nn.Module, t: float) -> nn.Module:
    """Move every PIM crossbar of ``model`` to ``t`` seconds after programming.

    Drift compensation (the config's ``drift.compensation``) is applied as configured.

    Returns:
        ``model`` (changed in place).
    """
    t = _check_time(t)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    for module in model.modules():
        if isinstance(module, _Crossbar):
            module.drift(t)
    return model
