"""Copies and reloads of a trained model compute exactly like the model, for every preset.

Issue 15 item 1 (a PIM copy made after ``fit()`` kept the chip programmed from the
pre-training weights) and DESIGN section 3: after training, ``copy.deepcopy``, ``pickle``,
``torch.save``/``torch.load``, a state dict loaded into a freshly converted model and
``load_state_dict(strict=False)`` all give the trained model's outputs, under the same
random draws, with the preset's real nonidealities on. One fast preset per backend runs by
default; the others are marked slow.
"""

from __future__ import annotations

import copy
import io
import pickle
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

import physnn
from physnn.common.backend import available_backends, get_backend
from physnn.common.testing import reset_streams
from physnn.common.train import fit

DEFAULT_RUN = {"digital": "int8", "pim": "pcm", "optical": "thz-compact", "quantum": "shots"}
"""The preset of each backend whose round trips run in the default (not slow) run."""


def _cases() -> list[object]:
    cases = []
    for backend in available_backends():
        for preset in get_backend(backend).presets.names():
            marks = [] if DEFAULT_RUN.get(backend) == preset else [pytest.mark.slow]
            cases.append(pytest.param(backend, preset, marks=marks, id=f"{backend}-{preset}"))
    return cases


def _reference() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def _convert(spec: str) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", physnn.common.layer.WeightsNotTransferredWarning)
        return physnn.convert(_reference(), spec, input_shape=(1, 6))


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eval outputs under fixed draws (global RNG and the layers' own streams reset)."""
    torch.manual_seed(123)
    reset_streams(model)
    model.eval()
    with torch.no_grad():
        return model(x)


def _torch_save(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _state_dict_into_fresh(spec: str, *, strict: bool) -> Callable[[nn.Module], nn.Module]:
    def load(model: nn.Module) -> nn.Module:
        fresh = _convert(spec)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        fresh.load_state_dict(torch.load(buffer), strict=strict)
        return fresh

    return load


@pytest.mark.parametrize(("backend", "preset"), _cases())
def test_copies_and_reloads_after_training_compute_like_the_model(
    backend: str, preset: str
) -> None:
    spec = f"{backend}:{preset}"
    model = _convert(spec)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(32, 6, generator=gen)
    y = torch.randint(0, 3, (32,), generator=gen)
    before = _outputs(model, x)
    fit(model, (x, y), epochs=2, batch_size=16, lr=0.05, seed=0, progress=False)
    # The first evaluation after training programs the chip from the trained weights (PIM
    # draws its programming noise then, from the global RNG when unseeded); the second is
    # the trained chip as every copy must read it.
    _outputs(model, x)
    after = _outputs(model, x)
    assert torch.isfinite(after).all()
    assert not torch.equal(before, after), "training changed nothing: the test would be blind"
    copies: dict[str, Callable[[nn.Module], nn.Module]] = {
        "deepcopy": copy.deepcopy,
        "pickle": lambda m: pickle.loads(pickle.dumps(m)),
        "torch.save": _torch_save,
        "state_dict": _state_dict_into_fresh(spec, strict=True),
        "state_dict strict=False": _state_dict_into_fresh(spec, strict=False),
    }
    wrong = []
    for name, make in copies.items():
        copied = make(model)
        got = _outputs(copied, x)
        if not torch.allclose(got, after, rtol=1e-5, atol=1e-6):
            wrong.append(f"{name}: max |diff| {float((got - after).abs().max()):.3g}")
    # The original is untouched by being copied.
    torch.testing.assert_close(_outputs(model, x), after, rtol=0, atol=0)
    assert not wrong, f"{spec}: copies differ from the trained model: {wrong}"
