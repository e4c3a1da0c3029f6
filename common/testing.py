"""Invariant checks shipped for users and backend authors, and the backend conformance suite.

Every function raises ``AssertionError`` with a readable message when the invariant fails.
``check_backend("pim")`` runs a registered backend (every preset) through the shared
contract; physnn's own test suite runs it for each built-in backend.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .backend import Capabilities, get_backend
from .config import BackendConfig
from .convert import conversion_report, convert, reconfigure, to_torch
from .cost import Cost, cost, leaf_shapes
from .layer import (
    PhysicalModule,
    WeightsNotTransferredError,
    WeightsNotTransferredWarning,
    load_state_dict,
)
from .rng import ideal

__all__ = [
    "assert_cost_additive",
    "assert_matches_torch_when_ideal",
    "assert_seed_reproducible",
    "assert_state_dict_roundtrip",
    "check_backend",
    "check_config",
    "reset_streams",
]


def reset_streams(model: nn.Module) -> None:
    """Restart the dynamic noise streams of every physnn layer in ``model``."""
    for module in model.modules():
        if isinstance(module, PhysicalModule):
            module.streams.reset()


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    reset_streams(model)
    model.eval()
    with torch.no_grad():
        return model(x)


def assert_matches_torch_when_ideal(
    physical: nn.Module,
    reference: nn.Module,
    x: torch.Tensor,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> None:
    """Inside :func:`physnn.ideal`, ``physical(x)`` equals ``reference(x)`` (weights moved)."""
    reference.eval()
    physical.eval()
    with torch.no_grad(), ideal():
        got = physical(x)
        want = reference(x)
    torch.testing.assert_close(
        got, want, rtol=rtol, atol=atol, msg=lambda m: f"ideal mismatch: {m}"
    )


def assert_state_dict_roundtrip(
    model: nn.Module, rebuild: Callable[[], nn.Module], x: torch.Tensor
) -> None:
    """``state_dict`` and ``torch.save`` round trips reproduce the outputs exactly.

    Args:
        model: the physical model.
        rebuild: makes a fresh model of the same architecture (e.g. converted with another
            seed) into which the state dict is loaded.
        x: input batch.
    """
    want = _outputs(model, x)
    fresh = rebuild()
    load_state_dict(fresh, model.state_dict(), config="saved")
    got = _outputs(fresh, x)
    torch.testing.assert_close(got, want, rtol=0, atol=0, msg=lambda m: f"state_dict: {m}")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    got = _outputs(loaded, x)
    torch.testing.assert_close(got, want, rtol=0, atol=0, msg=lambda m: f"torch.save: {m}")


def assert_seed_reproducible(build: Callable[[], nn.Module], x: torch.Tensor) -> None:
    """Two models built by ``build`` (same seed) have identical state and outputs."""
    a, b = build(), build()
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        raise AssertionError(f"state keys differ: {sorted(sa.keys() ^ sb.keys())}")
    for key in sa:
        va, vb = sa[key], sb[key]
        if isinstance(va, torch.Tensor) and not torch.equal(va, vb):
            raise AssertionError(f"same seed, different state {key!r}")
    torch.testing.assert_close(_outputs(a, x), _outputs(b, x), rtol=0, atol=0)


def assert_cost_additive(
    model: nn.Module, input_shape: Sequence[int], *, rtol: float = 1e-9
) -> None:
    """Costs scale with the batch and the total equals the sum of per-layer costs."""
    shape = tuple(input_shape)
    one = cost(model, (1, *shape[1:]))
    many = cost(model, shape)
    batch = shape[0]
    if many.macs != batch * one.macs:
        raise AssertionError(f"MACs {many.macs} != {batch} x {one.macs}")
    for name in ("energy", "latency"):
        a, b = getattr(many, name), batch * getattr(one, name)
        if not math.isclose(a, b, rel_tol=rtol, abs_tol=0.0):
            raise AssertionError(f"{name} {a!r} != {batch} x {getattr(one, name)!r}")
    if not math.isclose(many.area, one.area, rel_tol=rtol):
        raise AssertionError(f"area depends on batch: {many.area} vs {one.area}")
    parts = [
        m.cost(s) if isinstance(m, PhysicalModule) else cost(m, s)
        for _, m, s in leaf_shapes(model, shape)
    ]
    summed = sum(parts, Cost())
    if not math.isclose(summed.energy, many.energy, rel_tol=rtol) or summed.macs != many.macs:
        raise AssertionError(f"per-layer costs {summed} do not add up to {many}")
    if many.energy <= 0 and many.macs > 0:
        raise AssertionError(f"energy {many.energy} must be positive for {many.macs} MACs")


def check_config(config: BackendConfig) -> None:
    """``to_dict``/``from_dict`` round-trips exactly through JSON; ``ideal()`` is valid."""
    data = json.loads(json.dumps(config.to_dict()))
    again = type(config).from_dict(data)
    if again != config:
        raise AssertionError(f"config round trip changed it:\n{config}\n{again}")
    if again.to_dict() != config.to_dict():
        raise AssertionError("to_dict is not stable across a round trip")
    if not isinstance(config.ideal(), type(config)):
        raise AssertionError("ideal() must return the same config type")


def _conformance_model(in_features: int, hidden: int, out_features: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


def _check_to_torch(
    label: str, model: nn.Module, reference: nn.Module, x: torch.Tensor, caps: Capabilities
) -> None:
    if caps.transfers_weights:
        plain = to_torch(model)
        torch.testing.assert_close(plain(x), reference(x))
    else:
        try:
            to_torch(model)
        except WeightsNotTransferredError:
            pass
        else:
            raise AssertionError(f"{label}: to_torch(weights='exact') of untransferred weights")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WeightsNotTransferredWarning)
            plain = to_torch(model, weights="shape")
        if plain(x).shape != reference(x).shape:
            raise AssertionError(f"{label}: to_torch(weights='shape') changed the output shape")
    if any(isinstance(m, PhysicalModule) for m in plain.modules()):
        raise AssertionError(f"{label}: to_torch left physical layers")


def _check_reconfigure(
    label: str,
    model: nn.Module,
    build: Callable[[BackendConfig], nn.Module],
    config: BackendConfig,
    x: torch.Tensor,
) -> None:
    layer = next(m for m in model.modules() if isinstance(m, PhysicalModule))
    try:
        layer.config = config
    except AttributeError:
        pass
    else:
        raise AssertionError(f"{label}: layer.config accepted an assignment")
    target = config.ideal()
    moved = reconfigure(model, target)
    direct = build(target)
    torch.testing.assert_close(
        _outputs(moved, x),
        _outputs(direct, x),
        rtol=1e-6,
        atol=1e-6,
        msg=lambda m: f"{label}: reconfigure to ideal() differs from converting with it: {m}",
    )
    back = reconfigure(moved, config)
    torch.testing.assert_close(
        _outputs(back, x),
        _outputs(model, x),
        rtol=1e-6,
        atol=1e-6,
        msg=lambda m: f"{label}: reconfigure there and back changed the chip: {m}",
    )


def check_backend(
    name: str,
    presets: Sequence[str] | None = None,
    *,
    sizes: tuple[int, int, int] = (6, 5, 4),
    batch: int = 3,
) -> None:
    """Run backend ``name`` through the shared layer contract for each preset.

    Checks: config JSON round trip; conversion of a small MLP (report, output shape, finite
    outputs); ideal equality with torch when weights transfer; ``to_torch`` removes every
    physical layer (exact weights where they transfer, otherwise a clear error unless
    ``weights="shape"``); ``layer.config`` cannot be assigned and :func:`physnn.reconfigure`
    gives the outputs a direct conversion with the new config gives; same seed -> same
    chip; state-dict and ``torch.save`` round trips are exact; costs are additive; NaN
    inputs and wrong widths raise ``ValueError``.
    """
    backend = get_backend(name)
    names = list(presets) if presets is not None else backend.presets.names()
    torch.manual_seed(0)
    x = torch.rand(batch, sizes[0])
    for preset in names:
        config = backend.presets.get(preset, seed=7)
        check_config(config)
        reference = _conformance_model(*sizes)

        def build(cfg: BackendConfig = config, ref: nn.Module = reference) -> nn.Module:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WeightsNotTransferredWarning)
                return convert(ref, cfg)

        model = build()
        report = conversion_report(model)
        if len(report.converted) != 2:
            raise AssertionError(f"{name}:{preset}: expected 2 converted layers:\n{report}")
        if report.needs_training == backend.capabilities.transfers_weights:
            raise AssertionError(f"{name}:{preset}: report disagrees with capabilities")
        y = _outputs(model, x)
        if y.shape != (batch, sizes[2]) or not torch.isfinite(y).all():
            raise AssertionError(f"{name}:{preset}: bad output {y.shape} / non-finite values")
        if backend.capabilities.transfers_weights:
            assert_matches_torch_when_ideal(model, reference, x)
        _check_to_torch(f"{name}:{preset}", model, reference, x, backend.capabilities)
        _check_reconfigure(f"{name}:{preset}", model, build, config, x)
        assert_seed_reproducible(build, x)
        other = config.replace(seed=8)

        def rebuild(cfg: BackendConfig = other, ref: nn.Module = reference) -> nn.Module:
            return build(cfg, ref)

        assert_state_dict_roundtrip(model, rebuild, x)
        assert_cost_additive(model, (batch, sizes[0]))
        for bad, why in (
            (x.clone().fill_(math.nan), "NaN"),
            (torch.rand(batch, sizes[0] + 1), "width"),
        ):
            try:
                model(bad)
            except ValueError:
                continue
            raise AssertionError(f"{name}:{preset}: {why} input did not raise ValueError")
