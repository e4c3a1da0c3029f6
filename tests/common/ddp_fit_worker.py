"""Worker for ``test_train.py``: ``fit`` on a converted PIM model, under torchrun or alone.

Run as ``torchrun --standalone --nproc_per_node=2 ddp_fit_worker.py OUT`` (DDP with gloo) or
as ``python ddp_fit_worker.py OUT`` (one process); writes ``OUT/rank<r>.pt`` with the trained
parameters.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from physnn import convert
from physnn.common.data import load_digits
from physnn.common.train import fit


def main(out: Path) -> None:
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    torch.set_num_threads(1)
    x, y, _, _ = load_digits().subset(256, 10).flat()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    chip = convert(net, "pim:ideal")
    model: nn.Module = DistributedDataParallel(chip) if distributed else chip
    fit(model, (x, y), epochs=2, lr=1e-2, batch_size=32, seed=0, progress=False)
    rank = dist.get_rank() if distributed else 0
    tensors = {k: v.detach().clone() for k, v in chip.state_dict().items() if torch.is_tensor(v)}
    torch.save(tensors, out / f"rank{rank}.pt")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
