"""Gate matrices (qiskit conventions) and initial states."""

from __future__ import annotations

import torch

_PAULI = {
    "i": ((1, 0), (0, 1)),
    "x": ((0, 1), (1, 0)),
    "y": ((0, -1j), (1j, 0)),
    "z": ((1, 0), (0, -1)),
}
_FIXED: dict[str, tuple[tuple[complex, ...], ...]] = {
    "h": ((2**-0.5, 2**-0.5), (2**-0.5, -(2**-0.5))),
    "x": _PAULI["x"],
    "y": _PAULI["y"],
    "z": _PAULI["z"],
    "s": ((1, 0), (0, 1j)),
    "sdg": ((1, 0), (0, -1j)),
    "cx": ((1, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0), (0, 1, 0, 0)),
    "cz": ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, -1)),
    "swap": ((1, 0, 0, 0), (0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1)),
}
ANGLE_GATES = ("rx", "ry", "rz", "p")


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.complex64, torch.complex128):
        return dtype
    if dtype == torch.float64:
        return torch.complex128
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.complex64
    raise TypeError(f"dtype={dtype} is not a float or complex dtype; use torch.float32")


def gate_matrix(
    name: str,
    angle: torch.Tensor | float | None = None,
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Matrix of gate ``name`` (qiskit conventions), batched over ``angle``'s shape.

    Args:
        name: ``rx ry rz p`` (need ``angle``) or ``h x y z s sdg cx cz swap``.
        angle: rotation angle [rad], a float or a tensor of any shape ``S``.
        dtype: complex (or matching real) dtype of the result.
        device: device of the result when ``angle`` is not a tensor.

    Returns:
        ``[*S, 2, 2]`` for angle gates, ``[2, 2]`` or ``[4, 4]`` for fixed gates. ``RX(t) =
        exp(-i t X / 2)``, ``RY``, ``RZ`` likewise, ``P(t) = diag(1, e^{i t})``.
    """
    cdtype = _complex_dtype(dtype)
    if name in _FIXED:
        if angle is not None:
            raise ValueError(f"gate {name!r} takes no angle, got {angle!r}")
        return torch.tensor(_FIXED[name], dtype=cdtype, device=device)
    if name not in ANGLE_GATES:
        raise ValueError(
            f"unknown gate {name!r}; choose one of {', '.join((*ANGLE_GATES, *_FIXED))}"
        )
    if angle is None:
        raise ValueError(f"gate {name!r} needs an angle [rad]")
    real = torch.float64 if cdtype == torch.complex128 else torch.float32
    theta = torch.as_tensor(angle, device=device).to(real)
    zero = torch.zeros_like(theta)
    if name == "p":
        one = torch.ones_like(theta)
        re = torch.stack([one, zero, zero, torch.cos(theta)], -1)
        im = torch.stack([zero, zero, zero, torch.sin(theta)], -1)
    else:
        c, s = torch.cos(theta / 2), torch.sin(theta / 2)
        if name == "ry":
            re = torch.stack([c, -s, s, c], -1)
            im = torch.stack([zero, zero, zero, zero], -1)
        elif name == "rx":
            re = torch.stack([c, zero, zero, c], -1)
            im = torch.stack([zero, -s, -s, zero], -1)
        else:
            re = torch.stack([c, zero, zero, c], -1)
            im = torch.stack([-s, zero, zero, s], -1)
    return torch.complex(re, im).unflatten(-1, (2, 2))


def zero_state(
    batch: int,
    n_qubits: int,
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``|0...0>`` for a batch, shaped ``[batch, 2, ..., 2]`` (``n_qubits`` twos)."""
    state = torch.zeros(batch, 2**n_qubits, dtype=_complex_dtype(dtype), device=device)
    state[:, 0] = 1
    return state.view(batch, *([2] * n_qubits))
