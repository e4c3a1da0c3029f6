"""Speed of PIM crossbar layers relative to ``nn.Linear`` (batch 256, CPU, same process).

Run: ``.venv/bin/python benchmarks/pim_speed.py [--repeats 30] [--threads 1] [--build-only]``
(``--build-only``: only the build-and-program rows); for the aihwkit-lightning row, in the
benchmark's own environment (never a physnn dependency)::

    python3 -m venv benchmarks/.venv-pim
    benchmarks/.venv-pim/bin/pip install torch==2.13.0
    benchmarks/.venv-pim/bin/pip install aihwkit-lightning numpy scipy
    benchmarks/.venv-pim/bin/pip install --no-deps -e .
    benchmarks/.venv-pim/bin/python benchmarks/pim_speed.py

Prints, for 784->256 and 512->512 on one thread (issue 11):

- each configuration's eval forward time as a ratio to ``nn.Linear`` (median of interleaved
  repeats, and the ratio of minima, which is robust to other processes sharing the CPU):
  ``ideal`` (target <= 1.1x), ``pcm`` with exact per-read noise (<= 2.0x), full physics with
  the fast IR-drop model (<= 4x);
- one HWA training step (forward + backward + SGD step) on the ``hwa-rasch2023`` preset as a
  ratio to an ``nn.Linear`` training step (<= 3x), with aihwkit-lightning's ``AnalogLinear``
  training step in the same process when it is importable, configured like the preset
  (8-bit DAC and ADC, output bound 10, output noise 0.04, additive weight noise 0.05 of the
  largest weight, learned input ranges, 512-row tiles; its PyTorch kernels, as triton needs
  a GPU); the row is skipped otherwise;
- the time to build and program a 512x512 layer (<= 0.1 s).

Each row says whether it meets its target by the ratio of the minimal process CPU times
(one thread: robust when other processes share the machine; wall-time ratios are printed
too).
"""

from __future__ import annotations

import argparse
import functools
import os
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


Times = dict[str, tuple[list[float], list[float]]]


def timings(fns: dict[str, Callable[[], object]], repeats: int) -> Times:
    """Wall and process CPU times of each function, interleaved so drifts of the machine
    hit all alike. On one thread the CPU time excludes the time other processes held the
    core, so its minima are the most robust measure on a shared machine."""
    times: Times = {k: ([], []) for k in fns}
    for fn in fns.values():  # warm-up
        for _ in range(3):
            fn()
    for _ in range(repeats):
        for key, fn in fns.items():
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            times[key][1].append(time.process_time() - cpu)
            times[key][0].append(time.perf_counter() - start)
    return times


TARGETS = {
    "ideal": 1.1,
    "pcm": 2.0,
    "full physics + IR drop": 4.0,
    "HWA step (hwa-rasch2023)": 3.0,
}
"""Issue 11's targets: ratio to the ``nn.Linear`` row measured in the same process."""


def verdict(value: float, target: float | None, unit: str = "x") -> str:
    if target is None:
        return ""
    return f"{'meets' if value <= target else 'MISSES'} <= {target:g}{unit}"


def report(title: str, t: Times, base: str) -> None:
    med = {k: statistics.median(v[0]) for k, v in t.items()}
    low = {k: min(v[0]) for k, v in t.items()}
    cpu = {k: min(v[1]) for k, v in t.items()}
    print(f"\n{title}: {base} median {med[base] * 1e3:.3f} ms, min {low[base] * 1e3:.3f} ms")
    print(f"  {'row':<30} {'median':>8} {'min':>8} {'min CPU':>8}   (ratio to {base})")
    for name in t:
        if name == base:
            continue
        ratios = med[name] / med[base], low[name] / low[base], cpu[name] / cpu[base]
        print(
            f"  {name:<30} {ratios[0]:7.2f}x {ratios[1]:7.2f}x {ratios[2]:7.2f}x"
            f"   ({med[name] * 1e3:.3f} ms)  {verdict(ratios[2], TARGETS.get(name))}"
        )


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()

    return step


def lightning_layer(n_in: int, n_out: int) -> nn.Module | None:
    """aihwkit-lightning's ``AnalogLinear`` configured like ``hwa-rasch2023``, if importable."""
    try:
        from aihwkit_lightning.nn import AnalogLinear  # type: ignore[import-not-found]
        from aihwkit_lightning.simulator.configs import (  # type: ignore[import-not-found]
            TorchInferenceRPUConfig,
            WeightNoiseInjectionType,
        )
    except ImportError:
        return None
    rpu = TorchInferenceRPUConfig()
    rpu.forward.inp_res = 2**8 - 2
    rpu.forward.out_res = 2**8 - 2
    rpu.forward.out_bound = 10.0
    rpu.forward.out_noise = 0.04
    rpu.modifier.noise_type = WeightNoiseInjectionType.ADD_NORMAL
    rpu.modifier.std_dev = 0.05
    rpu.pre_post.input_range.enable = True
    rpu.mapping.max_input_size = 512
    layer: nn.Module = AnalogLinear(n_in, n_out, rpu_config=rpu)
    return layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--build-only", action="store_true", help="only time building and programming a layer"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch 256")
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)")
    for n_in, n_out in () if args.build_only else ((784, 256), (512, 512)):
        x = torch.rand(256, n_in)
        linear = nn.Linear(n_in, n_out)
        fns: dict[str, Callable[[], object]] = {"nn.Linear": functools.partial(linear, x)}
        for name, make in CONFIGS.items():
            layer = PIMLinear.from_torch(linear, make()).eval()
            fns[name] = functools.partial(layer, x)
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

    t = timings({"pcm": build, "full": build_full}, max(10, args.repeats // 2))
    print("\nbuild + program 512x512:")
    for name, label in (("pcm", "pcm"), ("full", "full physics + IR drop")):
        med, low, cpu = statistics.median(t[name][0]), min(t[name][0]), min(t[name][1])
        print(
            f"  {label:<30} median {med:.3f} s, min {low:.3f} s, min CPU {cpu:.3f} s"
            f"  {verdict(cpu, 0.1, ' s')}"
        )


if __name__ == "__main__":
    main()
