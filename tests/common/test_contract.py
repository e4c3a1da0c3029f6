"""The layer contract of issue 10: a plugin backend's own module types convert, converting
twice reconfigures, ``reconfigure``/``load_state_dict`` choices, convert edge cases that must
never be reported as work done (shared, tied, subclassed, attention, Conv3d)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

import physnn
from physnn.common import backend as backend_registry
from physnn.common.backend import Backend, PresetRegistry, register_backend
from physnn.common.config import BackendConfig, check_range
from physnn.common.cost import Cost, count_macs
from physnn.common.layer import (
    ConfigRestoredWarning,
    PhysicalModule,
    WeightsMode,
)
from physnn.digital import DigitalLinear, presets


@dataclasses.dataclass(frozen=True, kw_only=True)
class GainConfig(BackendConfig):
    """A toy substrate that multiplies a Conv3d's output by ``gain``."""

    backend: ClassVar[str] = "toy-conv3d"
    gain: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("GainConfig", "gain", self.gain, 0.0, 10.0)

    def ideal(self) -> GainConfig:
        return self.replace(gain=1.0)


class GainConv3d(PhysicalModule[GainConfig], nn.Conv3d):
    config_type = GainConfig
    transfers_weights = True

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: GainConfig | None = None, *, name: str = ""
    ) -> GainConv3d:
        cls.check_module(module, nn.Conv3d, exact=True)
        assert isinstance(module, nn.Conv3d)
        layer = cls(module.in_channels, module.out_channels, module.kernel_size)
        layer._init_physical(config, name)
        with torch.no_grad():
            layer.weight.copy_(module.weight)
            assert layer.bias is not None and module.bias is not None
            layer.bias.copy_(module.bias)
        return layer

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        self.check_weights_mode(weights)
        out = nn.Conv3d(self.in_channels, self.out_channels, self.kernel_size)
        out.load_state_dict({k: v for k, v in self.state_dict().items() if "extra" not in k})
        return out

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        return Cost(macs=count_macs(self, input_shape))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(nn.Conv3d.forward(self, torch.zeros(input_shape, device="meta")).shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.config.gain * nn.Conv3d.forward(self, x)


@pytest.fixture
def toy_backend() -> Any:
    reg = PresetRegistry("toy-conv3d")
    reg.register("unit", GainConfig(), "test fixture")
    reg.register("double", GainConfig(gain=2.0), "test fixture")
    backend = Backend(
        name="toy-conv3d",
        config_type=GainConfig,
        layers={nn.Conv3d: GainConv3d},
        presets=reg,
        default_preset="unit",
    )
    register_backend(backend)
    yield backend
    del backend_registry._LOADED["toy-conv3d"]


def conv3d_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8, 3))


def test_plugin_backend_converts_its_own_module_type_and_reports_it(toy_backend: Any) -> None:
    model = conv3d_model()
    x = torch.randn(2, 1, 4, 4, 4)
    out = physnn.convert(model, "toy-conv3d:double", input_shape=(1, 1, 4, 4, 4))
    fates = {f.name: (f.fate, f.before, f.after) for f in out.physnn_report.modules}
    assert fates["0"] == ("converted", "Conv3d", "GainConv3d")
    assert fates["3"][0] == "unsupported"  # the toy backend has no Linear layer
    # Conv3d MACs by hand: 2 maps x 2^3 outputs x 27 taps.
    macs = {f.name: f.macs for f in out.physnn_report.modules}
    assert macs["0"] == 2 * 8 * 27
    assert macs["3"] == 16 * 3
    conv = model[0]
    want = model[3](torch.flatten(torch.relu(2.0 * conv(x)), 1))
    torch.testing.assert_close(out(x), want)


def test_conv3d_without_a_backend_layer_is_visible_and_strict_raises() -> None:
    model = conv3d_model()
    out = physnn.convert(model, "digital:fp32", input_shape=(1, 1, 4, 4, 4))
    row = next(f for f in out.physnn_report.modules if f.name == "0")
    assert row.fate == "unsupported" and "Conv3d" in row.reason
    with pytest.raises(TypeError, match="no layer for Conv3d"):
        physnn.convert(model, "digital:fp32", strict=True)
    assert physnn.cost(model, (1, 1, 4, 4, 4)).macs == 2 * 8 * 27 + 16 * 3


