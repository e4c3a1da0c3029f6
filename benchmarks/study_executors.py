"""Wall time of one 16-trial study under each executor (serial, process pool, local Ray).

Run: ``.venv/bin/python benchmarks/study_executors.py [--workers 2] [--epochs 3]``.

The study is 2 rows (``digital:int8``, ``pim:pcm``) x 8 seeds on a small digits subset, run
once per executor into a fresh folder; the script prints each wall time and its ratio to the
serial run measured in the same process, and checks that every executor produced the same
numbers. Process and Ray workers pay a start-up (a fresh Python importing torch per worker,
plus Ray's own services), so on a 2-core machine no speed-up is expected: the executors are
for machines with more cores and for clusters (``--ray-address``). Ray is skipped when it is
not installed (``pip install 'physnn[ray]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

from physnn.study.compare import compare


def _run(executor: str, out: Path, workers: int, epochs: int) -> tuple[float, list[object]]:
    start = time.perf_counter()
    result = compare(
        backends=["digital:int8", "pim:pcm"],
        epochs=epochs,
        seeds=8,
        devices=2,
        train_size=300,
        test_size=100,
        threads=1,
        executor=executor,
        workers=None if executor == "serial" else workers,
        out=out,
        progress=False,
        figures=False,
    )
    seconds = time.perf_counter() - start
    return seconds, [t.numbers() for row in result.rows for t in row.trials]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    executors = ["serial", "process"]
    if importlib.util.find_spec("ray") is not None:
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        executors.append("ray")
    else:
        print("ray: not installed, skipped (pip install 'physnn[ray]')")
    print(
        f"16 trials (2 rows x 8 seeds), {args.epochs} epochs, {args.workers} workers, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        baseline: tuple[float, list[object]] | None = None
        for executor in executors:
            seconds, numbers = _run(executor, Path(tmp) / executor, args.workers, args.epochs)
            if baseline is None:
                baseline = (seconds, numbers)
            same = "identical" if numbers == baseline[1] else "DIFFERENT"
            print(
                f"{executor:<8s} {seconds:7.1f} s   {seconds / baseline[0]:5.2f}x serial   "
                f"results {same}"
            )


if __name__ == "__main__":
    main()
