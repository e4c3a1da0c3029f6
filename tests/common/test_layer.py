"""The shared argument checks of every backend's ``from_torch``."""

from __future__ import annotations

import pytest
from torch import nn

from physnn.common.backend import get_backend
from physnn.digital import presets as digital_presets

BACKENDS = ["digital", "pim", "optical", "quantum"]


@pytest.mark.parametrize("name", BACKENDS)
def test_from_torch_rejects_wrong_module_and_foreign_config(name: str) -> None:
    backend = get_backend(name)
    layer_type = backend.layers[nn.Linear]
    with pytest.raises(TypeError, match=rf"{layer_type.__name__}\.from_torch needs an nn\.Linear"):
        layer_type.from_torch(nn.Conv1d(2, 2, 1), backend.presets.get(backend.default_preset))
    foreign = (
        get_backend("pim").presets.get("pcm") if name == "digital" else digital_presets.get("int8")
    )
    want = backend.config_type.__name__
    with pytest.raises(TypeError, match=rf"needs a {want}, got {type(foreign).__name__}"):
        layer_type.from_torch(nn.Linear(2, 2), foreign)