def test_convert_twice_reconfigures_and_foreign_backend_raises() -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    first = physnn.convert(model, "digital:int8")
    again = physnn.convert(first, "digital:fp32")
    assert again[0].config.preset == "fp32"
    assert again.physnn_report.modules[0].fate == "reconfigured"
    with pytest.raises(TypeError, match="already a DigitalLinear"):
        physnn.convert(first, "pim:ideal")


def test_config_is_read_only_and_reconfigure_changes_outputs() -> None:
    torch.manual_seed(0)
    model = physnn.convert(nn.Sequential(nn.Linear(16, 8)), "digital:fp32")
    with pytest.raises(AttributeError, match="reconfigure"):
        model[0].config = presets.get("int8")
    x = torch.randn(5, 16)
    ref = model(x)
    low = physnn.reconfigure(model, bits=3)
    assert model[0].config.bits == 32  # a copy by default
    assert low[0].config.bits == 3
    # Three-bit integers by hand: per-sample activation scale, one weight scale.
    w = model[0].weight.detach()
    sw = w.abs().max() / 3
    sx = x.abs().amax(1, keepdim=True) / 3
    want = (torch.round(x / sx) * sx) @ (torch.round(w / sw) * sw).T + model[0].bias
    torch.testing.assert_close(low(x), want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(low(x), ref)
    with pytest.raises(TypeError, match="no field"):
        physnn.reconfigure(model, adc_bits=4)
    with pytest.raises(ValueError, match="convert"):
        physnn.reconfigure(model, "pim:pcm")
    with pytest.raises(ValueError, match="holds no physnn layer"):
        physnn.reconfigure(nn.Sequential(nn.Linear(2, 2)), bits=4)


def test_load_state_dict_choice_between_saved_and_current_config() -> None:
    src = physnn.convert(nn.Sequential(nn.Linear(4, 3)), "digital:int8")
    dst = physnn.convert(nn.Sequential(nn.Linear(4, 3)), "digital:fp32")
    state = src.state_dict()
    with pytest.warns(ConfigRestoredWarning, match="config='current'"):
        dst.load_state_dict(state)
    assert dst[0].config.preset == "int8"
    dst = physnn.reconfigure(dst, "digital:fp32")
    physnn.load_state_dict(dst, state, config="current")
    assert dst[0].config.preset == "fp32"
    torch.testing.assert_close(dst[0].weight, src[0].weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        physnn.load_state_dict(dst, state, config="saved")
    assert dst[0].config.preset == "int8"
    with pytest.raises(ValueError, match="'saved', 'current'"):
        physnn.load_state_dict(dst, state, config="mine")  # type: ignore[arg-type]


def test_to_torch_weights_modes() -> None:
    model = physnn.convert(nn.Sequential(nn.Linear(4, 3)), "digital:int8")
    plain = physnn.to_torch(model, weights="effective")
    assert type(plain[0]) is nn.Linear
    with pytest.raises(ValueError, match="weights='bogus'"):
        physnn.to_torch(model, weights="bogus")  # type: ignore[arg-type]


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = self.a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_a_module_under_two_names_is_converted_once_and_stays_shared() -> None:
    out = physnn.convert(Shared(), "digital:fp32")
    assert out.a is out.b and isinstance(out.a, DigitalLinear)
    rows = out.physnn_report.modules
    assert [(f.name, f.fate) for f in rows] == [("a", "converted"), ("b", "converted")]
    assert "same module as 'a'" in rows[1].reason
    assert out.physnn_report.params_after == 4 * 4 + 4


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(4, 4, bias=False)
        self.dec = nn.Linear(4, 4, bias=False)
        self.dec.weight = self.enc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def test_tied_weights_are_not_silently_untied() -> None:
    out = physnn.convert(Tied(), "digital:fp32")
    assert out.enc.weight is out.dec.weight
    fates = {f.name: f for f in out.physnn_report.modules}
    assert fates["enc"].fate == fates["dec"].fate == "unsupported"
    assert "tied" in fates["enc"].reason
    assert out.physnn_report.digital_mac_share is None


class Scaled(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def test_linear_subclass_with_its_own_forward_stays_digital() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(Scaled(4, 3))
    out = physnn.convert(model, "digital:fp32")
    assert type(out[0]) is Scaled
    row = out.physnn_report.modules[0]
    assert row.fate == "unsupported" and "own forward" in row.reason
    x = torch.randn(2, 4)
    torch.testing.assert_close(out(x), model(x))


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def test_attention_is_reported_digital_not_half_converted() -> None:
    out = physnn.convert(SelfAttention(), "digital:fp32", input_shape=(1, 5, 8))
    assert type(out.attn.out_proj) is not DigitalLinear
    row = out.physnn_report.modules[0]
    assert row.fate == "unsupported" and row.name == "attn"
    # q, k, v and output projections (4 x 5 x 8 x 8) plus scores and values (2 x 5 x 5 x 8).
    assert row.macs == 4 * 5 * 8 * 8 + 2 * 5 * 5 * 8


def test_failed_load_state_dict_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    model = physnn.convert(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), "digital:int8")
    other = physnn.convert(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5)), "digital:fp32")
    x = torch.randn(3, 4)
    before = model(x)
    with pytest.raises(RuntimeError, match="size mismatch"):
        physnn.load_state_dict(model, other.state_dict(), config="saved")
    assert [m.config.preset for m in model] == ["int8", "int8"]
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)


