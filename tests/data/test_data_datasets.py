"""Datasets, samplers and collation, checked against PyTorch's rules and messages."""

import collections

import numpy as np
import pytest

import rtorch
from rtorch.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    random_split,
)


class Range(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_tensor_dataset_items_and_batched_fetch():
    x, y = rtorch.arange(12.0).view(6, 2), rtorch.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[2]
    assert a.tolist() == [4.0, 5.0] and b.item() == 2
    batch = ds.__getitems__([4, 0])
    assert len(batch) == 2 and batch[0][1].item() == 4
    xs, ys = default_collate(batch)
    assert xs.tolist() == [[8.0, 9.0], [0.0, 1.0]] and ys.tolist() == [4, 0]
    with pytest.raises(IndexError, match="index 6 is out of bounds for dimension 0 with size 6"):
        ds.__getitems__([1, 6])
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(x, rtorch.arange(5))


def test_concat_chain_stack_and_subset():
    a, b = TensorDataset(rtorch.arange(2)), TensorDataset(rtorch.arange(10, 13))
    cat = a + b
    assert isinstance(cat, ConcatDataset) and len(cat) == 5
    assert [cat[i][0].item() for i in range(5)] == [0, 1, 10, 11, 12]
    assert cat[-1][0].item() == 12
    with pytest.raises(
        ValueError, match="absolute value of index should not exceed dataset length"
    ):
        cat[-6]
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([Range(2)])
    chain = Range(2) + Range(3)
    assert isinstance(chain, ChainDataset) and list(chain) == [0, 1, 0, 1, 2] and len(chain) == 5
    st = StackDataset(x=a, y=TensorDataset(rtorch.arange(5, 7)))
    assert st[1]["y"][0].item() == 6 and len(st) == 2
    assert StackDataset(a, a)[0][1][0].item() == 0
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset(a, b)
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        StackDataset()
    sub = Subset(b, [2, 0])
    assert len(sub) == 2 and sub[0][0].item() == 12
    assert [s[0].item() for s in sub.__getitems__([1, 0])] == [10, 12]


def test_random_split_lengths_fractions_and_generator():
    parts = random_split(range(10), [3, 7], generator=rtorch.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    again = random_split(range(10), [3, 7], generator=rtorch.Generator().manual_seed(1))
    assert list(again[0]) == list(parts[0])
    assert [len(p) for p in random_split(range(10), [0.5, 0.25, 0.25])] == [
        6,
        2,
        2,
    ]  # remainder round-robin
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(range(10), [1.5, -0.5])


def test_sequential_and_random_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = rtorch.Generator().manual_seed(3)
    perm = list(RandomSampler(range(50), generator=g))
    assert sorted(perm) == list(range(50)) and perm != list(range(50))
    assert list(RandomSampler(range(50), generator=rtorch.Generator().manual_seed(3))) == perm
    draws = list(RandomSampler(range(5), replacement=True, num_samples=100))
    assert len(draws) == 100 and set(draws) <= set(range(5))
    twice = list(RandomSampler(range(4), num_samples=10))
    assert len(twice) == 10 and sorted(twice[:4]) == [0, 1, 2, 3]
    with pytest.raises(
        TypeError, match="replacement should be a boolean value, but got replacement=1"
    ):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler(range(3), num_samples=0)
    sub = list(SubsetRandomSampler([5, 7, 9]))
    assert sorted(sub) == [5, 7, 9]


def test_weighted_random_sampler():
    assert list(WeightedRandomSampler([0.0, 2.0, 0.0], 5)) == [1] * 5
    drawn = list(WeightedRandomSampler([1.0, 1.0, 5.0, 0.0], 3, replacement=False))
    assert sorted(drawn) == [0, 1, 2]
    counts = collections.Counter(WeightedRandomSampler([1.0, 3.0], 4000))
    assert 0.68 < counts[1] / 4000 < 0.82
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        list(WeightedRandomSampler([1.0, 0.0], 2, replacement=False))
    with pytest.raises(RuntimeError, match="element < 0"):
        list(WeightedRandomSampler([1.0, -1.0], 2))


def test_batch_sampler():
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert list(BatchSampler(range(5), 2, True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, False)) == 3 and len(BatchSampler(range(5), 2, True)) == 2
    with pytest.raises(
        ValueError, match="batch_size should be a positive integer value, but got batch_size=0"
    ):
        BatchSampler(range(5), 0, False)
    with pytest.raises(
        ValueError, match="drop_last should be a boolean value, but got drop_last=1"
    ):
        BatchSampler(range(5), 2, 1)


def test_distributed_sampler_shards_are_disjoint_and_cover():
    ds = range(10)
    shards = [list(DistributedSampler(ds, num_replicas=3, rank=r, seed=5)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    flat = sum(shards, [])
    assert set(flat) == set(range(10)) and len(flat) == 12  # padded with 2 repeats
    dropped = [
        list(DistributedSampler(ds, num_replicas=3, rank=r, drop_last=True)) for r in range(3)
    ]
    assert all(len(s) == 3 for s in dropped) and len(set(sum(dropped, []))) == 9
    s = DistributedSampler(ds, num_replicas=2, rank=0)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0 and sorted(list(s)) != []
    with pytest.raises(
        ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 1\]"
    ):
        DistributedSampler(ds, num_replicas=2, rank=3)
    with pytest.raises(RuntimeError, match="Requires distributed package"):
        DistributedSampler(ds)


Point = collections.namedtuple("Point", ["x", "y"])


def test_default_collate_rules():
    ints, floats, bools, strs = default_collate([(1, 1.5, True, "a"), (2, 2.5, False, "b")])
    assert ints.dtype == rtorch.int64 and ints.tolist() == [1, 2]
    assert floats.dtype == rtorch.float64 and floats.tolist() == [1.5, 2.5]
    assert bools.dtype == rtorch.bool and bools.tolist() == [True, False]
    assert list(strs) == ["a", "b"]
    out = default_collate([{"a": rtorch.zeros(2), "b": 1}, {"a": rtorch.ones(2), "b": 2}])
    assert out["a"].tolist() == [[0.0, 0.0], [1.0, 1.0]] and out["b"].tolist() == [1, 2]
    p = default_collate([Point(0, 1.0), Point(2, 3.0)])
    assert isinstance(p, Point) and p.x.tolist() == [0, 2]
    lists = default_collate([[1, 2], [3, 4]])
    assert [t.tolist() for t in lists] == [[1, 3], [2, 4]]
    arr = default_collate(
        [np.array([1.0, 2.0], dtype=np.float32), np.array([3.0, 4.0], dtype=np.float32)]
    )
    assert arr.dtype == rtorch.float32 and arr.shape == (2, 2)
    scal = default_collate([np.int32(1), np.int32(5)])
    assert scal.dtype == rtorch.int32 and scal.tolist() == [1, 5]
    assert default_collate([b"x", b"y"]) == [b"x", b"y"]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([rtorch.zeros(2), rtorch.zeros(3)])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(
        TypeError,
        match="default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found <class 'object'>",
    ):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_default_convert():
    out = default_convert({"x": np.array([1, 2]), "s": "a", "t": (np.float64(1.5), 3)})
    assert out["x"].tolist() == [1, 2] and out["s"] == "a"
    assert out["t"][0].dtype == rtorch.float64 and out["t"][1] == 3
    strings = np.array(["a"])
    assert default_convert(strings) is strings
    assert default_convert(Point(np.array(0), 1)).x.item() == 0


def test_dataset_base_class_needs_getitem():
    with pytest.raises(
        NotImplementedError, match="Subclasses of Dataset should implement __getitem__."
    ):
        Dataset()[0]
