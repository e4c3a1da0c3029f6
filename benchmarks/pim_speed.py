"""Speed of PIM crossbar layers relative to ``nn.Linear`` (batch 256, CPU, same process).

Run: ``.venv/bin/python benchmarks/pim_speed.py [--repeats 50] [--threads N]``.

Prints, for 784->256 and 512->512, each configuration's eval forward time as a ratio to
``nn.Linear`` (median of interleaved repeats; the ratio of minima is printed too, as it is
robust to other processes sharing the CPU), and the time to construct and program a
512x512 layer. Targets (issue 4 / ANCHORS.md): ideal <= 1.2x, pcm <= 2.5x, full physics with
the fast IR-drop model <= 6x, construct + program 512x512 <= 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from physnn.pim import PIMLinear, presets
from physnn.pim.config import PIMConfig


def full_physics() -> PIMConfig:
    """Every nonideality at once: the HWA paper preset (PCM, per-read weight noise, IR drop,
    learned ranges) plus stuck-at faults, device variation, ADC gain/offset errors and noise."""
    cfg = presets.get("hwa-rasch2023", seed=0)
    return cfg.replace(
        faults=cfg.faults.replace(stuck_off_rate=0.01, stuck_on_rate=0.005),
        programming=cfg.programming.replace(device_variation=0.05),
        adc=cfg.adc.replace(gain_std=0.02, offset_std=0.01, noise=0.01),
    )


CONFIGS: dict[str, Callable[[], PIMConfig]] = {
    "ideal": lambda: presets.get("ideal", seed=0),
    "pcm": lambda: presets.get("pcm", seed=0),
    "full physics + IR drop": full_physics,
}


def timings(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each function, interleaved so drifts of the machine hit all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        for _ in range(3):
            fn()
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 256")
    for n_in, n_out in ((784, 256), (512, 512)):
        x = torch.rand(256, n_in)
        linear = nn.Linear(n_in, n_out)
        layers = {
            name: PIMLinear.from_torch(linear, make()).eval() for name, make in CONFIGS.items()
        }
        fns: dict[str, Callable[[], object]] = {
            "nn.Linear": lambda m=linear, x=x: m(x)  # type: ignore[misc]
        }
        for name, layer in layers.items():
            fns[name] = lambda m=layer, x=x: m(x)  # type: ignore[misc]
        with torch.no_grad():
            t = timings(fns, args.repeats)
        med = {k: statistics.median(v) for k, v in t.items()}
        low = {k: min(v) for k, v in t.items()}
        print(f"\n{n_in}->{n_out}: nn.Linear median {med['nn.Linear'] * 1e3:.3f} ms")
        print(f"  {'configuration':<24} {'median':>8} {'min':>8}   (ratio to nn.Linear)")
        for name in CONFIGS:
            ratio_med = med[name] / med["nn.Linear"]
            ratio_min = low[name] / low["nn.Linear"]
            print(f"  {name:<24} {ratio_med:7.2f}x {ratio_min:7.2f}x   ({med[name] * 1e3:.3f} ms)")

    def build() -> None:
        PIMLinear(512, 512, config=presets.get("pcm", seed=0))

    def build_full() -> None:
        PIMLinear(512, 512, config=full_physics())

    t = timings({"pcm": build, "full": build_full}, max(5, args.repeats // 5))
    pcm, full = statistics.median(t["pcm"]), statistics.median(t["full"])
    print(f"\nconstruct + program 512x512 (median): pcm {pcm:.3f} s, full physics {full:.3f} s")


if __name__ == "__main__":
    main()
