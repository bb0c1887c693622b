"""``DistributedSampler``: one shard of the dataset per training process."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TypeVar

import rtorch
from rtorch.utils.data.dataset import Dataset
from rtorch.utils.data.sampler import Sampler

__all__ = ["DistributedSampler"]

T_co = TypeVar("T_co", covariant=True)


class DistributedSampler(Sampler[T_co]):
    r"""Yields the keys of one replica's shard: replica ``rank`` of
    ``num_replicas`` takes every ``num_replicas``-th key of a (shuffled,
    padded to a multiple of ``num_replicas``) order, so the shards are
    disjoint and equally long. Call :meth:`set_epoch` before each epoch to
    reshuffle.

    Args:
        dataset (Dataset): dataset to sample from.
        num_replicas (int): number of training processes. Required until
            rtorch has a distributed package.
        rank (int): this process's rank, in ``[0, num_replicas)``.
        shuffle (bool): shuffle the keys. Default: ``True``.
        seed (int): shuffle seed, the same in every replica. Default: ``0``.
        drop_last (bool): drop the tail instead of padding it with repeats.

    Example::

        >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
        [1, 3, 0]
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            raise RuntimeError("Requires distributed package to be available")
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)  # type: ignore[arg-type]
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[T_co]:
        n = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            g = rtorch.Generator().manual_seed(self.seed + self.epoch)
            indices = rtorch.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            else:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, which reseeds the shuffle (same in all replicas)."""
        self.epoch = epoch
