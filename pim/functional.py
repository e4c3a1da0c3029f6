"""Pure functions of the PIM physics: device models, converters and crossbar circuits.

Everything here takes explicit inputs and keeps no state between calls (the IR-drop model
reuses per-thread scratch arrays, whose values never outlive a call);
:class:`physnn.pim.tile.CrossbarTile` holds the buffers and calls these. The converters and
the I-V curve live in :mod:`physnn.pim.periphery` (re-exported here). Conductances are in
siemens [S], times in seconds [s]; "normalised" conductances are ``G / g_max`` and normalised
signals follow aihwkit's convention (weights and inputs in ``[-1, 1]``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..common.config import check_choice, literal_choices
from ..common.quant import quantize, quantize_codes
from .config import ColumnLayout
from .devices import pcm_programming_sigma, snap_to_levels
from .periphery import adc, dac, sinh_iv

__all__ = [
    "adc",
    "dac",
    "drift_factor",
    "ir_drop_crossbar",
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


def pcm_drift_exponents(
    g: torch.Tensor, generator: torch.Generator | None = None, *, g_max: float = 1.0
) -> torch.Tensor:
    """Draw PCM drift exponents ``nu ~ |N(mu(g), sigma(g))|`` (Nandakumar et al. 2019).

    ``mu = clip(-0.0155 ln g + 0.0244, 0.049, 0.1)`` and
    ``sigma = clip(-0.0125 ln g - 0.0059, 0.008, 0.045)`` with ``g`` floored at 1e-7.

    Args:
        g: target conductance, normalised (``G_target / g_max``) or, with ``g_max``, in
            siemens (the normalisation folds into the logarithm's constants).
        generator: random generator (None: torch's global RNG).
        g_max: the conductance ``g`` is normalised by [S]; 1 for a normalised ``g``.
    """
    log_gm = math.log(g_max)
    log_g = g.clamp_min(1e-7 * g_max).log_()  # ln g + ln g_max
    mu = log_g.mul(-0.0155).add_(0.0244 + 0.0155 * log_gm).clamp_(0.049, 0.1)
    # in place: log_g is done
    sigma = log_g.mul_(-0.0125).add_(-0.0059 + 0.0125 * log_gm).clamp_(0.008, 0.045)
    noise = torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device)
    return noise.mul_(sigma).add_(mu).abs_()


def drift_factor(nu: torch.Tensor, t: float, t0: float) -> torch.Tensor:
    """Conductance drift factor ``((t + t0) / t0)^-nu`` at time ``t`` [s] after programming."""
    return torch.exp(-nu * math.log((t + t0) / t0))


def pcm_read_noise_scale(
    g_prog: torch.Tensor, t: float, t0: float, t_read: float, *, g_max: float = 1.0
) -> torch.Tensor:
    """Relative std of PCM 1/f read noise at inference time ``t`` (Nandakumar et al. 2019).

    ``Q_s sqrt(ln((t + t0 + t_read) / (2 t_read)))`` with
    ``Q_s = min(0.0088 / max(g_prog^0.65, 1e-3), 0.2)``; the noise std of a device is this
    times ``|G(t)|``.

    Args:
        g_prog: programmed conductance, normalised or, with ``g_max``, in siemens (the
            normalisation folds into the logarithm's constant).
        t: time since programming [s].
        t0: drift reference time [s].
        t_read: read duration [s].
        g_max: the conductance ``g_prog`` is normalised by [S]; 1 for a normalised one.
    """
    # Q_s = min(0.0088 g^-0.65, 0.2) (the floor 1e-3 of g^0.65 only matters where the cap 0.2
    # already applies) = 0.0088 max(g, g_c)^-0.65 with 0.0088 g_c^-0.65 = 0.2, as exp(log)
    # in place on one fresh tensor; flooring g first also keeps log away from 0 (its
    # special-value path is several times slower than pow)
    g_c = (0.0088 / 0.2) ** (1 / 0.65)
    log_c = math.log(0.0088) + 0.65 * math.log(g_max)
    q_s = g_prog.clamp_min(g_c * g_max).log_().mul_(-0.65).add_(log_c).exp_()
    return q_s.mul_(math.sqrt(math.log((t + t0 + t_read) / (2 * t_read))))


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


_SCRATCH_BYTES = 64 * 2**20
"""Most memory [bytes] a thread keeps in IR-drop scratch arrays between calls."""


class _ScratchPool(threading.local):
    """One thread's float64 scratch arrays of the IR-drop model, all of its last shape."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = ()
        self.arrays: list[np.ndarray] = []
        self.busy = False


_POOL = _ScratchPool()

Empty = Callable[[], np.ndarray]
"""Hands out an uninitialised float64 array of the scratch shape (see :func:`_scratch`)."""


@contextlib.contextmanager
def _scratch(shape: tuple[int, ...]) -> Iterator[Empty]:
    """Scratch arrays of ``shape`` for one IR-drop evaluation.

    A fresh multi-megabyte temporary costs page faults, because the allocator returns freed
    large arrays to the operating system: a third of the IR-drop time of a 512x1024 array was
    spent faulting its eight temporaries in again at every build. Each thread keeps the arrays
    of its last shape (up to :data:`_SCRATCH_BYTES`) and hands them out again. Every array is
    fully overwritten before it is read, so no value is carried from one call to the next;
    threads never share arrays (the pool is thread-local), and a nested use in the same
    thread gets fresh arrays. Results must be copied out before the block ends.
    """
    pool = _POOL
    if pool.busy:
        yield lambda: np.empty(shape)
        return
    if pool.shape != shape:
        pool.shape, pool.arrays = shape, []
    keep = _SCRATCH_BYTES // (8 * max(1, math.prod(shape)))
    taken = 0

    def empty() -> np.ndarray:
        nonlocal taken
        if taken < len(pool.arrays):
            array = pool.arrays[taken]
        else:
            array = np.empty(shape)
            if len(pool.arrays) < keep:
                pool.arrays.append(array)
        taken += 1
        return array

    pool.busy = True
    try:
        yield empty
    finally:
        pool.busy = False


def _ladder_factor(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LDL^T factors of tridiagonal systems ``d_k x_k - x_{k-1} - x_{k+1} = b_k``.

    ``d`` and ``e`` are ``[..., K]`` diagonals; systems along the last axis are independent
    (the off-diagonal ``e`` is -1 inside a system and 0 between systems). The matrices are
    symmetric positive definite, so LAPACK's ``dpttrf`` factorises them without pivoting, in
    place (``d`` and ``e`` are the caller's temporaries and are overwritten).
    """
    from scipy.linalg import lapack

    if d.size == 1:  # a single node: LAPACK's wrapper needs an off-diagonal
        return d.ravel().copy(), e.ravel()[:0]
    d_f, e_f, info = lapack.dpttrf(d.ravel(), e.ravel()[:-1], overwrite_d=1, overwrite_e=1)
    if info != 0:
        raise RuntimeError(f"wire-ladder factorisation failed (LAPACK dpttrf info={info})")
    return d_f, e_f


def _ladder_solve(factors: tuple[np.ndarray, np.ndarray], b: np.ndarray) -> np.ndarray:
    """Solve the factorised ladders for right-hand sides ``b`` (contiguous; overwritten)."""
    from scipy.linalg import lapack

    if factors[0].size == 1:
        return b / factors[0].reshape(b.shape)
    x, info = lapack.dpttrs(factors[0], factors[1], b.ravel(), overwrite_b=1)
    if info != 0:
        raise RuntimeError(f"wire-ladder solve failed (LAPACK dpttrs info={info})")
    return x.reshape(b.shape)


def _row_ladders(g: np.ndarray, r: float, empty: Empty) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal and off-diagonal of the row-wire ladders of ``g [..., K]``, each row ordered
    from its open far end to its driver (``g`` is the array with its rows reversed; both
    results are scratch arrays from ``empty``).

    Each ladder is a wire of segments ``r`` [ohm] whose nodes connect to ground through the
    devices ``g`` [S]; the driver end is held, the far end open. The nodal equations times
    ``r`` read ``(2 + r g_k) x_k - x_{k-1} - x_{k+1} = r i_k`` (one neighbour fewer at the
    open end, node 0 here). Factorising in this order (:func:`_ladder_factor`) gives the
    pivots ``q`` of elimination from the open end, from which :func:`_row_drive` reads the
    response to the driver.
    """
    d = np.multiply(g, r, out=empty())
    d += 2.0
    d[..., 0] -= 1.0
    e = empty().reshape(-1)  # its last entry is dropped by the factorisation
    e.fill(-1.0)
    e[d.shape[-1] - 1 :: d.shape[-1]] = 0.0
    return d, e


def _row_drive(factors: tuple[np.ndarray, np.ndarray], empty: Empty) -> np.ndarray:
    """Row-node voltages ``h [..., K]`` per volt behind the first segment (driver first), in
    a scratch array from ``empty``.

    Eliminating a ladder from its open end leaves ``q_k x_k = x_{k-1}`` at every node, with
    ``x_{-1}`` the source, so ``h_k = prod_{i <= k} 1 / q_i``: one cumulative product of the
    reciprocal pivots of :func:`_row_ladders` (no solve, no under- or overflow beyond that
    of the voltages themselves).
    """
    inv = empty()
    np.reciprocal(factors[0].reshape(inv.shape)[..., ::-1], out=inv)  # driver first
    return torch.from_numpy(inv).cumprod_(-1).numpy()


def _rows(a: np.ndarray) -> list[np.ndarray]:
    """Views of ``a [..., M, N]`` at each index of axis -2 (made once, so the row-by-row
    sweeps below index no arrays in their loops)."""
    return list(np.moveaxis(a, -2, 0))


def _column_pivots(g: np.ndarray, r: float, empty: Empty) -> np.ndarray:
    """Reciprocal pivots of the column-wire ladders along axis -2 of ``g [..., M, N]`` (in a
    scratch array from ``empty``).

    Column ladders (open at row 0, virtual ground behind row M-1) have the diagonal
    ``2 + r g`` (``1 + r g`` at the open end) and off-diagonals -1; eliminating from the
    open end gives pivots ``p_0 = d_0``, ``p_k = d_k - 1 / p_{k-1}``. The recurrence runs
    over the M rows with every column (and leading array) at once, so the systems need no
    transposed copy.
    """
    inv = np.multiply(g, r, out=empty())
    inv += 2.0
    rows = _rows(inv)
    rows[0] -= 1.0
    np.reciprocal(rows[0], rows[0])
    sub, rec = np.subtract, np.reciprocal  # positional outputs: these loops are call-bound
    for prev, row in itertools.pairwise(rows):
        sub(row, prev, row)
        rec(row, row)
    return inv


def _column_solve(inv: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve the column ladders of :func:`_column_pivots` for right-hand sides ``b``
    ``[..., M, N]`` (forward sweep from the open end, back substitution from the ground;
    ``b`` is overwritten with the solution)."""
    rows, pivots = _rows(b), _rows(inv)
    tmp = np.empty_like(rows[0])
    mul, add = np.multiply, np.add
    for k in range(1, len(rows)):
        mul(rows[k - 1], pivots[k - 1], tmp)
        add(rows[k], tmp, rows[k])
    rows[-1] *= pivots[-1]
    for k in range(len(rows) - 2, -1, -1):
        add(rows[k], rows[k + 1], rows[k])
        mul(rows[k], pivots[k], rows[k])
    return b


def _column_grounded_drive(inv: np.ndarray, empty: Empty) -> np.ndarray:
    """Solution of the column ladders for 1 V behind the grounded end (row M-1): the
    product of the reciprocal pivots from row k to the ground, ``prod_{i >= k} 1 / p_i`` (in
    a scratch array from ``empty``)."""
    w = empty()
    np.copyto(w, inv)
    rows = _rows(w)
    mul = np.multiply
    for k in range(len(rows) - 2, -1, -1):
        mul(rows[k], rows[k + 1], rows[k])
    return w


def ir_drop_fast(g: torch.Tensor, *, r_row: float, r_col: float) -> torch.Tensor:
    """Effective conductances of crossbars with wire resistance (fast IR-drop model).

    The crossbar of :func:`solve_crossbar` (row drivers at column 0, virtual grounds below
    row M-1) is linear, so its column currents are ``v @ G_eff`` for an effective matrix
    ``G_eff [M, N]``, which this function approximates; it is input-independent, so it is
    computed once per programming or drift step and never per forward pass.

    The network splits into M row ladders (row wire plus the devices, the column wires held
    at 0 V) and N column ladders (column wire plus the devices, the row wires held at their
    source voltage). Each ladder is solved exactly (a tridiagonal system): ``h[i, j]`` is the
    voltage of row node (i, j) per volt of input, and by reciprocity ``w[i, j]`` is the
    fraction of the current injected at column node (i, j) that reaches the column's
    ground. ``G h w`` is exact when either wire has no resistance. The two subsystems couple
    through the column voltages: the current a row drives into column j' raises that column's
    node voltages, which reduces the current other rows draw at j' and so raises their voltage
    at every column j, and so on in round trips between the wires. With every row at 1 V the
    first round trip is solved exactly: the column voltages ``u1`` of the currents ``G h``
    (column ladders) and the row-voltage rise ``dv1`` they cause (row ladders) add ``d1_j =
    sum_i (G w dv1)[i, j]`` to column j. Every later round trip applies the same positive
    operator to a similar profile, so they continue geometrically with the ratio ``rho_j = d1_j
    / I0_j`` of the first one to the currents ``I0`` of ``G h w`` (measured: within 7 % of the
    second round trip's ratio at 0.07-1 ohm), and add ``d1 / (1 - rho)`` in all. That current is
    shared among the input rows k as the second-order coupling shares it, with the row currents
    spread over the columns alike (the rank-1 part): ``G_c[k, j] ~ (sum_j' (G h)[k, j']) sum_i
    Z_col,j(k, i) (G w dv1)[i, j] / sum_j' u1[i, j']``, scaled to the column's total. The result
    is ``G_eff = G h w + G_c`` from one factorisation of each wire's ladders, the two drive
    responses as cumulative products of their pivots, and three ladder solves (one along the
    rows, two along the columns). Against the exact nodal solution
    (``benchmarks/pim_ir_drop.py``, ``tests/pim/test_ir_drop.py``; devices uniform in 0-25 uS
    with half of them off) the error of the column currents at 512x512 is at most 0.4 % of the
    IR-drop effect for 0.07-1 ohm per segment (worst column 0.7 %, at 1 ohm, signed and
    rectified inputs); the second-order coupling alone was 2.4 % in the worst column at 1 ohm, a
    first-order model ``G / (1 + a)`` 10 %. Computed in float64 on the CPU: the row ladders with
    LAPACK (``dpttrf``/``dpttrs`` in place, the rows reversed so that the factorisation runs
    from the open end), the column ladders by eliminating row by row with all columns at once
    (no transposed copies): 54 ms of CPU time for a 512x1024 array on a loaded 2-core machine,
    0.63x the previous implementation (two row solves, fresh temporaries) measured in the same
    process.

    Args:
        g: conductances ``[..., M, N]`` [S] (leading dimensions are independent crossbars).
        r_row: row wire resistance per segment [ohm].
        r_col: column wire resistance per segment [ohm].

    Returns:
        Effective conductances ``[..., M, N]`` [S], with the dtype and device of ``g``.
    """
    _check_wires(r_row, r_col)
    if g.numel() == 0 or (r_row == 0 and r_col == 0):
        return g.clone()
    _check_conductances(g)
    arr = np.ascontiguousarray(g.detach().to("cpu", torch.float64).numpy())
    with _scratch(arr.shape) as empty:
        eff = torch.from_numpy(_ir_drop(arr, r_row, r_col, empty))
        return eff.to(device=g.device, dtype=g.dtype, copy=True)


def _check_conductances(g: torch.Tensor) -> None:
    if not (bool(g.min() >= 0) and bool(torch.isfinite(g.max()))):  # NaN fails the first
        raise ValueError("g must hold finite, non-negative conductances [S]")


def _ir_drop(arr: np.ndarray, r_row: float, r_col: float, empty: Empty) -> np.ndarray:
    """:func:`ir_drop_fast` on a float64 array of valid conductances ``[..., M, N]`` [S]
    with at least one wire resistance > 0; the temporaries and the result are scratch
    arrays of ``arr``'s shape from ``empty`` (:func:`_scratch`)."""
    if r_row > 0:  # row ladders factorised from their open far end (the rows reversed)
        row_ladder = _ladder_factor(*_row_ladders(arr[..., ::-1], r_row, empty))
        gh = _row_drive(row_ladder, empty)  # 1 V behind the first segment
        gh *= arr
    else:
        gh = empty()
        np.copyto(gh, arr)
    if r_col == 0:
        return gh
    col_inv = _column_pivots(arr, r_col, empty)
    w = _column_grounded_drive(col_inv, empty)  # reciprocity: 1 V behind the grounded end
    if r_row == 0:
        gh *= w
        return gh
    # every row at 1 V, one exact round trip between the wires: the column voltages u1 of the
    # currents G h, and the row-voltage rise dv1 they cause (arrays reused once dead)
    u1 = _column_solve(col_inv, np.multiply(gh, r_col, out=empty()))
    rows_gh = gh.sum(-1, keepdims=True)
    eff = gh
    eff *= w  # G h w
    # the rank-1 profile over the input rows k needs dv1 per volt of column rise: the row
    # ladders are linear and each is one row, so dividing their right-hand side by the
    # row's rise divides dv1
    rise = u1.sum(-1, keepdims=True)
    rise = np.where(rise > 0, rise, 1.0)  # a row without rise has dv1 = 0
    rise_rhs = np.multiply(arr[..., ::-1], u1[..., ::-1], out=empty())  # rows reversed
    rise_rhs *= r_row / rise
    gw_dv1 = w
    gw_dv1 *= arr
    gw_dv1 *= _ladder_solve(row_ladder, rise_rhs)[..., ::-1]  # G w dv1 / rise
    # sum_i (G w dv1)[i, j], by torch's matmul: numpy's BLAS would start its own threads
    d1 = torch.from_numpy(np.swapaxes(rise, -1, -2)).matmul(torch.from_numpy(gw_dv1)).numpy()
    i0 = eff.sum(-2, keepdims=True)
    rho = np.clip(np.divide(d1, i0, out=np.zeros_like(d1), where=i0 > 0), 0.0, 0.95)
    coupling = _column_solve(col_inv, gw_dv1)
    coupling *= rows_gh
    total = coupling.sum(-2, keepdims=True)
    scale = np.zeros_like(total)
    np.divide(d1 / (1.0 - rho), total, out=scale, where=total > 0)
    # eff += coupling * scale in one pass
    torch.from_numpy(eff).addcmul_(torch.from_numpy(coupling), torch.from_numpy(scale))
    return eff


def _device_columns(
    planes: torch.Tensor, layout: ColumnLayout, reference: bool, array: np.ndarray
) -> np.ndarray:
    """``[..., 2, D, R, C]`` device planes -> ``[..., R, columns]`` physical arrays, float64 on
    the CPU, laid out and converted in one copy into ``array`` (shaped as
    :func:`_columns_shape` says; returned)."""
    if reference:
        weights, ref = planes[..., 0, :, :, :], planes[..., 1, :, :, 0]  # ref: [..., D, R]
    else:
        weights, ref = planes.flatten(-4, -3), None
    # adjacent: column c * D' + d; blocked: column d * C + c
    arranged = weights.movedim(-3, -1 if layout == "adjacent" else -2)
    width = arranged.shape[-2] * arranged.shape[-1]
    out = torch.from_numpy(array)
    out[..., :width].unflatten(-1, arranged.shape[-2:]).copy_(arranged)
    if ref is not None:
        out[..., width:].copy_(ref.transpose(-1, -2))
    return array


def _columns_shape(shape: torch.Size, reference: bool) -> tuple[int, ...]:
    """Shape of the physical arrays of ``[..., 2, D, R, C]`` device planes: ``[..., R, 2 D C]``,
    or ``[..., R, D C + D]`` with reference columns."""
    *lead, _, d, rows, cols = shape
    return (*lead, rows, d * cols + d if reference else 2 * d * cols)


def _device_planes(
    array: torch.Tensor, shape: torch.Size, layout: ColumnLayout, reference: bool
) -> torch.Tensor:
    """Inverse of :func:`_device_columns` (a reference column is shared by every column)."""
    *lead, _, d, rows, cols = shape
    planes = d if reference else 2 * d
    weights = array[..., : planes * cols]
    if layout == "adjacent":
        weights = weights.unflatten(-1, (cols, planes)).movedim(-1, -3)
    else:
        weights = weights.unflatten(-1, (planes, cols)).movedim(-2, -3)
    if not reference:
        return weights.unflatten(-3, (2, d))
    ref = array[..., planes * cols :].transpose(-1, -2).unsqueeze(-1).expand(*lead, d, rows, cols)
    return torch.stack((weights, ref), -4)


def ir_drop_crossbar(
    g: torch.Tensor,
    *,
    tile_rows: int,
    tile_cols: int,
    r_row: float,
    r_col: float,
    layout: ColumnLayout = "adjacent",
    reference: bool = False,
) -> torch.Tensor:
    """Effective conductances of a layer's devices laid out on tiles that share row wires.

    The devices of one weight (both polarities, ``D`` devices per polarity) sit in the same
    row of the same array, so they share its row wire with every other weight of the tile:
    the IR drop of the differential pair is solved in one array, not in two. With
    ``layout="adjacent"`` the ``2 D`` devices of weight column ``c`` occupy columns
    ``2 D c ... 2 D c + 2 D - 1`` (``G+ ... G- ...`` next to each other); with ``"blocked"``
    device ``d`` of every weight column forms one block of columns (all ``G+`` columns, then
    all ``G-`` columns). With ``reference=True`` (``scheme="reference"``) plane 1 holds the
    reference devices, which are the same device for every column of a tile (``g[..., 1, d,
    i, c]`` must not depend on ``c``); they form ``D`` reference columns after the weight
    columns, at the far end of the row wires. Weight slices and the leading dimensions are
    separate arrays. Each tile is solved with :func:`ir_drop_fast`; the zero padding of a
    partial tile carries no current.

    Args:
        g: conductances ``[..., 2, D, n_in, n_out]`` [S] (polarity, device per polarity,
            rows, weight columns), e.g. a crossbar tile's ``conductance`` buffer.
        tile_rows: rows per tile [1].
        tile_cols: weight columns per tile [1] (the array has ``2 D`` times as many device
            columns, ``D`` times as many plus ``D`` reference columns with a reference).
        r_row: row wire resistance per segment [ohm].
        r_col: column wire resistance per segment [ohm].
        layout: ``"adjacent"`` or ``"blocked"`` device columns.
        reference: plane 1 holds one shared reference device per row and tile.

    Returns:
        Effective conductances shaped like ``g`` [S].
    """
    check_choice("ir_drop_crossbar", "layout", layout, literal_choices(ColumnLayout))
    if g.dim() < 4 or g.shape[-4] != 2:
        raise ValueError(
            f"g must be shaped [..., 2, D, n_in, n_out] (polarity first), got {tuple(g.shape)}"
        )
    for name, value in (("tile_rows", tile_rows), ("tile_cols", tile_cols)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive number of rows or columns")
    n_in, n_out = g.shape[-2:]
    t_rows, t_cols = math.ceil(n_in / tile_rows), math.ceil(n_out / tile_cols)
    pad = (0, t_cols * tile_cols - n_out, 0, t_rows * tile_rows - n_in)
    _check_wires(r_row, r_col)
    if g.numel() == 0 or (r_row == 0 and r_col == 0):
        return g.clone()
    _check_conductances(g)
    padded = F.pad(g, pad) if any(pad) else g

    def tiled(t: torch.Tensor) -> torch.Tensor:  # [..., 2, D, T R, Tc C] -> [B, T, Tc, 2, D, R, C]
        t = t.reshape(-1, *t.shape[-4:]).unflatten(4, (t_cols, tile_cols))
        return t.unflatten(3, (t_rows, tile_rows)).permute(0, 3, 5, 1, 2, 4, 6)

    tiles = tiled(padded.detach().cpu())
    out = torch.empty(padded.shape, dtype=g.dtype)
    with _scratch(_columns_shape(tiles.shape, reference)) as empty:
        arr = _device_columns(tiles, layout, reference, empty())
        eff = torch.from_numpy(_ir_drop(arr, r_row, r_col, empty))
        # back to the planes and the dtype in one copy, before the scratch arrays are reused
        tiled(out).copy_(_device_planes(eff, tiles.shape, layout, reference))
    return out[..., :n_in, :n_out].to(g.device)