def test_report_states_the_fit_error_of_a_fitted_layer() -> None:
    from physnn.optical import OpticalLinear
    from physnn.optical import presets as optical

    torch.manual_seed(0)
    linear = nn.Linear(3, 2)
    fitted = OpticalLinear.from_torch(linear, optical.get("ideal", seed=0), fit=True, steps=5)
    assert fitted.fit_error is not None
    model = nn.Sequential(fitted)
    out = physnn.convert(model, "optical:ideal")
    row = out.physnn_report.modules[0]
    assert row.fit_error == fitted.fit_error
    assert f"fitted ({fitted.fit_error:.3g})" in str(out.physnn_report)


def _trained_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def _eval(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(1)
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize(
    ("spec", "change", "what"),
    [
        ("pim:ideal", "pim:pcm", "PIM ideal -> pcm"),
        ("optical:ideal", {"fabrication.phase_levels": 4}, "optical 256 -> 4 phase levels"),
        ("quantum:ideal", {"measurement.shots": 64}, "quantum exact -> 64 shots"),
    ],
)
def test_reconfigure_retargets_a_converted_model_and_changes_its_outputs(
    spec: str, change: Any, what: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", physnn.common.layer.WeightsNotTransferredWarning)
        model = physnn.convert(_trained_mlp(), physnn.common.backend.resolve_config(spec))
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(2))
    before = _eval(model, x)
    moved = physnn.reconfigure(model, change)
    after = _eval(moved, x)
    torch.testing.assert_close(_eval(model, x), before, rtol=0, atol=0)  # a copy by default
    assert torch.isfinite(after).all()
    assert not torch.allclose(after, before, rtol=1e-4, atol=1e-5), f"{what}: no change"
    old = [m.config for m in model.modules() if isinstance(m, PhysicalModule)]
    new = [m.config for m in moved.modules() if isinstance(m, PhysicalModule)]
    assert len(new) >= 2 and all(a != b for a, b in zip(old, new, strict=True))


def test_digital_mac_share_counts_classical_work_inside_converted_layers() -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", physnn.common.layer.WeightsNotTransferredWarning)
        out = physnn.convert(mlp, "quantum:ideal", input_shape=(1, 64))
    rows = out.physnn_report.converted
    # By hand for the dressed default on 8 qubits: pre (in x 8) + post (8 x out) + 2 x out
    # for the per-output scale and bias.
    want = [64 * 8 + 8 * 32 + 2 * 32, 32 * 8 + 8 * 10 + 2 * 10]
    assert [r.classical_macs for r in rows] == want
    total = 64 * 32 + 32 * 10
    assert out.physnn_report.digital_mac_share == pytest.approx(min(1.0, sum(want) / total))
    pim = physnn.convert(mlp, "pim:ideal", input_shape=(1, 64))
    assert pim.physnn_report.digital_mac_share == 0.0
