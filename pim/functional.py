"""Pure functions of the PIM physics: device models, converters and crossbar circuits.

Everything here is stateless and takes explicit inputs; :class:`physnn.pim.tile.CrossbarTile`
holds the buffers and calls these. The converters and the I-V curve live in
:mod:`physnn.pim.periphery` (re-exported here). Conductances are in siemens [S], times in
seconds [s]; "normalised" conductances are ``G / g_max`` and normalised signals follow aihwkit's
convention (weights and inputs in ``[-1, 1]``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..common.quant import quantize, quantize_codes
from .periphery import adc, dac, sinh_iv

__all__ = [
    "adc",
    "dac",
    "drift_factor",
    "ir_drop_fast",
    "pcm_drift_exponents",
    "pcm_programming_sigma",
    "pcm_read_noise_scale",
    "quantize",
    "quantize_codes",
    "sinh_iv",
    "slice_weights",
    "snap_to_levels",
    "solve_crossbar",
]

PCM_G_MAX_FIT = 25e-6
"""Largest conductance of the PCM statistical model's fits [S] (Nandakumar et al. 2019)."""


def pcm_programming_sigma(g: torch.Tensor, g_max: float) -> torch.Tensor:
    """Standard deviation of PCM programming noise [S] (Nandakumar et al., ICECS 2019).

    ``sigma = (0.26348 + 1.9650 g - 1.1731 g^2) uS * g_max / 25 uS`` for the normalised target
    ``g = G_target / g_max`` clamped to ``[0, 1]``; the fit was made at ``g_max = 25 uS``.

    Args:
        g: normalised target conductance.
        g_max: largest conductance [S].
    """
    gc = g.clamp(0.0, 1.0)
    return (0.26348 + 1.9650 * gc - 1.1731 * gc * gc) * 1e-6 * (g_max / PCM_G_MAX_FIT)


