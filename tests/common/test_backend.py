"""Backend registry, presets and capabilities."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from physnn import convert
from physnn.common import backend as backend_registry
from physnn.common.backend import (
    Backend,
    PresetRegistry,
    available_backends,
    get_backend,
    register_backend,
    resolve_config,
)
from physnn.common.layer import WeightsNotTransferredWarning
from physnn.digital import DigitalConfig, DigitalLinear, presets


def test_builtins_are_listed_and_resolved() -> None:
    assert {"digital", "pim", "optical", "quantum"} <= set(available_backends())
    assert get_backend("digital").name == "digital"
    assert get_backend(presets.get("int8")) is get_backend("digital")
    assert resolve_config("digital:fp32").bits == 32
    assert resolve_config("digital").preset == "int8"


def test_unknown_names_list_choices() -> None:
    with pytest.raises(ValueError, match="valid backends: digital, pim, optical, quantum"):
        get_backend("photonic")
    with pytest.raises(TypeError):
        get_backend(42)  # type: ignore[arg-type]


def test_preset_registry() -> None:
    reg = PresetRegistry("toy")
    cfg = reg.register("a", DigitalConfig(bits=4), "somebody 2020")
    assert cfg.preset == "a" and reg.get("a").bits == 4
    assert reg.get("a", seed=3).seed == 3
    assert reg.names() == ["a"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", DigitalConfig(), "x")
    with pytest.raises(ValueError, match="citation"):
        reg.register("b", DigitalConfig(), "")
    with pytest.raises(ValueError, match="unknown toy preset 'c'; choose one of a"):
        reg.get("c")


def test_register_third_party_backend() -> None:
    backend = Backend(
        name="toy-digital",
        config_type=DigitalConfig,
        layers={nn.Linear: DigitalLinear},
        presets=presets.registry,
        default_preset="int8",
    )
    caps = backend.capabilities
    assert caps.module_types == (nn.Linear,)
    assert caps.transfers_weights
    assert caps.fine_tune_fraction == 0.0
    register_backend(backend)
    assert get_backend("toy-digital") is backend
    del backend_registry._LOADED["toy-digital"]
    assert backend.layer_for(nn.Linear(2, 2)) is DigitalLinear
    assert backend.layer_for(nn.ReLU()) is None
    with pytest.raises(TypeError):
        register_backend("toy")  # type: ignore[arg-type]


def test_import_is_lazy_and_backends_do_not_import_qiskit() -> None:
    # ``import physnn`` must cost nothing beyond Python: it imports no subpackage, no torch,
    # no scipy/sklearn/qiskit (measured import time: see benchmarks/import_time.py).
    code = (
        "import sys; import physnn; "
        "print(sorted(m for m in sys.modules if m.startswith(('physnn.', 'torch', 'scipy', "
        "'sklearn', 'qiskit')))); import physnn.pim, physnn.optical; "
        "print('qiskit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    assert first == "[]"
    assert second == "False"


def test_entry_point_backends_are_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from physnn.common import backend as backend_module

    point = metadata.EntryPoint(
        name="plugin", value="physnn.digital.backend:BACKEND", group="physnn.backends"
    )

    def entry_points(group: str) -> list[metadata.EntryPoint]:
        return [point] if group == "physnn.backends" else []

    monkeypatch.setattr(backend_module.metadata, "entry_points", entry_points)
    monkeypatch.setattr(backend_module, "_ENTRY_POINTS_SCANNED", False)
    monkeypatch.setattr(backend_module, "_BUILTIN", dict(backend_module._BUILTIN))
    monkeypatch.setattr(backend_module, "_LOADED", dict(backend_module._LOADED))
    assert "plugin" in available_backends()
    assert get_backend("plugin").name == "digital"
    bad = metadata.EntryPoint(name="bad", value="physnn.digital.backend:registry", group="x")
    monkeypatch.setattr(backend_module, "_BUILTIN", {"bad": bad.value})
    with pytest.raises(TypeError, match="not a physnn Backend"):
        get_backend("bad")


@pytest.mark.parametrize("name", ["digital", "pim", "optical", "quantum"])
def test_stress_apply_returns_a_copy_and_leaves_the_model_unchanged(name: str) -> None:
    backend = get_backend(name)
    assert backend.stress is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsNotTransferredWarning)
        model = convert(nn.Sequential(nn.Linear(4, 3)), resolve_config(name).replace(seed=1))
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    configs = [m.config for m in model.modules() if hasattr(m, "config")]
    stressed = backend.stress.apply(model, backend.stress.values[-1])
    assert stressed is not model
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert configs == [m.config for m in model.modules() if hasattr(m, "config")]
