"""ONNX models as torch modules, so a network from any framework reaches every substrate.

A model exported to ONNX (from PyTorch, TensorFlow, JAX, scikit-learn...) is imported with
`onnx2torch <https://github.com/ENOT-AutoDL/onnx2torch>`_ (the optional extra
``physnn[onnx]``) as a ``torch.fx.GraphModule`` whose ``Gemm``/``MatMul`` nodes with constant
weights are ``nn.Linear`` and whose ``Conv`` nodes are ``nn.Conv2d``; :func:`physnn.convert`
then converts it like any torch model::

    net = physnn.common.onnx.from_onnx("model.onnx")
    chip = physnn.convert(net, "pim:pcm")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["from_onnx", "is_onnx_model"]

_INSTALL = "pip install 'physnn[onnx]' (onnx and onnx2torch)"


def is_onnx_model(model: object) -> bool:
    """True for an ``onnx.ModelProto`` or a path (str or ``PathLike``) ending in ``.onnx``."""
    if isinstance(model, str | os.PathLike):
        return str(model).lower().endswith(".onnx")
    return type(model).__name__ == "ModelProto" and hasattr(model, "graph")


def from_onnx(model: str | os.PathLike[str] | Any) -> nn.Module:
    """Import an ONNX model (a ``.onnx`` path or an ``onnx.ModelProto``) as a torch module.

    Args:
        model: path to a ``.onnx`` file, or a loaded ``onnx.ModelProto``.

    Returns:
        The ``torch.fx.GraphModule`` built by onnx2torch, in eval mode.

    Raises:
        ImportError: onnx or onnx2torch is missing (with the install command).
        FileNotFoundError: the path does not exist.
        TypeError: ``model`` is neither a path nor a ``ModelProto``.
        ValueError: the graph fails onnx's checker or uses an operator onnx2torch lacks.
    """
    if not is_onnx_model(model):
        raise TypeError(
            f"from_onnx expects a '.onnx' path or an onnx.ModelProto, got "
            f"{type(model).__name__} {model!r:.60}"
        )
    if isinstance(model, str | os.PathLike) and not Path(model).is_file():
        raise FileNotFoundError(f"ONNX file {str(model)!r} does not exist")
    try:
        import onnx
        from onnx2torch import convert as onnx_to_torch
    except ImportError as err:
        raise ImportError(f"importing ONNX models needs onnx2torch: {_INSTALL} ({err})") from err
    proto = onnx.load(str(model)) if isinstance(model, str | os.PathLike) else model
    try:
        onnx.checker.check_model(proto)
        module = onnx_to_torch(proto)
    except (onnx.checker.ValidationError, NotImplementedError, KeyError) as err:
        raise ValueError(f"the ONNX graph cannot be imported: {err}") from err
    return module.eval()
