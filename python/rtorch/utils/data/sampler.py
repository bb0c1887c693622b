"""Samplers: the order in which the DataLoader visits dataset keys."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import rtorch
from rtorch import Generator, Tensor

__all__ = [
    "BatchSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
]

T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    r"""Base class of samplers: ``__iter__`` yields dataset keys (or lists of
    keys, for batch samplers); ``__len__`` is optional."""

    def __init__(self, data_source: Sized | None = None) -> None:
        del data_source  # accepted for compatibility, as in PyTorch

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


def _fresh_generator() -> Generator:
    # A generator seeded from the global one, so each epoch differs and
    # rtorch.manual_seed makes the order reproducible.
    seed = int(rtorch.empty((), dtype=rtorch.int64).random_().item())
    return rtorch.Generator().manual_seed(seed)


def _check_num_samples(num_samples: Any) -> None:
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
        raise ValueError(
            f"num_samples should be a positive integer value, but got num_samples={num_samples}"
        )


def _check_replacement(replacement: Any) -> None:
    if not isinstance(replacement, bool):
        raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")


class SequentialSampler(Sampler[int]):
    r"""Yields ``0, 1, ..., len(data_source) - 1``.

    Args:
        data_source (Dataset): dataset to sample from.

    Example::

        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    r"""Yields keys in random order: a permutation without replacement, or
    ``num_samples`` draws with replacement.

    Args:
        data_source (Dataset): dataset to sample from.
        replacement (bool): draw with replacement. Default: ``False``.
        num_samples (int): number of keys; defaults to ``len(dataset)``.
        generator (Generator): generator of the draws.

    Example::

        >>> g = rtorch.Generator().manual_seed(0)
        >>> sorted(RandomSampler(range(4), generator=g))
        [0, 1, 2, 3]
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        _check_replacement(replacement)
        _check_num_samples(self.num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        g = self.generator if self.generator is not None else _fresh_generator()
        if self.replacement:
            draws = rtorch.randint(n, (self.num_samples,), generator=g)
            yield from draws.tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rtorch.randperm(n, generator=g).tolist()
        yield from rtorch.randperm(n, generator=g).tolist()[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    r"""Yields the given ``indices`` in random order, without replacement.

    Args:
        indices (sequence): indices to sample from.
        generator (Generator): generator of the permutation.
    """

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in rtorch.randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


def _multinomial(
    weights: Tensor, n: int, replacement: bool, generator: Generator | None
) -> list[int]:
    w = weights.tolist()
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    total = sum(w)
    if total <= 0:
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    u = rtorch.rand(n if replacement else len(w), dtype=rtorch.float64, generator=generator)
    if replacement:
        cum = list(itertools.accumulate(w))
        return [min(bisect.bisect_right(cum, x * total), len(w) - 1) for x in u.tolist()]
    if n > sum(1 for x in w if x > 0):
        raise RuntimeError(
            "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
        )
    # Efraimidis-Spirakis: the n largest log(u) / w are a weighted draw
    # without replacement.
    keys = [math.log(x) / wi if wi > 0 else -math.inf for x, wi in zip(u.tolist(), w, strict=True)]
    return sorted(range(len(w)), key=keys.__getitem__, reverse=True)[:n]


class WeightedRandomSampler(Sampler[int]):
    r"""Yields ``num_samples`` keys drawn with probabilities proportional to
    ``weights`` (which need not sum to 1).

    Args:
        weights (sequence): one weight per key.
        num_samples (int): number of draws.
        replacement (bool): draw with replacement. Default: ``True``.
        generator (Generator): generator of the draws.

    Example::

        >>> list(WeightedRandomSampler([0.0, 1.0, 0.0], 3))
        [1, 1, 1]
    """

    weights: Tensor

    def __init__(
        self,
        weights: Sequence[float] | Tensor,
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        _check_num_samples(num_samples)
        _check_replacement(replacement)
        weights_tensor = rtorch.as_tensor(weights, dtype=rtorch.float64)
        if len(weights_tensor.shape) != 1:
            raise ValueError(
                "weights should be a 1d sequence but given "
                f"weights have shape {tuple(weights_tensor.shape)}"
            )
        self.weights = weights_tensor
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        yield from _multinomial(self.weights, self.num_samples, self.replacement, self.generator)

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    r"""Groups the keys of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler (Sampler or Iterable): source of keys.
        batch_size (int): size of a batch.
        drop_last (bool): drop the last batch when it is smaller.

    Example::

        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.sampler)
        while batch := list(itertools.islice(it, self.batch_size)):
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
