"""The crossbar memory guard (issue 15, item 10): a read or a programming step above the
budget is refused before it allocates, with the estimate and a fix that works; the estimate
is an upper bound of the real peak (measured with an allocation meter) within 4x."""

from __future__ import annotations

import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from physnn.common import memory
from physnn.common.memory import AllocationMeter, MemoryBudgetError
from physnn.pim import presets
from physnn.pim.config import PIMConfig
from physnn.pim.layers import PIMConv2d, PIMLinear
from physnn.pim.memory import program_bytes, read_bytes

MiB = 2**20


def _bit_serial_sliced() -> PIMConfig:
    """Every expansion of a read at once: 8 bit planes, 7 weight slices, 3 row tiles."""
    return presets.get("neurosim-rram")


def test_read_above_the_budget_is_refused_before_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = PIMLinear(300, 200, config=_bit_serial_sliced().replace(seed=0)).eval()
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 128 * MiB)
    x = torch.rand(512, 300)
    with AllocationMeter() as meter, torch.no_grad(), pytest.raises(MemoryBudgetError) as info:
        layer(x)
    # nothing of the read was allocated: not even one [planes, slices, tiles, N, out] tensor
    one_partial_sum = 8 * 7 * 3 * 512 * 200 * 4
    assert meter.peak < one_partial_sum / 100
    message = str(info.value)
    assert "reading a 300x200 crossbar (pim:neurosim-rram) with 512 input vectors" in message
    assert "needs about" in message and "above the limit of 0.0625 GiB" in message
    assert "dac.bit_serial=False" in message and "mapping.slices" in message
    largest = int(message.split("a batch of at most ")[1].split()[0])
    assert 1 <= largest < 512
    with torch.no_grad():  # the suggested batch fits the same budget
        assert layer(x[:largest]).shape == (largest, 200)


def test_programming_above_the_budget_is_refused_before_the_ir_drop_solve() -> None:
    base = presets.get("pcm")
    fast = base.replace(circuit=base.circuit.replace(ir_drop="fast"), seed=0)
    with AllocationMeter() as built:
        PIMLinear(256, 256, config=fast)
    small = fast.with_changes({"simulation.memory_limit": 2 * MiB})
    with AllocationMeter() as refused, pytest.raises(MemoryBudgetError) as info:
        PIMLinear(256, 256, config=small)
    message = str(info.value)
    assert "programming a 256x256 crossbar" in message and "limit of 0.00195 GiB" in message
    assert 'circuit.ir_drop="none"' in message
    # refused after the chip's buffers exist, before programming's working memory
    assert refused.peak < built.peak / 2


def _measured(layer: torch.nn.Module, x: torch.Tensor, *, grad: bool) -> int:
    with AllocationMeter() as meter:
        if grad:
            layer(x).square().sum().backward()
        else:
            with torch.no_grad():
                layer(x)
    return meter.peak


@pytest.mark.parametrize(
    ("preset", "train", "grad"),
    [
        ("neurosim-rram", False, False),  # bit planes, slices, row tiles
        ("pcm", False, False),  # read noise, ADC, output noise
        ("hermes", False, True),  # a chip read recorded for the input gradient
        ("pcm", True, True),  # hardware-aware training, forward and backward
    ],
)
def test_read_estimate_bounds_the_real_peak(preset: str, train: bool, grad: bool) -> None:
    layer = PIMLinear(300, 200, config=presets.get(preset).replace(seed=0)).train(train)
    x = torch.rand(256, 300, requires_grad=grad)
    layer(x.detach())  # programmed at the first read (not part of what is measured)
    peak = _measured(layer, x, grad=grad)
    estimate = read_bytes(layer.config, n_in=300, n_out=200, batch=256, chip=not train, grad=grad)
    assert peak <= estimate <= 4 * peak, (estimate, peak)


def test_convolution_reads_every_position() -> None:
    """A convolution reads ``batch x positions`` vectors of ``channels x kernel`` inputs."""
    layer = PIMConv2d(4, 16, 3, config=presets.get("pcm").replace(seed=0)).eval()
    x = torch.rand(8, 4, 12, 12)
    layer(x)
    positions = 8 * 10 * 10
    peak = _measured(layer, x, grad=False)
    estimate = read_bytes(
        layer.config, n_in=4 * 9, n_out=16, batch=positions, chip=True, grad=False
    )
    # the unfolded patches (one plain input) are made by the layer before the tile reads
    patches = positions * 4 * 9 * 4
    assert peak - patches <= estimate <= 4 * peak, (estimate, peak)


def test_programming_estimate_bounds_the_real_peak() -> None:
    """Torch tensors and the numpy arrays of the fast IR-drop model, measured apart (their
    sum bounds the joint peak). Measured in a new thread: the IR-drop model keeps its scratch
    arrays per thread, so a new thread allocates them as a process's first programming does
    (this thread may already hold them from building the layer)."""
    base = presets.get("pcm")
    config = base.replace(circuit=base.circuit.replace(ir_drop="fast"), seed=0)
    layer = PIMLinear(200, 100, config=config)

    def measure() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracemalloc.start()
            try:
                with AllocationMeter() as meter:
                    layer.tile.program(layer.weight.detach() * 0.5)
                numpy_peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        return meter.peak + numpy_peak

    with ThreadPoolExecutor(1) as pool:
        peak = pool.submit(measure).result()
    estimate = program_bytes(config, n_in=200, n_out=100, dtype=torch.float32)
    assert peak <= estimate <= 4 * peak, (estimate, peak)
