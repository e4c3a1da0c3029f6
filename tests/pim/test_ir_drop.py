"""Fast IR-drop model of real tile layouts against exact nodal solutions written here.

The reference solves Kirchhoff's current law for every row node and column node of the whole
array (one sparse system assembled with scipy.sparse): row wires driven at column 0, column
wires at virtual ground below the last row, a device between row node (i, j) and column node
(i, j). It is solved by line relaxation (each sweep solves every row wire, then every column
wire, exactly with a banded LU) until the residual of the assembled system is below 1e-12;
the test asserts that residual. Layouts (where each device of a weight sits) are written out
column by column here, not with the library's reshapes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg import solve_banded

from physnn.pim import functional as PF
from physnn.pim.config import CircuitConfig

G_MAX = 25e-6


def nodal_currents(g: np.ndarray, v: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    """Exact column currents [B, N] [A] of array ``g [M, N]`` [S] driven by ``v [B, M]`` [V]."""
    m, n = g.shape
    gr, gc = 1.0 / r_row, 1.0 / r_col
    # unknowns: row nodes (i, j) at i * n + j, then column nodes (i, j) at m n + j * m + i
    row_diag = np.full((m, n), 2 * gr)
    row_diag[:, -1] = gr  # open far end
    row_diag += g
    col_diag = np.full((n, m), 2 * gc)
    col_diag[:, 0] = gc  # open top end; the bottom segment goes to ground
    col_diag += g.T
    row_off = np.full((m, n), -gr)
    row_off[:, -1] = 0.0
    col_off = np.full((n, m), -gc)
    col_off[:, -1] = 0.0
    a_rr = sp.diags([row_diag.ravel(), row_off.ravel()[:-1], row_off.ravel()[:-1]], [0, 1, -1])
    a_cc = sp.diags([col_diag.ravel(), col_off.ravel()[:-1], col_off.ravel()[:-1]], [0, 1, -1])
    rows_at = np.arange(m * n)
    cols_at = (np.arange(n)[None, :] * m + np.arange(m)[:, None]).ravel()
    coupling = sp.csr_matrix((g.ravel(), (rows_at, cols_at)), shape=(m * n, m * n))
    full = sp.bmat([[a_rr, -coupling], [-coupling.T, a_cc]], format="csr")
    drive = np.zeros((m, n, v.shape[0]))
    drive[:, 0, :] = v.T * gr
    source = drive.reshape(m * n, -1)
    rhs = np.vstack([source, np.zeros_like(source)])

    def banded(diag: np.ndarray, off: np.ndarray) -> np.ndarray:
        ab = np.zeros((3, diag.size))
        ab[0, 1:] = off.ravel()[:-1]
        ab[1] = diag.ravel()
        ab[2, :-1] = off.ravel()[:-1]
        return ab

    ab_rows, ab_cols = banded(row_diag, row_off), banded(col_diag, col_off)
    col_nodes = np.zeros_like(source)
    for _ in range(500):
        row_nodes = solve_banded((1, 1), ab_rows, source + coupling @ col_nodes)
        col_nodes = solve_banded((1, 1), ab_cols, coupling.T @ row_nodes)
        x = np.vstack([row_nodes, col_nodes])
        residual = np.linalg.norm(full @ x - rhs) / np.linalg.norm(rhs)
        if residual < 1e-12:
            break
    assert residual < 1e-12, f"nodal reference did not converge (residual {residual:.1e})"
    return (col_nodes.reshape(n, m, -1)[:, -1, :] / r_col).T


def layout_columns(planes: np.ndarray, layout: str) -> np.ndarray:
    """Physical array of devices ``planes [2, D, M, C]`` in ``layout`` (column by column)."""
    _, d, m, c = planes.shape
    out = np.zeros((m, 2 * d * c))
    for col in range(c):
        for p in range(2):
            for k in range(d):
                slot = col * 2 * d + p * d + k if layout == "adjacent" else (p * d + k) * c + col
                out[:, slot] = planes[p, k, :, col]
    return out


def weight_outputs(currents: np.ndarray, d: int, c: int, layout: str) -> np.ndarray:
    """``sum_k I(G+_k) - I(G-_k)`` per weight column from the array's column currents."""
    out = np.zeros((currents.shape[0], c))
    for col in range(c):
        for p, sign in ((0, 1.0), (1, -1.0)):
            for k in range(d):
                slot = col * 2 * d + p * d + k if layout == "adjacent" else (p * d + k) * c + col
                out[:, col] += sign * currents[:, slot]
    return out


