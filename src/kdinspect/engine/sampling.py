"""A resumable, shardable epoch batch sampler."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochBatchSampler"]


class EpochBatchSampler(Sampler[list[int]]):
    """Yields index batches for one epoch; the order is a pure function of ``(seed, epoch)``.

    With ``world_size > 1`` the permutation is padded (by repeating its head, as ``DistributedSampler`` does) to a
    multiple of ``world_size`` and rank ``r`` takes every ``world_size``-th index starting at ``r``, so the union of the
    ranks' i-th batches equals the i-th batch of a single process with ``batch_size * world_size``.

    ``set_epoch(epoch, start_batch)`` skips the first ``start_batch`` batches, for resuming mid-epoch.

    Args:
        num_samples: dataset length.
        batch_size: per-process batch size.
        shuffle: permute indices each epoch.
        seed: base seed of the permutation.
        rank: this process's rank.
        world_size: number of processes.
        drop_last: drop the final incomplete batch.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if num_samples <= 0:
            raise ValueError(f"cannot sample from an empty dataset (num_samples={num_samples})")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = list(range(self.num_samples))
        pad = (-len(order)) % self.world_size
        order += order[:pad]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        idx = self._indices()
        batches = [idx[i : i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        yield from batches[self.start_batch :]

    def __len__(self) -> int:
        per_rank = -(-self.num_samples // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)
