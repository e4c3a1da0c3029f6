"""Derived seeds and noise streams."""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import warnings

import pytest
import torch

import physnn
from physnn.common.rng import NoiseStreams, derive_seed, ideal, is_ideal


def test_derive_seed_is_stable_across_processes() -> None:
    code = "from physnn.common.rng import derive_seed; print(derive_seed(3, 'fc1', 'prog'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == derive_seed(3, "fc1", "prog")


def test_derive_seed_separates_names_and_streams() -> None:
    seeds = {derive_seed(1, a, b) for a in ("fc1", "fc2") for b in ("prog", "read")}
    assert len(seeds) == 4
    assert derive_seed(1, "ab", "c") != derive_seed(1, "a", "bc")
    assert all(0 <= s < 2**63 for s in seeds)


def test_derive_seed_rejects_bad_seed() -> None:
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1, "x")


def test_static_streams_repeat_and_dynamic_streams_advance() -> None:
    s = NoiseStreams(5, "layer")
    a = torch.randn(4, generator=s.static("prog"))
    b = torch.randn(4, generator=s.static("prog"))
    assert torch.equal(a, b)
    d1 = torch.randn(4, generator=s.dynamic("read"))
    d2 = torch.randn(4, generator=s.dynamic("read"))
    assert not torch.equal(d1, d2)
    s.reset()
    assert torch.equal(torch.randn(4, generator=s.dynamic("read")), d1)


def test_no_seed_uses_global_rng() -> None:
    s = NoiseStreams(None)
    assert s.static("x") is None and s.dynamic("x") is None


def test_copies_continue_the_dynamic_streams_and_reset_restarts_them() -> None:
    s = NoiseStreams(2, "n")
    first = torch.randn(3, generator=s.dynamic("read"))
    for t in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s)):
        assert t.seed == 2 and t.name == "n"
        nxt = torch.randn(3, generator=t.dynamic("read"))
        assert not torch.equal(nxt, first)
        assert torch.equal(torch.randn(3, generator=copy.deepcopy(s).dynamic("read")), nxt)
    s.reset()
    assert torch.equal(torch.randn(3, generator=s.dynamic("read")), first)


@pytest.mark.parametrize("preset", ["pim:pcm", "optical:thz-compact", "quantum:heron"])
def test_copied_and_saved_layers_draw_what_the_original_draws_next(preset: str) -> None:
    """A deep copy, a pickle and a torch.save of a noisy layer that has already read
    continue its per-read noise and shots where it was, so they compute exactly what the
    original computes next."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optics and quantum train their own parameters
        model = physnn.convert(torch.nn.Sequential(torch.nn.Linear(8, 4)), preset)
    model = physnn.reconfigure(model, {"seed": 5}).eval()
    x = torch.rand(6, 8)
    with torch.no_grad():
        first = model(x)
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        copies = [
            copy.deepcopy(model),
            pickle.loads(pickle.dumps(model)),
            torch.load(buffer, weights_only=False),
        ]
        want = model(x)
        assert not torch.equal(want, first)  # the noise is redrawn per read
        for other in copies:
            assert torch.equal(other(x), want)


def test_ideal_context_nests_and_restores() -> None:
    assert not is_ideal()
    with ideal():
        assert is_ideal()
        with ideal():
            assert is_ideal()
        assert is_ideal()
    assert not is_ideal()
