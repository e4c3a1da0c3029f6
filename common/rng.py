"""Seeds, per-layer noise streams and the global ``ideal()`` switch.

With ``seed=None`` every draw uses torch's global RNG, so ``torch.manual_seed`` behaves as
users expect. With a seed, each layer derives one independent stream per purpose from
``(seed, qualified layer name, stream name)`` through SHA-256 (never Python's salted
``hash``), so adding or renaming another layer never changes this layer's draws.

Static randomness (programming noise, faults, fabrication error) is drawn from a fresh
generator each time it is (re)drawn, so reprogramming with the same seed gives the same chip.
Dynamic randomness (read noise, shot noise) comes from a generator that advances between
calls; a deep copy, a pickle or a ``torch.save`` of the layer continues it where it was, a
rebuild (new config or seed) or a state dict restarts it from its derived seed.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator

import torch

__all__ = ["NoiseStreams", "derive_seed", "ideal", "is_ideal"]

_IDEAL: contextvars.ContextVar[bool] = contextvars.ContextVar("physnn_ideal", default=False)


def derive_seed(seed: int, *names: str) -> int:
    """Derive a stable 63-bit seed from a base seed and names.

    Args:
        seed: base seed (non-negative int).
        *names: qualifiers such as the layer's qualified name and the stream name.

    Returns:
        An int in ``[0, 2**63)``, identical across processes, platforms and Python versions.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    h = hashlib.sha256(str(seed).encode())
    for name in names:
        h.update(b"\x00" + name.encode())
    return int.from_bytes(h.digest()[:8], "little") & (2**63 - 1)


class NoiseStreams:
    """The random streams of one layer.

    Args:
        seed: base seed, or None for torch's global RNG.
        name: the layer's qualified name inside its model (``""`` for a lone layer).
    """

    def __init__(self, seed: int | None, name: str = "") -> None:
        self.seed = seed
        self.name = name
        self._dynamic: dict[tuple[str, str], torch.Generator] = {}

    def static(self, stream: str, device: torch.device | str = "cpu") -> torch.Generator | None:
        """A fresh generator for a static draw (same seed -> same chip); None without seed."""
        if self.seed is None:
            return None
        g = torch.Generator(device=device)
        g.manual_seed(derive_seed(self.seed, self.name, stream))
        return g

    def dynamic(self, stream: str, device: torch.device | str = "cpu") -> torch.Generator | None:
        """The advancing generator of a per-forward stream; None without seed."""
        if self.seed is None:
            return None
        dev = torch.device(device)
        key = (stream, str(dev))
        g = self._dynamic.get(key)
        if g is None:
            g = torch.Generator(device=dev)
            g.manual_seed(derive_seed(self.seed, self.name, stream))
            self._dynamic[key] = g
        return g

    def reset(self) -> None:
        """Restart every dynamic stream from its derived seed."""
        self._dynamic.clear()

    def __getstate__(self) -> dict[str, object]:
        # Generators do not pickle, their states do: a copy or a reloaded layer continues
        # every dynamic stream where the original was (a state dict restarts them).
        states = {key: g.get_state() for key, g in self._dynamic.items()}
        return {"seed": self.seed, "name": self.name, "states": states}

    def __setstate__(self, state: dict[str, object]) -> None:
        seed = state["seed"]
        self.seed = seed if isinstance(seed, int) else None
        self.name = str(state["name"])
        self._dynamic = {}
        saved = state.get("states", {})
        assert isinstance(saved, dict)
        for (stream, device), values in saved.items():
            if device.startswith("cuda") and not torch.cuda.is_available():
                continue  # restarts from its derived seed where it is next used
            g = torch.Generator(device=device)
            g.set_state(values)
            self._dynamic[(stream, device)] = g

    def __repr__(self) -> str:
        return f"NoiseStreams(seed={self.seed}, name={self.name!r})"


@contextlib.contextmanager
def ideal() -> Iterator[None]:
    """Switch every nonideality of every physnn layer off inside the block.

    Static device state (programmed conductances, fabrication errors) is left stored but
    bypassed; dynamic noise is not drawn. Example::

        with physnn.ideal():
            y = model(x)  # equals the noiseless model
    """
    token = _IDEAL.set(True)
    try:
        yield
    finally:
        _IDEAL.reset(token)


def is_ideal() -> bool:
    """True inside a :func:`ideal` block."""
    return _IDEAL.get()
