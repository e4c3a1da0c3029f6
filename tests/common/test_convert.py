"""convert() / to_torch() and the conversion report, on the digital backend."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from physnn import convert, to_torch
from physnn.common.layer import PhysicalModule, WeightsNotTransferredWarning
from physnn.digital import DigitalConfig, DigitalLinear, presets


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 6 * 6, 16),
        nn.ReLU(),
        nn.Identity(),
        nn.Linear(16, 10),
    )


def test_converts_supported_modules_and_reports() -> None:
    m = model()
    out = convert(m, "digital:int8", input_shape=(1, 1, 8, 8))
    assert out is not m and not any(isinstance(x, PhysicalModule) for x in m.modules())
    report = out.physnn_report
    fates = {f.name: f.fate for f in report.modules}
    assert fates == {"0": "converted", "3": "converted", "6": "converted"}
    assert report.digital_mac_share == 0.0
    assert report.params_before == report.params_after
    assert not report.needs_training
    assert "digital:int8" in str(report)


def test_chooser_and_exclude_keep_modules_digital() -> None:
    m = model()

    def choose(name: str, module: nn.Module) -> DigitalConfig | None:
        return None if name == "3" else presets.get("int8")

    out = convert(m, choose, exclude=["6"], input_shape=(1, 1, 8, 8))
    fates = {f.name: f.fate for f in out.physnn_report.modules}
    assert fates == {"0": "converted", "3": "kept digital", "6": "excluded"}
    assert type(out[3]) is nn.Linear and type(out[6]) is nn.Linear
    macs = {f.name: f.macs for f in out.physnn_report.modules}
    share = (macs["3"] + macs["6"]) / sum(macs.values())
    assert out.physnn_report.digital_mac_share == pytest.approx(share)


def test_exclude_by_type_and_inplace() -> None:
    m = model()
    out = convert(m, presets.get("fp32"), exclude=[nn.Conv2d], inplace=True)
    assert out is m
    assert type(m[0]) is nn.Conv2d and isinstance(m[3], DigitalLinear)
    assert out.physnn_report.digital_mac_share is None


def test_unsupported_modules_stay_digital_or_raise_when_strict() -> None:
    m = nn.Sequential(nn.LSTM(4, 3))
    out = convert(m, "digital")
    assert out.physnn_report.modules[0].fate == "unsupported"
    with pytest.raises(TypeError, match="backend 'digital' has no layer for LSTM"):
        convert(m, "digital", strict=True)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"nn\.Module"):
        convert("model", "digital")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown backend 'photonic'; valid backends: digital"):
        convert(model(), "photonic")
    with pytest.raises(ValueError, match="unknown digital preset 'int4'; choose one of int8"):
        convert(model(), "digital:int4")
    with pytest.raises(TypeError, match="callable"):
        convert(model(), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single layer"):
        convert(nn.Linear(2, 2), "digital")
    with pytest.raises(TypeError, match="chooser returned str"):
        convert(model(), lambda n, m: "digital")  # type: ignore[arg-type, return-value]


def test_to_torch_round_trip_restores_plain_modules() -> None:
    m = model()
    x = torch.rand(3, 1, 8, 8)
    out = convert(m, "digital:fp32")
    back = to_torch(out)
    assert [type(a) for a in back.modules()] == [type(a) for a in m.modules()]
    torch.testing.assert_close(back(x), m(x))
    assert not hasattr(back, "physnn_report")


def test_no_warning_when_weights_transfer() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(model(), "digital")


def test_report_separates_classical_parameters() -> None:
    mlp = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
    pim = convert(mlp, "pim:ideal")
    # PIM computes weights on crossbars and adds biases digitally.
    assert pim.physnn_report.classical_params == 4 + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsNotTransferredWarning)
        quantum = convert(mlp, "quantum:ideal")
    for fate, layer in zip(quantum.physnn_report.modules, (quantum[0], quantum[2]), strict=True):
        counts = layer.parameter_counts()
        assert fate.classical_params == counts["classical"] > 0
        assert fate.params_after == sum(counts.values())
    assert "classical" in str(quantum.physnn_report)