def pcm_drift_exponents(g: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw PCM drift exponents ``nu ~ |N(mu(g), sigma(g))|`` (Nandakumar et al. 2019).

    ``mu = clip(-0.0155 ln g + 0.0244, 0.049, 0.1)`` and
    ``sigma = clip(-0.0125 ln g - 0.0059, 0.008, 0.045)`` with ``g`` floored at 1e-7.

    Args:
        g: normalised target conductance ``G_target / g_max``.
        generator: random generator (None: torch's global RNG).
    """
    log_g = torch.log(g.clamp_min(1e-7))
    mu = (-0.0155 * log_g + 0.0244).clamp(0.049, 0.1)
    sigma = (-0.0125 * log_g - 0.0059).clamp(0.008, 0.045)
    noise = torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device)
    return (mu + sigma * noise).abs()


def drift_factor(nu: torch.Tensor, t: float, t0: float) -> torch.Tensor:
    """Conductance drift factor ``((t + t0) / t0)^-nu`` at time ``t`` [s] after programming."""
    return torch.exp(-nu * math.log((t + t0) / t0))


def pcm_read_noise_scale(g_prog: torch.Tensor, t: float, t0: float, t_read: float) -> torch.Tensor:
    """Relative std of PCM 1/f read noise at inference time ``t`` (Nandakumar et al. 2019).

    ``Q_s sqrt(ln((t + t0 + t_read) / (2 t_read)))`` with
    ``Q_s = min(0.0088 / max(g_prog^0.65, 1e-3), 0.2)``; the noise std of a device is this
    times ``|G(t)|``.

    Args:
        g_prog: normalised programmed conductance.
        t: time since programming [s].
        t0: drift reference time [s].
        t_read: read duration [s].
    """
    q_s = (0.0088 / g_prog.clamp_min(0.0).pow(0.65).clamp_min(1e-3)).clamp_max(0.2)
    return q_s * math.sqrt(math.log((t + t0 + t_read) / (2 * t_read)))


def slice_weights(
    w: torch.Tensor, bits_per_cell: int | None, slices: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split normalised weights ``w`` in ``[-1, 1]`` into per-cell digits.

    With ``n = 2**bits_per_cell - 1`` levels per cell and ``S`` slices, ``|w|`` is rounded to
    ``Q = (n + 1)^S - 1`` steps and written in base ``n + 1``; slice ``s`` holds digit
    ``d_s / n`` in ``[0, 1]`` with the sign of ``w``. Digital shift-and-add recombines
    ``w_hat = sum_s c_s slice_s`` with ``c_s = n (n + 1)^s / Q`` (NeuroSim's bit slicing;
    Peng et al., IEDM 2019). Analog cells (``bits_per_cell=None``) give one slice ``w``.

    Returns:
        ``(slices [S, *w.shape], coefficients [S])``.
    """
    if bits_per_cell is None:
        return w.unsqueeze(0), torch.ones(1, dtype=w.dtype, device=w.device)
    n = 2**bits_per_cell - 1
    base = n + 1
    total = base**slices - 1
    code = torch.round(w.abs().clamp_max(1.0) * total)
    sign = torch.sign(w)
    digits = []
    for s in range(slices):
        digits.append(torch.remainder(torch.div(code, base**s, rounding_mode="floor"), base))
    stacked = torch.stack(digits) / n * sign
    coeff = torch.tensor(
        [n * base**s / total for s in range(slices)], dtype=w.dtype, device=w.device
    )
    return stacked, coeff


def snap_to_levels(
    g: torch.Tensor, levels: tuple[float, ...], sigma: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Snap target conductances to the nearest measured level; return it and its spread.

    Args:
        g: target conductances [S].
        levels: measured levels, ascending [S].
        sigma: measured programming spread of each level [S].

    Returns:
        ``(snapped conductances, spread)``, both shaped like ``g`` [S].
    """
    lv = torch.tensor(levels, dtype=g.dtype, device=g.device)
    sd = torch.tensor(sigma, dtype=g.dtype, device=g.device)
    idx = torch.bucketize(g, (lv[1:] + lv[:-1]) / 2)
    return lv[idx], sd[idx]


def _check_wires(r_row: float, r_col: float) -> None:
    for name, value in (("r_row", r_row), ("r_col", r_col)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}={value!r} ohm must be a finite resistance >= 0")


def solve_crossbar(
    g: np.ndarray | torch.Tensor,
    v: np.ndarray | torch.Tensor,
    *,
    r_row: float,
    r_col: float,
) -> np.ndarray:
    """Exact column currents [A] of a resistive crossbar with wire resistance (nodal analysis).

    Circuit: M row wires driven at their left end by ideal voltage sources ``v[i]`` [V]; N
    column wires held at 0 V (virtual ground) at their bottom end; device conductance
    ``g[i, j]`` [S] between row node (i, j) and column node (i, j); ``r_row`` [ohm] between
    the source and node (i, 0) and between neighbouring row nodes; ``r_col`` [ohm] between
    neighbouring column nodes and between node (M-1, j) and ground. Kirchhoff's current law
    at the 2MN nodes is one sparse linear system, factorised once (scipy SuperLU) and solved
    for every input vector. With zero wire resistance the result is ``v @ g``.

    Args:
        g: conductances ``[M, N]`` [S], non-negative.
        v: row voltages ``[M]`` or a batch ``[B, M]`` [V].
        r_row: row wire resistance per segment [ohm].
        r_col: column wire resistance per segment [ohm].

    Returns:
        Currents into each column's ground ``[N]`` or ``[B, N]`` [A] (float64).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    g_np = np.asarray(g.detach().cpu() if isinstance(g, torch.Tensor) else g, dtype=np.float64)
    v_np = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
    if g_np.ndim != 2:
        raise ValueError(f"g must be a matrix [M, N], got shape {g_np.shape}")
    if not np.isfinite(g_np).all() or (g_np < 0).any():
        raise ValueError("g must hold finite, non-negative conductances [S]")
    m, n = g_np.shape
    if v_np.shape[-1:] != (m,) or v_np.ndim > 2:
        raise ValueError(f"v must have shape [{m}] or [B, {m}] for g of shape {g_np.shape}")
    if not np.isfinite(v_np).all():
        raise ValueError("v must hold finite voltages [V]")
    _check_wires(r_row, r_col)
    volts = v_np.reshape(-1, m).T  # [M, B]
    if r_row == 0 and r_col == 0:
        out = volts.T @ g_np
        return out.reshape(*v_np.shape[:-1], n)

    n_row = m * n if r_row > 0 else 0
    n_unknown = n_row + (m * n if r_col > 0 else 0)
    row_idx = np.arange(m * n).reshape(m, n)
    col_idx = n_row + np.arange(m * n).reshape(m, n)
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    rhs = np.zeros((n_unknown, volts.shape[1]))

    def between(a: np.ndarray, b: np.ndarray, cond: np.ndarray | float) -> None:
        a, b = a.ravel(), b.ravel()
        c = np.broadcast_to(np.ravel(cond), a.shape)
        ii.extend((a, b, a, b))
        jj.extend((a, b, b, a))
        vals.extend((c, c, -c, -c))

    def to_fixed(a: np.ndarray, cond: np.ndarray | float, fixed: np.ndarray | None) -> None:
        a = a.ravel()
        c = np.broadcast_to(np.ravel(cond), a.shape)
        ii.append(a)
        jj.append(a)
        vals.append(c)
        if fixed is not None:
            np.add.at(rhs, a, c[:, None] * fixed)

    source = np.repeat(volts, n, axis=0).reshape(m, n, -1)  # v_i at every (i, j)
    if r_row > 0:
        to_fixed(row_idx[:, 0], 1.0 / r_row, volts)
        between(row_idx[:, :-1], row_idx[:, 1:], 1.0 / r_row)
    if r_col > 0:
        between(col_idx[:-1, :], col_idx[1:, :], 1.0 / r_col)
        to_fixed(col_idx[-1, :], 1.0 / r_col, None)
    if r_row > 0 and r_col > 0:
        between(row_idx, col_idx, g_np)
    elif r_row > 0:
        to_fixed(row_idx, g_np, None)
    else:
        to_fixed(col_idx, g_np, source.reshape(m * n, -1))
    matrix = coo_matrix(
        (np.concatenate(vals), (np.concatenate(ii), np.concatenate(jj))),
        shape=(n_unknown, n_unknown),
    ).tocsc()
    nodes = splu(matrix).solve(rhs)
    if r_col > 0:
        currents = nodes[col_idx[-1, :]] / r_col  # [N, B]
    else:
        row_v = nodes[row_idx.ravel()].reshape(m, n, -1)
        currents = np.einsum("ij,ijb->jb", g_np, row_v)
    return currents.T.reshape(*v_np.shape[:-1], n)


def ir_drop_fast(g: torch.Tensor, *, r_row: float, r_col: float) -> torch.Tensor:
    """Effective conductances of crossbars with wire resistance (fast IR-drop model).

    The crossbar of :func:`solve_crossbar` is linear, so its column currents are
    ``v @ G_eff`` for some effective matrix. To first order in the wire resistance the
    relative drop seen by device (i, j) is
    ``a = r_row sum_j' G[i, j'] (min(j, j') + 1) + r_col sum_i' G[i', j] (M - max(i, i'))``
    (row wire plus column wire, per volt of input, with the currents of the ideal array),
    and ``G_eff = G (1 - a)``. This model uses the rational (Pade) form
    ``G_eff = G / (1 + a)``: it has the same first-order term, is exact for a single device
    in series with a wire, and stays positive for large arrays. Against the exact solver it
    reproduces the IR-drop error of the column currents to about 1 % at 64x64 and to 3-8 %
    at 256x256 for wire resistances of 0.5-2.5 ohm per segment with devices up to 25 uS
    (tested). Each sum is a cumulative sum, so the cost is O(MN), paid once per programming
    or drift step and never per forward pass.

    Args:
        g: conductances ``[..., M, N]`` [S] (leading dimensions are independent crossbars).
        r_row: row wire resistance per segment [ohm].
        r_col: column wire resistance per segment [ohm].

    Returns:
        Effective conductances ``[..., M, N]`` [S].
    """
    _check_wires(r_row, r_col)
    suffix = g.flip(-1).cumsum(-1).flip(-1)  # sum_{j' >= k} G[i, j']
    row_term = suffix.cumsum(-1)  # sum_{k <= j} suffix[k]
    prefix = g.cumsum(-2)  # sum_{i' <= k} G[i', j]
    col_term = prefix.flip(-2).cumsum(-2).flip(-2)  # sum_{k >= i} prefix[k]
    return g / (1.0 + r_row * row_term + r_col * col_term)
