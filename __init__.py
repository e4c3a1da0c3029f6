"""physnn: one neural network on processing-in-memory, diffractive optical and quantum hardware.

The top-level names are re-exported lazily (PEP 562), so ``import physnn`` imports only
torch-free metadata; each backend is imported the first time it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "convert": "physnn.common.convert",
    "to_torch": "physnn.common.convert",
    "reconfigure": "physnn.common.convert",
    "load_state_dict": "physnn.common.layer",
    "ConversionReport": "physnn.common.convert",
    "cost": "physnn.common.cost",
    "Cost": "physnn.common.cost",
    "CostTracker": "physnn.common.cost",
    "ideal": "physnn.common.rng",
    "get_backend": "physnn.common.backend",
    "available_backends": "physnn.common.backend",
    "compare": "physnn.study.compare",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .common.backend import available_backends as available_backends
    from .common.backend import get_backend as get_backend
    from .common.convert import ConversionReport as ConversionReport
    from .common.convert import convert as convert
    from .common.convert import reconfigure as reconfigure
    from .common.convert import to_torch as to_torch
    from .common.cost import Cost as Cost
    from .common.cost import CostTracker as CostTracker
    from .common.cost import cost as cost
    from .common.layer import load_state_dict as load_state_dict
    from .common.rng import ideal as ideal
    from .study.compare import compare as compare


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'physnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
