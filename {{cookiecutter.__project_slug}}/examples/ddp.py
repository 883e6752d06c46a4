"""Distributed data-parallel training on CPU: every rank logs to its own files.

    python -m pip install -e . torch
    torchrun --nproc_per_node=4 examples/ddp.py

or with uv: uv run --with torch torchrun --nproc_per_node=4 examples/ddp.py

Rank 0 writes info.log and error.log and the console; rank N writes
info.rankN.log and error.rankN.log and shows only warnings on the console.
Records from each rank's DataLoader workers reach that rank's files.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from {{ cookiecutter.package_name }} import config

logger = logging.getLogger(__name__)


def start_data_worker(send_logs: Callable[..., None], worker_id: int) -> None:
    send_logs()
    logger.info("data worker %d started", worker_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = parser.parse_args()

    config.setup_logging()
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    logger.info("rank %d of %d joined the process group", rank, world_size)
    if not torch.cuda.is_available():
        logger.warning("rank %d trains on CPU: no GPU found", rank)

    torch.manual_seed(0)
    x = torch.rand(512, 1) * 2 - 1
    data = TensorDataset(x, 3 * x + 2)
    sampler: DistributedSampler[tuple[torch.Tensor, ...]] = DistributedSampler(
        data, num_replicas=world_size, rank=rank
    )
    loader = DataLoader(
        data,
        batch_size=32,
        sampler=sampler,
        num_workers=args.workers,
        worker_init_fn=functools.partial(start_data_worker, config.worker_logging()),
    )
    model = DistributedDataParallel(torch.nn.Linear(1, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            torch.autograd.backward(loss)
            optimizer.step()
        logger.info("epoch %d/%d loss=%.4f", epoch, args.epochs, loss.item())
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
