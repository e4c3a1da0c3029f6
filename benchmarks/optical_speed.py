"""Speed of a Lin-2018 D2NN against the FFT floor, measured in one process.

Geometry (Lin et al., Science 2018; ANCHORS.md optical targets): 5 phase-only layers of
200 x 200 neurons, batch 64, complex64, on the simulation grid the library's defaults use:
``geometry.samples`` (3) samples per neuron per side, so 600 x 600 padded to 1200 x 1200
(issue 12: one sample per neuron errs by 14-23 % in the field). The floor is the same number
of padded fft2/ifft2 pairs alone on that same grid (6 forward); forward+backward floors
backpropagate through them. Rows:

- ``stack``: physnn's propagation through the 5 masks to the detector intensity with the
  library defaults (cached transfer functions, ``fft2(s=...)`` padding, in-place spectrum
  multiply);
- ``network``: the whole ``DiffractiveNetwork`` forward (image resampling, encoding,
  detector regions, readout) with the ``lin2018-thz`` preset under ``physnn.ideal()``;
- ``naive``: a plain-torch implementation that rebuilds the transfer function per call,
  pads with ``F.pad`` and multiplies out of place (the common hand-written baseline);
- ``svetlanna``: the fastest anchor, SVETlANNa 2.0 (zero-padded ASM, ``zpASM``, which pads to
  2N like physnn) with the same masks, when it is installed in this interpreter; skipped
  otherwise. Install it only in the benchmark's own environment::

      python3 -m venv benchmarks/.venv-optical
      benchmarks/.venv-optical/bin/pip install torch==2.13.0 svetlanna scipy tqdm
      benchmarks/.venv-optical/bin/pip install --no-deps -e .

Usage: ``.venv/bin/python benchmarks/optical_speed.py [--repeats 7] [--batch 64]``
(or ``benchmarks/.venv-optical/bin/python ...`` for the anchor row).
Prints the median time of each and its ratio to the floor. Uses torch's default thread
count (printed).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

import physnn
import physnn.optical as po
from physnn.optical import functional as OF
from physnn.optical.stack import propagate_stack, simulation_grid

LAYERS = 5
CONFIG = po.presets.get("lin2018-thz", seed=0)
N, (M, _) = simulation_grid(CONFIG.geometry, CONFIG.geometry.size)


def timed(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each run; repeats are interleaved so that load drifts hit all."""
    for fn in runs.values():
        fn()  # warm-up (caches, allocator)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def floor(field: torch.Tensor) -> torch.Tensor:
    for _ in range(LAYERS + 1):
        field = torch.fft.ifft2(torch.fft.fft2(field, s=(M, M)))[..., :N, :N]
    return field


def naive(
    field: torch.Tensor, phases: list[torch.Tensor], geometry: po.GeometryConfig
) -> torch.Tensor:
    """A hand-written reference: transfer function rebuilt per call, F.pad, out-of-place."""
    lam, p, z = geometry.wavelength, geometry.simulation_pitch, geometry.distance
    f = torch.fft.fftfreq(M, d=p)
    arg = (1 / lam**2 - f[:, None] ** 2 - f[None, :] ** 2).clamp_min(0)
    h = torch.exp(1j * 2 * math.pi * z * torch.sqrt(arg)).to(torch.complex64)

    def prop(u: torch.Tensor) -> torch.Tensor:
        padded = F.pad(u, (0, M - N, 0, M - N))
        return torch.fft.ifft2(torch.fft.fft2(padded) * h)[..., :N, :N]

    field = prop(field)
    for phase in phases:
        field = prop(field * torch.exp(1j * OF.upsample(phase, geometry.samples)))
    return field


def svetlanna_stack(phases: list[torch.Tensor], geometry: po.GeometryConfig) -> torch.nn.Module:
    """The same D2NN in SVETlANNa: 6 zero-padded ASM gaps around 5 phase masks."""
    import svetlanna as sv
    from svetlanna import elements

    axis = (torch.arange(N) - N / 2) * geometry.simulation_pitch
    params = sv.SimulationParameters(x=axis, y=axis, wavelength=geometry.wavelength)

    def gap() -> torch.nn.Module:
        return elements.FreeSpace(params, distance=geometry.distance, method="zpASM")

    modules = [gap()]
    for phase in phases:
        mask = torch.nn.Parameter(OF.upsample(phase.detach(), geometry.samples).clone())
        modules += [elements.DiffractiveLayer(params, mask=mask, mask_norm=2 * math.pi), gap()]
    return torch.nn.Sequential(*modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = CONFIG
    net = po.DiffractiveNetwork(10, config=config)
    images = torch.rand(args.batch, 28, 28)
    field = torch.randn(args.batch, N, N, dtype=torch.complex64)
    phases = [layer.phase for layer in net.layers]
    print(
        f"D2NN {LAYERS} phase layers, {config.geometry.size}^2 neurons x "
        f"{config.geometry.samples}^2 samples = {N}x{N} padded to {M}x{M}, batch {args.batch}, "
        "complex64, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads (default), median of "
        f"{args.repeats}"
    )

    def fwd(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
        def go() -> None:
            with torch.no_grad():
                run(x)

        return go

    def train(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
        def go() -> None:
            net.zero_grad(set_to_none=True)
            out = run(x)
            (out.real.sum() if out.is_complex() else out.sum()).backward()

        return go

    def stack(u: torch.Tensor) -> torch.Tensor:
        return propagate_stack(
            list(net.layers),
            lambda h: OF.apply_transfer(u, h),
            first_distance=config.geometry.gaps[0],
            samples=N,
            dtype=u.dtype,
            device=u.device,
            training=False,
        )

    leaf = field.clone().requires_grad_(True)
    with physnn.ideal():
        rows = {
            "floor": (fwd(floor, field), train(floor, leaf)),
            "stack": (fwd(stack, field), train(stack, field)),
            "network": (fwd(net, images), train(net, images)),
            "naive": (
                fwd(lambda u: naive(u, phases, config.geometry), field),
                train(lambda u: naive(u, phases, config.geometry), field),
            ),
        }
        try:
            import svetlanna as sv

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # its zpASM sampling notes
                anchor = svetlanna_stack(phases, config.geometry)
            wave = sv.Wavefront(field)
            rows["svetlanna"] = (fwd(anchor, wave), train(anchor, wave))
        except ImportError:
            print(
                "anchor svetlanna: not installed in this interpreter, skipped "
                "(ANCHORS.md: 1.51x floor forward, 1.35x fwd+bwd)"
            )
        forward = timed({name: pair[0] for name, pair in rows.items()}, args.repeats)
        backward = timed({name: pair[1] for name, pair in rows.items()}, args.repeats)
    results = {name: (forward[name], backward[name]) for name in rows}
    base_f, base_b = results["floor"]
    print(f"{'':10s} {'forward [s]':>12s} {'x floor':>8s} {'fwd+bwd [s]':>12s} {'x floor':>8s}")
    for name, (tf, tb) in results.items():
        print(f"{name:10s} {tf:12.4f} {tf / base_f:8.2f} {tb:12.4f} {tb / base_b:8.2f}")


if __name__ == "__main__":
    main()