def random_array(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """Devices uniform in 0-25 uS, half of them off."""
    return rng.uniform(0, G_MAX, (m, n)) * (rng.random((m, n)) < 0.5)


def differential_planes(rng: np.random.Generator, m: int, c: int, d: int = 1) -> np.ndarray:
    """``[2, D, M, C]`` pairs for Gaussian weights scaled to the layer's largest weight."""
    w = rng.standard_normal((m, c))
    w /= np.abs(w).max()
    pair = np.stack([np.maximum(w, 0), np.maximum(-w, 0)]) * G_MAX
    return np.repeat(pair[:, None], d, axis=1)


def read_voltages(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed and non-negative (post-ReLU) read voltages, 8 vectors each, up to 0.2 V [V]."""
    signed = rng.uniform(-0.2, 0.2, (8, m))
    return signed, np.abs(signed)


def relative_errors(fast: np.ndarray, exact: np.ndarray, ideal: np.ndarray) -> tuple[float, float]:
    """Error of ``fast`` relative to the IR-drop effect ``exact - ideal``: overall, worst column."""
    err, effect = fast - exact, exact - ideal
    overall = np.linalg.norm(err) / np.linalg.norm(effect)
    worst = (np.linalg.norm(err, axis=0) / np.linalg.norm(effect, axis=0)).max()
    return float(overall), float(worst)


def fast_matrix(g: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    return PF.ir_drop_fast(torch.from_numpy(g), r_row=r_row, r_col=r_col).numpy()


# --------------------------------------------------------------------------- the reference


def test_reference_solver_single_device_and_library_solver() -> None:
    g, r_row, r_col = 20e-6, 3e3, 2e3
    got = nodal_currents(np.array([[g]]), np.array([[0.2]]), r_row, r_col)
    assert got[0, 0] == pytest.approx(0.2 / (r_row + 1 / g + r_col), rel=1e-12)
    rng = np.random.default_rng(0)
    g_arr, v = random_array(rng, 12, 9), rng.uniform(-0.2, 0.2, (3, 12))
    np.testing.assert_allclose(
        nodal_currents(g_arr, v, 40.0, 25.0),
        PF.solve_crossbar(g_arr, v, r_row=40.0, r_col=25.0),
        rtol=1e-9,
    )


# --------------------------------------------------------------------------- one array


def row_wire_currents(g: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Exact currents with resistive row wires only: each row is a dense nodal system."""
    m, n = g.shape
    out = np.zeros((v.shape[0], n))
    for i in range(m):
        a = np.diag(2.0 / r + g[i]) - np.eye(n, k=1) / r - np.eye(n, k=-1) / r
        a[-1, -1] -= 1.0 / r  # open far end
        b = np.zeros((n, v.shape[0]))
        b[0] = v[:, i] / r  # driver behind the first segment
        out += (g[i][:, None] * np.linalg.solve(a, b)).T
    return out


def column_wire_currents(g: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Exact currents with resistive column wires only (rows are ideal sources)."""
    m, n = g.shape
    out = np.zeros((v.shape[0], n))
    for j in range(n):
        a = np.diag(2.0 / r + g[:, j]) - np.eye(m, k=1) / r - np.eye(m, k=-1) / r
        a[0, 0] -= 1.0 / r  # open top end; below the last row a segment to ground
        nodes = np.linalg.solve(a, g[:, j][:, None] * v.T)
        out[:, j] = nodes[-1] / r
    return out


def test_fast_model_is_exact_when_one_wire_has_no_resistance() -> None:
    rng = np.random.default_rng(1)
    g, v = random_array(rng, 40, 64), rng.uniform(-0.2, 0.2, (4, 40))
    np.testing.assert_allclose(
        v @ fast_matrix(g, 2.0, 0.0), row_wire_currents(g, v, 2.0), rtol=1e-9
    )
    np.testing.assert_allclose(
        v @ fast_matrix(g, 0.0, 2.0), column_wire_currents(g, v, 2.0), rtol=1e-9
    )
    np.testing.assert_allclose(fast_matrix(g, 0.0, 0.0), g)


def test_fast_model_within_2_percent_of_the_exact_effect_256x256() -> None:
    r_wire = 1.0
    rng = np.random.default_rng(2)
    g = random_array(rng, 256, 256)
    g_eff = fast_matrix(g, r_wire, r_wire)
    for v in read_voltages(rng, 256):
        exact = nodal_currents(g, v, r_wire, r_wire)
        ideal = v @ g
        assert np.linalg.norm(exact - ideal) / np.linalg.norm(ideal) > 0.05  # a real effect
        overall, worst = relative_errors(v @ g_eff, exact, ideal)
        print(f"256x256, {r_wire} ohm: error {overall:.4f}, worst column {worst:.4f}")
        assert overall < 0.02 and worst < 0.02, (overall, worst)


@pytest.mark.parametrize(
    "r_wire",
    [pytest.param(0.07, marks=pytest.mark.slow), pytest.param(0.35, marks=pytest.mark.slow), 1.0],
)
def test_fast_model_within_2_percent_of_the_exact_effect_512x512(r_wire: float) -> None:
    rng = np.random.default_rng(3)
    g = random_array(rng, 512, 512)
    g_eff = fast_matrix(g, r_wire, r_wire)
    for v in read_voltages(rng, 512):
        exact = nodal_currents(g, v, r_wire, r_wire)
        overall, worst = relative_errors(v @ g_eff, exact, v @ g)
        print(f"512x512, {r_wire} ohm: error {overall:.4f}, worst column {worst:.4f}")
        assert overall < 0.02 and worst < 0.02, (overall, worst)


# --------------------------------------------------------------------------- layouts


def layer_outputs(planes: np.ndarray, v: np.ndarray, r: float, layout: str) -> np.ndarray:
    """Weight outputs of the fast model through ``ir_drop_crossbar`` (one tile)."""
    _, _, m, c = planes.shape
    eff = PF.ir_drop_crossbar(
        torch.from_numpy(planes), tile_rows=m, tile_cols=c, r_row=r, r_col=r, layout=layout
    ).numpy()
    return v @ (eff[0] - eff[1]).sum(0)


@pytest.mark.parametrize(("layout", "size"), [("adjacent", 256), ("blocked", 128)])
def test_differential_pair_shares_the_row_wires(layout: str, size: int) -> None:
    rng = np.random.default_rng(4)
    planes = differential_planes(rng, size, size)
    array = layout_columns(planes, layout)
    for v in read_voltages(rng, size):
        exact = weight_outputs(nodal_currents(array, v, 0.35, 0.35), 1, size, layout)
        ideal = v @ (planes[0, 0] - planes[1, 0])
        overall, worst = relative_errors(layer_outputs(planes, v, 0.35, layout), exact, ideal)
        assert overall < 0.02 and worst < 0.02, (overall, worst)


def test_solving_each_polarity_as_its_own_array_misses_the_shared_drop() -> None:
    """Physics of the layout: two separate arrays are not one array with shared rows."""
    rng = np.random.default_rng(5)
    planes = differential_planes(rng, 128, 128)
    v = np.abs(rng.uniform(-0.2, 0.2, (8, 128)))
    shared = weight_outputs(
        nodal_currents(layout_columns(planes, "adjacent"), v, 0.35, 0.35), 1, 128, "adjacent"
    )
    separate = nodal_currents(planes[0, 0], v, 0.35, 0.35) - nodal_currents(
        planes[1, 0], v, 0.35, 0.35
    )
    ideal = v @ (planes[0, 0] - planes[1, 0])
    assert np.linalg.norm(separate - shared) > 0.2 * np.linalg.norm(shared - ideal)


def test_devices_per_polarity_share_the_rows_too() -> None:
    """HERMES-like: 2 devices per polarity, 4 adjacent columns per weight."""
    rng = np.random.default_rng(6)
    planes = differential_planes(rng, 64, 64, d=2)
    array = layout_columns(planes, "adjacent")
    v = rng.uniform(-0.2, 0.2, (8, 64))
    exact = weight_outputs(nodal_currents(array, v, 1.0, 1.0), 2, 64, "adjacent")
    ideal = v @ (planes[0] - planes[1]).sum(0)
    overall, worst = relative_errors(layer_outputs(planes, v, 1.0, "adjacent"), exact, ideal)
    assert overall < 0.02 and worst < 0.02, (overall, worst)


def test_reference_column_is_one_shared_column_at_the_far_end() -> None:
    rng = np.random.default_rng(7)
    m, c = 96, 80
    weights = rng.uniform(0, G_MAX, (m, c))
    ref = rng.normal(G_MAX / 2, 1e-6, m)  # one reference device per row (its own draw)
    planes = np.stack([weights, np.repeat(ref[:, None], c, axis=1)])[:, None]
    array = np.concatenate([weights, ref[:, None]], axis=1)
    v = rng.uniform(-0.2, 0.2, (8, m))
    currents = nodal_currents(array, v, 1.0, 1.0)
    exact = currents[:, :c] - currents[:, c:]
    eff = PF.ir_drop_crossbar(
        torch.from_numpy(planes), tile_rows=m, tile_cols=c, r_row=1.0, r_col=1.0, reference=True
    ).numpy()
    np.testing.assert_array_equal(eff[1, 0], np.repeat(eff[1, 0, :, :1], c, axis=1))
    overall, worst = relative_errors(
        v @ (eff[0, 0] - eff[1, 0]), exact, v @ (weights - ref[:, None])
    )
    assert overall < 0.02 and worst < 0.02, (overall, worst)


def test_tiles_are_separate_arrays_with_zero_padded_cells() -> None:
    """90x50 weights on tiles of 45 rows x 30 weight columns: the second column tile holds
    20 weights and 10 unused (zero) cells, whose wire segments stay in the row path."""
    rng = np.random.default_rng(8)
    planes = differential_planes(rng, 90, 50)
    v = rng.uniform(-0.2, 0.2, (4, 90))
    eff = PF.ir_drop_crossbar(
        torch.from_numpy(planes), tile_rows=45, tile_cols=30, r_row=2.0, r_col=2.0
    ).numpy()
    got = v @ (eff[0, 0] - eff[1, 0])
    exact = np.zeros_like(got)
    for rows in (slice(0, 45), slice(45, 90)):
        for start in (0, 30):
            tile = np.zeros((2, 1, 45, 30))
            width = min(30, 50 - start)
            tile[..., :width] = planes[:, :, rows, start : start + width]
            currents = nodal_currents(layout_columns(tile, "adjacent"), v[:, rows], 2.0, 2.0)
            exact[:, start : start + width] += weight_outputs(currents, 1, 30, "adjacent")[
                :, :width
            ]
    ideal = v @ (planes[0, 0] - planes[1, 0])
    overall, worst = relative_errors(got, exact, ideal)
    assert overall < 0.02 and worst < 0.02, (overall, worst)


@pytest.mark.slow
def test_differential_pair_512x512_adjacent() -> None:
    rng = np.random.default_rng(9)
    planes = differential_planes(rng, 512, 512)
    array = layout_columns(planes, "adjacent")
    for v in read_voltages(rng, 512):
        exact = weight_outputs(nodal_currents(array, v, 0.35, 0.35), 1, 512, "adjacent")
        ideal = v @ (planes[0, 0] - planes[1, 0])
        overall, worst = relative_errors(layer_outputs(planes, v, 0.35, "adjacent"), exact, ideal)
        assert overall < 0.02 and worst < 0.02, (overall, worst)


# --------------------------------------------------------------------------- scratch arrays


def in_new_thread(fn: Callable[[], np.ndarray]) -> np.ndarray:
    """``fn()`` in a thread of its own: a new thread starts with no scratch arrays."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def test_reused_scratch_arrays_carry_nothing_between_calls_threads_or_layouts() -> None:
    """The model reuses per-thread scratch arrays between calls of one shape: repeated,
    interleaved and concurrent calls must each give, bit for bit, what freshly allocated
    arrays give, and a returned result must not change when the next call runs."""
    rng = np.random.default_rng(11)
    arrays = [random_array(rng, 48, 40) for _ in range(4)]
    planes = [torch.from_numpy(differential_planes(rng, 48, 20)) for _ in range(3)]

    def fast(k: int) -> np.ndarray:
        return fast_matrix(arrays[k], 0.5, 0.7)

    def tiled(k: int) -> np.ndarray:
        eff = PF.ir_drop_crossbar(planes[k], tile_rows=24, tile_cols=10, r_row=1.0, r_col=0.5)
        return eff.numpy()

    calls = [functools.partial(fast, k) for k in range(4)]
    calls += [functools.partial(tiled, k) for k in range(3)]
    fresh = [in_new_thread(call) for call in calls]
    first = [call() for call in calls]
    again = [call() for call in reversed(calls)][::-1]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(lambda call: call(), calls * 4))
    for k, want in enumerate(fresh):
        assert np.array_equal(first[k], want) and np.array_equal(again[k], want), k
        assert all(np.array_equal(got, want) for got in concurrent[k :: len(calls)]), k
    assert not np.array_equal(fresh[0], fresh[1])  # the inputs differ, so must the results


# --------------------------------------------------------------------------- errors


def test_bad_arguments_name_the_argument_and_the_fix() -> None:
    g = torch.rand(2, 1, 4, 4) * G_MAX
    with pytest.raises(ValueError, match="layout='diagonal'"):
        PF.ir_drop_crossbar(g, tile_rows=4, tile_cols=4, r_row=1, r_col=1, layout="diagonal")
    with pytest.raises(ValueError, match=r"\[\.\.\., 2, D, n_in, n_out\]"):
        PF.ir_drop_crossbar(g[0], tile_rows=4, tile_cols=4, r_row=1, r_col=1)
    with pytest.raises(ValueError, match="tile_rows=0"):
        PF.ir_drop_crossbar(g, tile_rows=0, tile_cols=4, r_row=1, r_col=1)
    with pytest.raises(ValueError, match="r_row=-1"):
        PF.ir_drop_fast(g[0, 0], r_row=-1.0, r_col=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        PF.ir_drop_fast(-g[0, 0], r_row=1.0, r_col=1.0)
    with pytest.raises(ValueError, match="column_layout='rows'"):
        CircuitConfig(column_layout="rows")
