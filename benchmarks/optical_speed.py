"""Speed of a Lin-2018 D2NN against the FFT floor, measured in one process.

Geometry (Lin et al., Science 2018; ANCHORS.md optical targets): 5 phase-only layers of
200 x 200 neurons, batch 64, complex64, on the simulation grid the library's defaults use:
``geometry.samples`` (3) samples per neuron per side, so 600 x 600 padded to 1200 x 1200
(issue 12: one sample per neuron errs by about 30 % in the field; the default method,
``auto``, is Rayleigh-Sommerfeld on this grid). The floor is the same number of padded
fft2/ifft2 pairs alone on that same grid (6 forward); forward+backward floors
backpropagate through them. Rows:

- ``stack``: physnn's propagation through the 5 masks to the detector intensity with the
  library defaults (cached transfer functions, ``fft2(s=...)`` padding, in-place spectrum
  multiply, the adjoint propagation as backward);
- ``network``: the whole ``DiffractiveNetwork`` forward (image resampling, encoding,
  detector regions, readout) with the ``lin2018-thz`` preset under ``physnn.ideal()``;
- ``naive``: a plain-torch implementation that rebuilds the transfer function per call,
  pads with ``F.pad`` and multiplies out of place (the common hand-written baseline);
- ``svetlanna-rsc`` / ``svetlanna-asm``: the fastest anchor, SVETlANNa 2.0 (its
  zero-padded Rayleigh-Sommerfeld convolution ``zpRSC``, the method physnn uses here, and
  its zero-padded angular spectrum ``zpASM``) with the same masks, when it is installed in
  this interpreter; skipped otherwise. Install it only in the benchmark's own environment::

      python3 -m venv benchmarks/.venv-optics
      benchmarks/.venv-optics/bin/pip install torch==2.13.0
      benchmarks/.venv-optics/bin/pip install svetlanna scipy tqdm
      benchmarks/.venv-optics/bin/pip install --no-deps -e .

Usage: ``.venv/bin/python benchmarks/optical_speed.py [--repeats 3] [--batch 64] [--rows
floor,stack,svetlanna-rsc]`` (or ``benchmarks/.venv-optics/bin/python ...`` for the anchor
rows). Each row is warmed up once at ``--warmup-batch`` (transfer-function caches, kernel
set-up), then timed ``--repeats`` times, interleaved so that load drifts hit all rows;
prints the minimum (the least disturbed run on a shared machine) and the median, each with
its ratio to the floor. Uses torch's default thread count (printed).
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


def timed(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each run; repeats are interleaved so that load drifts hit all."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
            # a partial record survives an interrupted run on a loaded machine
            print(f"  {name}: {samples[name][-1]:.3f} s", flush=True)
    return samples


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


def svetlanna_stack(
    phases: list[torch.Tensor], geometry: po.GeometryConfig, method: str
) -> torch.nn.Module:
    """The same D2NN in SVETlANNa: 6 zero-padded gaps (``zpRSC`` or ``zpASM``) around 5
    phase masks."""
    import svetlanna as sv
    from svetlanna import elements

    axis = (torch.arange(N) - N / 2) * geometry.simulation_pitch
    params = sv.SimulationParameters(x=axis, y=axis, wavelength=geometry.wavelength)

    def gap() -> torch.nn.Module:
        return elements.FreeSpace(params, distance=geometry.distance, method=method)

    modules = [gap()]
    for phase in phases:
        mask = torch.nn.Parameter(OF.upsample(phase.detach(), geometry.samples).clone())
        modules += [elements.DiffractiveLayer(params, mask=mask, mask_norm=2 * math.pi), gap()]
    return torch.nn.Sequential(*modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup-batch", type=int, default=1)
    parser.add_argument(
        "--rows",
        default="floor,stack,network,naive,svetlanna-rsc,svetlanna-asm",
        help="comma-separated rows to time (floor is always timed)",
    )
    args = parser.parse_args()
    wanted = {"floor", *args.rows.split(",")}
    torch.manual_seed(0)
    config = CONFIG
    net = po.DiffractiveNetwork(10, config=config)
    phases = [layer.phase for layer in net.layers]
    print(
        f"D2NN {LAYERS} phase layers, {config.geometry.size}^2 neurons x "
        f"{config.geometry.samples}^2 samples = {N}x{N} padded to {M}x{M}, batch {args.batch}, "
        f"complex64, torch {torch.__version__}, {torch.get_num_threads()} threads (default), "
        f"{args.repeats} repeats after a warm-up at batch {args.warmup_batch}"
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

    def rows(batch: int) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
        images = torch.rand(batch, 28, 28)
        field = torch.randn(batch, N, N, dtype=torch.complex64)
        leaf = field.clone().requires_grad_(True)
        table = {
            "floor": (fwd(floor, field), train(floor, leaf)),
            "stack": (fwd(stack, field), train(stack, field)),
            "network": (fwd(net, images), train(net, images)),
            "naive": (
                fwd(lambda u: naive(u, phases, config.geometry), field),
                train(lambda u: naive(u, phases, config.geometry), field),
            ),
        }
        for name, (anchor, wavefront) in anchors.items():
            wave = wavefront(field)
            table[name] = (fwd(anchor, wave), train(anchor, wave))
        return {name: pair for name, pair in table.items() if name in wanted}

    anchors: dict[str, tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]] = {}
    if wanted & {"svetlanna-rsc", "svetlanna-asm"}:
        try:
            import svetlanna as sv

            for name, method in (("svetlanna-rsc", "zpRSC"), ("svetlanna-asm", "zpASM")):
                if name in wanted:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # its sampling notes
                        anchors[name] = (
                            svetlanna_stack(phases, config.geometry, method),
                            sv.Wavefront,
                        )
        except ImportError:
            print(
                "anchor svetlanna: not installed in this interpreter, skipped "
                "(ANCHORS.md: zpASM 1.51x floor forward, 1.35x fwd+bwd)"
            )
    with physnn.ideal():
        for forward_run, train_run in rows(args.warmup_batch).values():
            forward_run()  # warm-up: transfer functions, kernels, allocator
            train_run()
        timed_rows = rows(args.batch)
        print("forward:", flush=True)
        forward = timed({name: pair[0] for name, pair in timed_rows.items()}, args.repeats)
        print("forward+backward:", flush=True)
        backward = timed({name: pair[1] for name, pair in timed_rows.items()}, args.repeats)
    base_f, base_b = min(forward["floor"]), min(backward["floor"])
    med_f, med_b = statistics.median(forward["floor"]), statistics.median(backward["floor"])
    print(
        f"{'':14s} {'fwd min [s]':>11s} {'x floor':>8s} {'(median)':>8s} "
        f"{'f+b min [s]':>11s} {'x floor':>8s} {'(median)':>8s}"
    )
    for name in timed_rows:
        tf, tb = min(forward[name]), min(backward[name])
        mf, mb = statistics.median(forward[name]), statistics.median(backward[name])
        print(
            f"{name:14s} {tf:11.3f} {tf / base_f:8.2f} {mf / med_f:8.2f} "
            f"{tb:11.3f} {tb / base_b:8.2f} {mb / med_b:8.2f}"
        )


if __name__ == "__main__":
    main()
