"""Time ``import physnn`` on top of an already imported torch (the issue asks < 1 s).

Run: ``.venv/bin/python benchmarks/import_time.py``. Each measurement is a fresh interpreter;
prints the median over repeats of (torch + physnn) - (torch alone).
"""

from __future__ import annotations

import statistics
import subprocess
import sys

CODE = "import time, torch; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def measure(stmt: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", CODE.format(stmt=stmt)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout))
    return statistics.median(times)


if __name__ == "__main__":
    for stmt in (
        "import physnn",
        "import physnn.pim",
        "import physnn.optical",
        "import physnn.quantum",
        "from physnn import convert, cost",
    ):
        print(f"{stmt:<36s} {1e3 * measure(stmt):8.1f} ms beyond torch")
