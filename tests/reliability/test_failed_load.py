"""A failed ``load_state_dict`` leaves the model exactly as it was (issue 15 item 7).

The bad state dict is the worst case for a half-done load: the first physnn layer's extra
state comes from another preset (so its config would be swapped and its chip or noise model
rebuilt) and a later tensor has the wrong shape (torch reports that only after loading
everything else). After the error, every tensor, every config and the outputs under fixed
draws must be those from before.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import physnn
from physnn.common.atomic import load_state_dict_atomically
from physnn.common.backend import available_backends, get_backend
from physnn.common.config import BackendConfig
from physnn.common.layer import PhysicalModule
from physnn.common.testing import reset_streams


def _convert(spec: BackendConfig) -> nn.Module:
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return physnn.convert(reference, spec, input_shape=(1, 6))


def _fingerprint(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    torch.manual_seed(7)
    reset_streams(model)
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model(x)
        state = {
            k: (v.clone() if isinstance(v, torch.Tensor) else v)
            for k, v in model.state_dict().items()
        }
    configs = [m.config for m in model.modules() if isinstance(m, PhysicalModule)]
    return {"out": out, "state": state, "configs": configs}


def _assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["configs"] == before["configs"], "the configs changed"
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(after["state"][key], value), f"{key} changed"
        else:
            assert after["state"][key] == value, f"{key} changed"
    torch.testing.assert_close(after["out"], before["out"], rtol=0, atol=0)


def _bad_state_dict(model: nn.Module, other: nn.Module, prefix: str = "") -> dict[str, Any]:
    """``model``'s state dict with ``other``'s extra states and its last parameter misshapen
    (a parameter, not a chip buffer: under ``config="current"`` a backend may rebuild its
    chip instead of reading the saved one)."""
    bad = dict(model.state_dict())
    for key, value in other.state_dict().items():
        if key.endswith("_extra_state"):
            bad[key] = value
    last = [prefix + name for name, _ in model.named_parameters()][-1]
    bad[last] = torch.zeros(*bad[last].shape, 2)
    return bad


@pytest.fixture(params=available_backends())
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    backend = get_backend(request.param)
    mine = backend.presets.get(backend.default_preset)
    # Another config of the same structure: the same preset with another seed.
    theirs = mine.replace(seed=12345)
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(3))
    return _convert(mine), _convert(theirs), x


@pytest.mark.filterwarnings("ignore")
def test_the_rollback_restores_everything(case: tuple[nn.Module, nn.Module, torch.Tensor]) -> None:
    model, other, x = case
    before = _fingerprint(model, x)
    params = list(model.parameters())
    bad = _bad_state_dict(model, other)
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_state_dict_atomically(
            model,
            functools.partial(nn.Module.load_state_dict, model, strict=True),
            bad,
        )
    _assert_same(before, _fingerprint(model, x))
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True)), (
        "the rollback replaced parameter objects (an optimiser would lose them)"
    )
    # A good load after the failed one still works and changes the model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_state_dict(other.state_dict())
    assert [m.config for m in model.modules() if isinstance(m, PhysicalModule)] == [
        m.config for m in other.modules() if isinstance(m, PhysicalModule)
    ]


@pytest.mark.filterwarnings("ignore")
def test_a_failed_load_of_a_layer_changes_nothing(
    case: tuple[nn.Module, nn.Module, torch.Tensor],
) -> None:
    model, other, x = case
    layer, other_layer = model[0], other[0]
    before = _fingerprint(layer, x)
    bad = _bad_state_dict(layer, other_layer)
    with pytest.raises(RuntimeError):
        layer.load_state_dict(bad)
    _assert_same(before, _fingerprint(layer, x))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("config", ["saved", "current"])
def test_a_failed_physnn_load_state_dict_changes_nothing(
    case: tuple[nn.Module, nn.Module, torch.Tensor], config: str
) -> None:
    model, other, x = case
    before = _fingerprint(model, x)
    with pytest.raises(RuntimeError):
        physnn.load_state_dict(model, _bad_state_dict(model, other), config=config)  # type: ignore[arg-type]
    _assert_same(before, _fingerprint(model, x))
