"""ONNX input: a graph built with onnx.helper (nothing downloaded) reaches physnn.convert."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from physnn.common.onnx import from_onnx, is_onnx_model


def _graph(rng: np.random.Generator) -> tuple[object, list[np.ndarray]]:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w1 = rng.normal(size=(16, 64)).astype(np.float32) * 0.2
    b1 = rng.normal(size=16).astype(np.float32) * 0.1
    w2 = rng.normal(size=(10, 16)).astype(np.float32) * 0.2
    b2 = rng.normal(size=10).astype(np.float32) * 0.1
    inits = [numpy_helper.from_array(a, n) for a, n in zip((w1, b1, w2, b2), "ABCD", strict=True)]
    nodes = [
        helper.make_node("Gemm", ["x", "A", "B"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "C", "D"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model, [w1, b1, w2, b2]


def test_is_onnx_model() -> None:
    assert is_onnx_model("net.onnx") and is_onnx_model(Path("a/NET.ONNX"))
    assert not is_onnx_model("net.pt") and not is_onnx_model(torch.nn.Linear(2, 2))


def test_bad_inputs_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match=r"expects a '\.onnx' path"):
        from_onnx(torch.nn.Linear(2, 2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        from_onnx(tmp_path / "missing.onnx")
    (tmp_path / "m.onnx").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "onnx2torch", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'physnn\[onnx\]'"):
        from_onnx(tmp_path / "m.onnx")


def test_onnx_graph_converts_to_every_weight_transferring_backend(tmp_path: Path) -> None:
    pytest.importorskip("onnx2torch")
    import onnx

    import physnn

    rng = np.random.default_rng(0)
    model, (w1, b1, w2, b2) = _graph(rng)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, str(path))
    x = rng.random((5, 64)).astype(np.float32)
    reference = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2  # the graph, evaluated by hand
    for source in (model, path):
        net = from_onnx(source)
        torch.testing.assert_close(net(torch.from_numpy(x)), torch.from_numpy(reference))
        chip = physnn.convert(net, "pim:ideal", input_shape=(1, 64))
        assert chip.physnn_report.digital_mac_share == 0
        direct = physnn.convert(source, "pim:ideal", input_shape=(1, 64))
        assert direct.physnn_report.digital_mac_share == 0
        with physnn.ideal():
            out = chip(torch.from_numpy(x))
        torch.testing.assert_close(out, torch.from_numpy(reference), rtol=1e-4, atol=1e-4)
