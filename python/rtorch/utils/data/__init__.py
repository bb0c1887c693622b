"""``rtorch.utils.data``: datasets, samplers, collation and the DataLoader."""

# Tensors sent to and from workers travel as shared memory.
import rtorch.multiprocessing  # noqa: F401  (registers the reducers)
from rtorch.utils.data._utils.collate import default_collate, default_convert
from rtorch.utils.data._utils.worker import get_worker_info
from rtorch.utils.data.dataloader import DataLoader
from rtorch.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from rtorch.utils.data.distributed import DistributedSampler
from rtorch.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
