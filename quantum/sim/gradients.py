"""Hardware gradients: the parameter-shift rule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def parameter_shift(
    fn: Callable[[torch.Tensor], torch.Tensor], weights: torch.Tensor, *, shift: float = math.pi / 2
) -> torch.Tensor:
    """Jacobian of ``fn`` with respect to ``weights`` by the parameter-shift rule.

    ``d f / d w_k = [f(w + s e_k) - f(w - s e_k)] / (2 sin s)``, exact for circuits in which
    every weight is the angle of one gate ``exp(-i w P / 2)`` with a Pauli ``P`` (Mitarai et
    al., PRA 98, 032309 (2018); Schuld et al., PRA 99, 032331 (2019)): what hardware runs.

    Returns:
        ``[*fn(weights).shape, n_weights]``.
    """
    if not 0 < abs(shift) < math.pi:
        raise ValueError(f"shift={shift!r} must be in (0, pi) in magnitude, e.g. pi/2")
    cols = []
    with torch.no_grad():
        for k in range(weights.numel()):
            step = torch.zeros_like(weights).flatten()
            step[k] = shift
            step = step.view_as(weights)
            cols.append((fn(weights + step) - fn(weights - step)) / (2 * math.sin(shift)))
    return torch.stack(cols, -1)
