"""``default_collate`` and ``default_convert``: samples to batched tensors.

The rules are PyTorch's: tensors are stacked (in a worker process, straight
into shared memory), NumPy arrays and scalars become tensors, Python floats
float64, ints int64, bools bool; strings and bytes are kept; mappings,
named tuples and sequences are collated element-wise.
"""

from __future__ import annotations

import collections.abc
import copy
import re
from collections.abc import Callable
from typing import Any

import rtorch
from rtorch import _C

__all__ = ["collate", "default_collate", "default_collate_fn_map", "default_convert"]

np_str_obj_array_pattern = re.compile(r"[SaUO]")

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)

CollateMap = dict[type | tuple[type, ...], Callable]


def _is_numpy(obj: Any) -> bool:
    return type(obj).__module__ == "numpy"


def default_convert(data: Any) -> Any:
    r"""Converts NumPy arrays and scalars inside ``data`` to tensors, leaving
    everything else as it is (the DataLoader's ``collate_fn`` when automatic
    batching is off).

    Args:
        data: a single sample.

    Example::

        >>> import numpy as np
        >>> default_convert({"x": np.array([1, 2]), "name": "a"})
        {'x': tensor([1, 2]), 'name': 'a'}
    """
    elem_type = type(data)
    if isinstance(data, rtorch.Tensor):
        return data
    if _is_numpy(data) and elem_type.__name__ not in ("str_", "string_", "bytes_"):
        if elem_type.__name__ == "ndarray" and np_str_obj_array_pattern.search(data.dtype.str):
            return data
        return rtorch.as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def collate(batch: Any, *, collate_fn_map: CollateMap | None = None) -> Any:
    r"""Collates ``batch`` (a sequence of samples) by the structure of its
    first element, calling ``collate_fn_map``'s function for the element's
    type (exact type first, then the first key it is an instance of).

    Args:
        batch: a single batch to be collated.
        collate_fn_map: element type to collate function, called as
            ``fn(batch, collate_fn_map=...)``.
    """
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if _is_numpy(elem):
            _add_numpy_entries(collate_fn_map)
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type in collate_fn_map:
            if isinstance(elem, collate_type):
                return collate_fn_map[collate_type](batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(
                    {
                        key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                        for key in elem
                    }
                )
                return clone
            return elem_type(
                {
                    key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                    for key in elem
                }
            )
        except TypeError:
            return {
                key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem
            }
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return elem_type(
            *(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch, strict=False))
        )
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(e) == elem_size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch, strict=False))
        if isinstance(elem, tuple):
            return [collate(s, collate_fn_map=collate_fn_map) for s in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, s in enumerate(transposed):
                    clone[i] = collate(s, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(s, collate_fn_map=collate_fn_map) for s in transposed])
        except TypeError:
            return [collate(s, collate_fn_map=collate_fn_map) for s in transposed]
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def collate_tensor_fn(batch: Any, *, collate_fn_map: CollateMap | None = None) -> rtorch.Tensor:
    from rtorch.utils.data._utils.worker import get_worker_info

    elem = batch[0]
    out = None
    if get_worker_info() is not None:
        # In a worker, stack straight into shared memory: sending the batch
        # to the main process then copies nothing.
        out = _C._empty_shared([len(batch), *elem.shape], elem.dtype)
    return rtorch.stack(list(batch), 0, out=out)


def collate_numpy_array_fn(batch: Any, *, collate_fn_map: CollateMap | None = None) -> Any:
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    return collate([rtorch.as_tensor(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch: Any, *, collate_fn_map: CollateMap | None = None) -> Any:
    import numpy as np

    return rtorch.as_tensor(np.asarray(batch))


def collate_float_fn(batch: Any, *, collate_fn_map: CollateMap | None = None) -> rtorch.Tensor:
    return rtorch.tensor(batch, dtype=rtorch.float64)


def collate_int_fn(batch: Any, *, collate_fn_map: CollateMap | None = None) -> rtorch.Tensor:
    return rtorch.tensor(batch)


def collate_str_fn(batch: Any, *, collate_fn_map: CollateMap | None = None) -> Any:
    return batch


default_collate_fn_map: CollateMap = {
    rtorch.Tensor: collate_tensor_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def _add_numpy_entries(collate_fn_map: CollateMap) -> None:
    # NumPy is imported on first use only; its entries go right after the
    # tensor entry, where PyTorch has them (np.float64 is also a float).
    if collate_fn_map is not default_collate_fn_map or "numpy" in _numpy_added:
        return
    import numpy as np

    _numpy_added.add("numpy")
    entries = list(collate_fn_map.items())
    collate_fn_map.clear()
    collate_fn_map[entries[0][0]] = entries[0][1]
    collate_fn_map[np.ndarray] = collate_numpy_array_fn
    collate_fn_map[(np.bool_, np.number, np.object_)] = collate_numpy_scalar_fn
    collate_fn_map.update(entries[1:])


_numpy_added: set[str] = set()


def default_collate(batch: Any) -> Any:
    r"""Puts each field of the samples in ``batch`` into a tensor with a new
    outer dimension, the batch size (the DataLoader's ``collate_fn`` when
    automatic batching is on).

    * :class:`rtorch.Tensor` -> stacked tensor
    * NumPy arrays -> stacked tensor; NumPy scalars -> tensor
    * ``float`` -> float64 tensor; ``int`` -> int64 tensor; ``bool`` -> bool tensor
    * ``str``, ``bytes`` -> unchanged (a list)
    * ``Mapping[K, V_i]`` -> ``Mapping[K, default_collate([V_1, V_2, ...])]``
    * ``NamedTuple[V1_i, V2_i, ...]`` -> ``NamedTuple[default_collate([V1_1, ...]), ...]``
    * ``Sequence[V1_i, V2_i, ...]`` -> ``[default_collate([V1_1, V1_2, ...]), ...]``

    Args:
        batch: a single batch to be collated.

    Example::

        >>> default_collate([(0, 1.5), (2, 3.0)])
        [tensor([0, 2]), tensor([1.5000, 3.0000], dtype=torch.float64)]
        >>> default_collate([{"a": 0}, {"a": 100}])
        {'a': tensor([  0, 100])}
    """
    from rtorch.utils.data.dataset import _TensorBatch

    if (
        type(batch) is _TensorBatch
        and default_collate_fn_map.get(rtorch.Tensor) is collate_tensor_fn
    ):
        # TensorDataset's batched fetch: the fields are gathered already.
        return batch.gathered()
    return collate(batch, collate_fn_map=default_collate_fn_map)
