"""The ``pim`` backend object registered with physnn (loaded lazily by the registry)."""

from __future__ import annotations

import copy

from torch import nn

from ..common.backend import Backend, StressTest
from .config import PIMConfig
from .layers import PIMGRU, PIMLSTM, PIMConv1d, PIMConv2d, PIMConv3d, PIMLinear, drift
from .presets import registry

__all__ = ["BACKEND"]


def _drift_to(model: nn.Module, t: float) -> nn.Module:
    """Stress: a copy of the trained model read ``t`` seconds after programming, compensated
    per config (``model`` itself is unchanged)."""
    return drift(copy.deepcopy(model), t)


BACKEND = Backend(
    name="pim",
    config_type=PIMConfig,
    layers={
        nn.Linear: PIMLinear,
        nn.Conv1d: PIMConv1d,
        nn.Conv2d: PIMConv2d,
        nn.Conv3d: PIMConv3d,
        nn.LSTM: PIMLSTM,
        nn.GRU: PIMGRU,
    },
    presets=registry,
    notes=(
        "weights transfer onto crossbar conductances; biases, activations and recurrent "
        "gate nonlinearities stay digital; grouped/depthwise convs map to block-diagonal "
        "crossbars; LSTM proj_size unsupported"
    ),
    fine_tune_fraction=1 / 3,
    default_preset="pcm",
    stress=StressTest(
        name="drift time",
        unit="s",
        values=(1.0, 3600.0, 86400.0, 2.6e6, 3.15e7),
        apply=_drift_to,
        log_scale=True,
    ),
)
