"""Agreement and speed of the fast IR-drop model against the exact nodal crossbar solver.

Run: ``.venv/bin/python benchmarks/pim_ir_drop.py [--sizes 64 128 256] [--resistances ...]``.

Two kinds of arrays per size ``n``:

- ``array``: one ``n x n`` crossbar, devices uniform in 0-25 uS with half of them off;
- ``pair``: ``n x n`` Gaussian weights as differential pairs (``G+``, ``G-`` up to 25 uS) in
  one ``n x 2n`` array with adjacent columns, the layout of
  :func:`physnn.pim.functional.ir_drop_crossbar`; the error is that of the weight outputs
  ``I(G+) - I(G-)``.

Inputs are 16 signed read voltages uniform in +-0.2 V and the same 16 rectified (post-ReLU
activations). Printed: the IR-drop effect (relative deviation of the exact outputs from the
ideal ``v @ g``), the fast model's error relative to that effect (all outputs, and the worst
output column), and the time of each model (the exact solver is SuperLU on the nodal
system, the fast model one factorisation of each wire's ladders and five ladder solves; their
ratio is measured in this process).
The wire resistances span the presets: 0.07 ohm per segment in ``hwa-rasch2023``, 1 ohm the
``CircuitConfig`` default.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physnn.pim.functional import ir_drop_crossbar, ir_drop_fast, solve_crossbar


def cases(n: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (physical array [n, columns], readout [columns, outputs])``."""
    array = rng.uniform(0, 25e-6, (n, n)) * (rng.random((n, n)) < 0.5)
    w = rng.standard_normal((n, n))
    w /= np.abs(w).max()
    pair = np.stack([np.maximum(w, 0), np.maximum(-w, 0)], -1).reshape(n, 2 * n) * 25e-6
    readout = np.zeros((2 * n, n))
    readout[0::2] = np.eye(n)
    readout[1::2] = -np.eye(n)
    return {"array": (array, np.eye(n)), "pair": (pair, readout)}


def fast_array(g: np.ndarray, name: str, r: float) -> np.ndarray:
    """Effective physical array: the array model, or the layer-level call for a pair."""
    n = g.shape[0]
    if name == "array":
        return ir_drop_fast(torch.from_numpy(g), r_row=r, r_col=r).numpy()
    planes = np.stack([g[:, 0::2], g[:, 1::2]])[:, None]
    eff = ir_drop_crossbar(torch.from_numpy(planes), tile_rows=n, tile_cols=n, r_row=r, r_col=r)
    return np.stack([eff[0, 0].numpy(), eff[1, 0].numpy()], -1).reshape(n, 2 * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--resistances", type=float, nargs="+", default=[0.07, 0.35, 1.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(
        f"{'size':>5} {'kind':>5} {'r [ohm]':>8} {'inputs':>7} {'IR effect':>10}"
        f" {'err/effect':>11} {'worst col':>10} {'exact [s]':>10} {'fast [s]':>9} {'ratio':>7}"
    )
    for n in args.sizes:
        signed = rng.uniform(-0.2, 0.2, (16, n))
        for name, (g, readout) in cases(n, rng).items():
            for r in args.resistances:
                start = time.perf_counter()
                g_eff = fast_array(g, name, r)
                t_fast = time.perf_counter() - start
                for label, v in (("signed", signed), ("relu", np.abs(signed))):
                    start = time.perf_counter()
                    exact = solve_crossbar(g, v, r_row=r, r_col=r) @ readout
                    t_exact = time.perf_counter() - start
                    ideal, fast = v @ g @ readout, v @ g_eff @ readout
                    effect = exact - ideal
                    err = fast - exact
                    worst = (np.linalg.norm(err, axis=0) / np.linalg.norm(effect, axis=0)).max()
                    print(
                        f"{n:>5} {name:>5} {r:>8.2f} {label:>7}"
                        f" {np.linalg.norm(effect) / np.linalg.norm(ideal):>10.4f}"
                        f" {np.linalg.norm(err) / np.linalg.norm(effect):>11.4f} {worst:>10.4f}"
                        f" {t_exact:>10.3f} {t_fast:>9.4f} {t_exact / t_fast:>6.0f}x",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
