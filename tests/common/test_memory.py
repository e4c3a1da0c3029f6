"""The shared memory budget (issue 15, item 10): the allocation meter the backend guards are
checked with, the available memory, the budget of a config and the refusal message."""

from __future__ import annotations

import pytest
import torch

from physnn.common import memory
from physnn.common.memory import (
    AllocationMeter,
    MemoryBudgetError,
    MemoryConfig,
    check_budget,
    memory_limit,
)

MiB = 2**20


def test_meter_counts_new_storages_until_freed() -> None:
    with AllocationMeter() as meter:
        a = torch.empty(1000, 1000)  # 4e6 bytes of float32
        view = a[:10].t()
        a.mul_(0.0)  # in place: nothing allocated
        b = a + 1.0  # a second 4e6 bytes
        assert meter.current == 8_000_000
        del a, view
        assert meter.current == 4_000_000
        del b
    assert meter.current == 0
    assert meter.peak == 8_000_000


def test_meter_sees_what_autograd_keeps_and_ignores_older_tensors() -> None:
    x = torch.rand(1000, requires_grad=True)  # before the block: not counted
    with AllocationMeter() as meter:
        y = x.exp()  # saved for the backward pass of exp
        z = (y * 2.0).sum()
        del y
        # exp's output is alive in the graph (4000 bytes), the product was freed, z is 4
        assert meter.current == 4000 + 4
        z.backward()
        del z
    assert meter.current == 1000 * 4  # x.grad, created inside the block
    assert meter.peak >= 2 * 4000


def test_available_memory_is_positive_and_below_the_total() -> None:
    total = None
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
    free = memory.available_bytes()
    assert free > 0
    if total is not None:
        assert free <= total


def test_limit_is_explicit_or_a_fraction_of_the_available(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000 * MiB)
    assert memory_limit(64 * MiB, 0.5) == 64 * MiB
    assert memory_limit(None, 0.25) == 250 * MiB
    assert MemoryConfig(memory_fraction=0.1).budget() == 100 * MiB
    assert MemoryConfig(memory_limit=3 * MiB).budget() == 3 * MiB


def test_refusal_names_the_estimate_the_limit_and_the_fixes() -> None:
    assert check_budget(10, 10, what="x", fixes=[]) == 10
    with pytest.raises(MemoryBudgetError) as info:
        check_budget(3 * 2**30, 2**30, what="reading a crossbar", fixes=["a smaller batch"])
    message = str(info.value)
    assert message.startswith("reading a crossbar needs about 3 GiB, above the limit of 1 GiB")
    assert "a smaller batch" in message and "simulation.memory_limit" in message
    # callers that catch MemoryError or ValueError both see it
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_limit", 10),
        ("memory_limit", 2**60),
        ("memory_limit", 1.5 * MiB),
        ("memory_fraction", 0.0),
        ("memory_fraction", 1e-300),
        ("memory_fraction", 1.5),
        ("memory_fraction", float("nan")),
    ],
)
def test_config_refuses_budgets_that_cannot_run(field: str, value: float) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        MemoryConfig(**{field: value})


def test_every_backend_has_the_same_budget_fields() -> None:
    from physnn.optical.config import OpticalConfig
    from physnn.pim.config import PIMConfig
    from physnn.quantum.config import QuantumConfig

    for config in (PIMConfig(), OpticalConfig(), QuantumConfig()):
        block = config.simulation
        assert isinstance(block, MemoryConfig)
        changed = config.with_changes({"simulation.memory_limit": 64 * MiB})
        assert changed.simulation.memory_limit == 64 * MiB
        assert type(config).from_dict(changed.to_dict()) == changed


def test_quantum_names_stay_importable() -> None:
    from physnn.quantum.sim.memory import SimulationMemoryError, available_bytes

    assert issubclass(SimulationMemoryError, MemoryBudgetError)
    assert available_bytes is memory.available_bytes
