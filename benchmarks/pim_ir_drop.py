"""Agreement and speed of the fast IR-drop model against the exact nodal crossbar solver.

Run: ``.venv/bin/python benchmarks/pim_ir_drop.py [--sizes 64 128 256]``.

For random crossbars (devices uniform in 0-25 uS, half of them off; inputs uniform in
+-0.2 V) and wire resistances per segment spanning the presets (0.35 ohm in
``hwa-rasch2023``, 1 ohm default), prints the IR-drop effect (relative deviation of the exact
column currents from ``v @ g``), the fast model's error relative to that effect and to the
currents, and the time of each model.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physnn.pim.functional import ir_drop_fast, solve_crossbar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--resistances", type=float, nargs="+", default=[0.1, 0.35, 1.0, 2.5])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{'size':>5} {'r [ohm]':>8} {'IR effect':>10} {'err/effect':>11} {'err/current':>12}"
        f" {'exact [s]':>10} {'fast [s]':>9}"
    )
    for m in args.sizes:
        g = rng.uniform(0, 25e-6, (m, m)) * (rng.random((m, m)) < 0.5)
        v = rng.uniform(-0.2, 0.2, (32, m))
        ideal = v @ g
        for r in args.resistances:
            start = time.perf_counter()
            exact = solve_crossbar(g, v, r_row=r, r_col=r)
            t_exact = time.perf_counter() - start
            start = time.perf_counter()
            g_eff = ir_drop_fast(torch.from_numpy(g), r_row=r, r_col=r).numpy()
            t_fast = time.perf_counter() - start
            fast = v @ g_eff
            effect = np.linalg.norm(exact - ideal) / np.linalg.norm(ideal)
            err = np.linalg.norm(fast - exact)
            print(
                f"{m:>5} {r:>8.2f} {effect:>10.4f} {err / np.linalg.norm(exact - ideal):>11.4f}"
                f" {err / np.linalg.norm(exact):>12.2e} {t_exact:>10.3f} {t_fast:>9.4f}"
            )


if __name__ == "__main__":
    main()
