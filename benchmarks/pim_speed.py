"""Speed of PIM crossbar layers relative to ``nn.Linear`` (batch 256, CPU, same process).

Run: ``.venv/bin/python benchmarks/pim_speed.py [--repeats 30] [--threads 1]``.

Prints, for 784->256 and 512->512 on one thread (issue 11):

- each configuration's eval forward time as a ratio to ``nn.Linear`` (median of interleaved
  repeats, and the ratio of minima, which is robust to other processes sharing the CPU):
  ``ideal`` (target <= 1.1x), ``pcm`` with exact per-read noise (<= 2.0x), full physics with
  the fast IR-drop model (<= 4x);
- one HWA training step (forward + backward) on the ``hwa-rasch2023`` preset as a ratio to an
  ``nn.Linear`` training step (<= 3x), with aihwkit-lightning's training step in the same
  process when it is importable (install it only in ``benchmarks/.venv-aihwkit``; the row is
  skipped otherwise);
- the time to build and program a 512x512 layer (<= 0.1 s).
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


def report(title: str, t: dict[str, list[float]], base: str) -> None:
    med = {k: statistics.median(v) for k, v in t.items()}
    low = {k: min(v) for k, v in t.items()}
    print(f"\n{title}: {base} median {med[base] * 1e3:.3f} ms")
    print(f"  {'row':<30} {'median':>8} {'min':>8}   (ratio to {base})")
    for name in t:
        if name == base:
            continue
        ratio_med, ratio_min = med[name] / med[base], low[name] / low[base]
        print(f"  {name:<30} {ratio_med:7.2f}x {ratio_min:7.2f}x   ({med[name] * 1e3:.3f} ms)")


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()

    return step


def lightning_layer(n_in: int, n_out: int) -> nn.Module | None:
    """aihwkit-lightning's ``AnalogLinear`` with its HWA-training defaults, if importable."""
    try:
        from aihwkit_lightning.nn import AnalogLinear  # type: ignore[import-not-found]
        from aihwkit_lightning.simulator.configs import (  # type: ignore[import-not-found]
            TorchInferenceRPUConfig,
        )
    except ImportError:
        return None
    layer: nn.Module = AnalogLinear(n_in, n_out, rpu_config=TorchInferenceRPUConfig())
    return layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch 256")
    for n_in, n_out in ((784, 256), (512, 512)):
        x = torch.rand(256, n_in)
        linear = nn.Linear(n_in, n_out)
        fns: dict[str, Callable[[], object]] = {"nn.Linear": lambda m=linear, x=x: m(x)}
        for name, make in CONFIGS.items():
            layer = PIMLinear.from_torch(linear, make()).eval()
            fns[name] = lambda m=layer, x=x: m(x)
        with torch.no_grad():
            report(f"eval forward {n_in}->{n_out}", timings(fns, args.repeats), "nn.Linear")
        plain = nn.Linear(n_in, n_out)
        hwa = PIMLinear.from_torch(plain, presets.get("hwa-rasch2023", seed=0)).train()
        steps: dict[str, Callable[[], object]] = {
            "nn.Linear": train_step(plain, x),
            "HWA step (hwa-rasch2023)": train_step(hwa, x),
        }
        lightning = lightning_layer(n_in, n_out)
        if lightning is not None:
            steps["aihwkit-lightning step"] = train_step(lightning.train(), x)
        report(f"training step {n_in}->{n_out}", timings(steps, args.repeats), "nn.Linear")
        if lightning is None:
            print("  aihwkit-lightning: not importable here, row skipped")

    def build() -> None:
        PIMLinear(512, 512, config=presets.get("pcm", seed=0))

    def build_full() -> None:
        PIMLinear(512, 512, config=full_physics())

    t = timings({"pcm": build, "full": build_full}, max(5, args.repeats // 5))
    pcm, full = statistics.median(t["pcm"]), statistics.median(t["full"])
    print(f"\nbuild + program 512x512 (median): pcm {pcm:.3f} s, full physics {full:.3f} s")


if __name__ == "__main__":
    main()
