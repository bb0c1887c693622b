"""Variable-length sequences for the recurrent layers: ``PackedSequence`` and
the packing / padding helpers, as ``torch.nn.utils.rnn``."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

import rtorch
from rtorch._C import Tensor

__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpad_sequence",
    "pack_sequence",
    "unpack_sequence",
]

_PackedSequenceBase = namedtuple(
    "PackedSequence_", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


class PackedSequence(_PackedSequenceBase):
    """The timesteps of a batch of sequences, packed without padding.

    ``data`` holds timestep 0 of every sequence, then timestep 1 of those
    still running, and so on (sequences sorted by decreasing length);
    ``batch_sizes[t]`` is how many sequences run at step ``t``.
    ``sorted_indices`` maps that order back to the original batch
    (``unsorted_indices`` is its inverse); both ``None`` when the batch was
    already sorted. Build one with :func:`pack_padded_sequence` or
    :func:`pack_sequence`, not directly.

    Example::

        >>> import rtorch
        >>> from rtorch.nn.utils.rnn import pack_sequence
        >>> p = pack_sequence([rtorch.tensor([1, 2, 3]), rtorch.tensor([4, 5])])
        >>> p.data, p.batch_sizes
        (tensor([1, 4, 2, 5, 3]), tensor([2, 2, 1]))
    """

    def __new__(
        cls,
        data: Any,
        batch_sizes: Tensor | None = None,
        sorted_indices: Tensor | None = None,
        unsorted_indices: Tensor | None = None,
    ) -> PackedSequence:
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is not None:
            if batch_sizes.device.type != "cpu":
                raise ValueError(
                    "batch_sizes should always be on CPU. Instances of PackedSequence should "
                    "never be created manually. They should be instantiated by functions like "
                    "pack_sequence and pack_padded_sequences in nn.utils.rnn. "
                    "https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence"
                )
            return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)
        data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data: Tensor) -> PackedSequence:
        if data is self.data:
            return self
        device = data.device
        si = self.sorted_indices
        ui = self.unsorted_indices
        si = si.to(device) if si is not None else None
        ui = ui.to(device) if ui is not None else None
        return type(self)(data, self.batch_sizes, si, ui)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.to(*args, **kwargs)``; the indices follow ``data`` to its device."""
        return self._with_data(self.data.to(*args, **kwargs))

    def cuda(self, *args: Any, **kwargs: Any) -> PackedSequence:
        return self._with_data(self.data.cuda(*args, **kwargs))

    def cpu(self, *args: Any, **kwargs: Any) -> PackedSequence:
        return self._with_data(self.data.cpu(*args, **kwargs))

    def pin_memory(self) -> PackedSequence:
        return self

    def double(self) -> PackedSequence:
        return self.to(dtype=rtorch.double)

    def float(self) -> PackedSequence:
        return self.to(dtype=rtorch.float)

    def half(self) -> PackedSequence:
        return self.to(dtype=rtorch.half)

    def long(self) -> PackedSequence:
        return self.to(dtype=rtorch.long)

    def int(self) -> PackedSequence:
        return self.to(dtype=rtorch.int)

    def short(self) -> PackedSequence:
        return self.to(dtype=rtorch.short)

    def char(self) -> PackedSequence:
        return self.to(dtype=rtorch.int8)

    def byte(self) -> PackedSequence:
        return self.to(dtype=rtorch.uint8)

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a CUDA device."""
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation of ``0..n-1`` (``None`` stays ``None``)."""
    if permutation is None:
        return None
    output = rtorch.empty_like(permutation)
    output.scatter_(0, permutation, rtorch.arange(0, permutation.numel(), dtype=permutation.dtype))
    return output


def _lengths_list(lengths: Any) -> list[int]:
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise RuntimeError(
                f"'lengths' argument should be a 1D CPU int64 tensor, but got "
                f"{lengths.dim()}D {lengths.device.type} {lengths.type()} tensor"
            )
        return [int(v) for v in lengths.tolist()]
    return [int(v) for v in lengths]


def pack_padded_sequence(
    input: Tensor,
    lengths: Tensor | Sequence[int],
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Pack a padded batch of sequences of the given lengths.

    Args:
        input: ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``).
        lengths: each sequence's length (list or 1-D tensor).
        batch_first: the batch is dimension 0.
        enforce_sorted: require lengths in decreasing order; with ``False``
            the batch is sorted here and unsorted by :func:`pad_packed_sequence`.

    Example::

        >>> import rtorch
        >>> x = rtorch.tensor([[1, 2, 0], [3, 0, 0]])
        >>> pack_padded_sequence(x, [2, 1], batch_first=True).data
        tensor([1, 3, 2])
    """
    lens = _lengths_list(lengths)
    batch_dim = 0 if batch_first else 1
    if enforce_sorted:
        sorted_indices = None
    else:
        order = sorted(range(len(lens)), key=lambda i: -lens[i])
        lens = [lens[i] for i in order]
        sorted_indices = rtorch.tensor(order, dtype=rtorch.int64)
        input = input.index_select(batch_dim, sorted_indices)
    if batch_first:
        input = input.transpose(0, 1)
    if len(lens) != input.size(1):
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {len(lens)} "
            f"(batch_size={input.size(1)})"
        )
    if lens and lens[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' "
            "that is <= 0"
        )
    for a, b in zip(lens, lens[1:], strict=False):
        if b > a:
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability."
            )
    if lens and lens[0] > input.size(0):
        raise RuntimeError(
            f"Expected sequence length to be at most {input.size(0)}, but got {lens[0]}"
        )
    max_len = lens[0] if lens else 0
    batch_sizes, chunks, bs = [], [], len(lens)
    for t in range(max_len):
        while bs > 0 and lens[bs - 1] <= t:
            bs -= 1
        batch_sizes.append(bs)
        chunks.append(input[t, :bs])
    data = rtorch.cat(chunks, 0) if chunks else input.reshape(0, *input.shape[2:])
    return PackedSequence(
        data, rtorch.tensor(batch_sizes, dtype=rtorch.int64), sorted_indices, None
    )


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: ``(padded, lengths)``.

    Args:
        sequence: the packed batch.
        batch_first: return ``(B, T, *)`` instead of ``(T, B, *)``.
        padding_value: the value of the padding positions.
        total_length: pad to this length (at least the longest sequence's).

    Example::

        >>> import rtorch
        >>> from rtorch.nn.utils.rnn import pack_sequence
        >>> p = pack_sequence([rtorch.tensor([1, 2]), rtorch.tensor([3])])
        >>> pad_packed_sequence(p, batch_first=True)
        (tensor([[1, 2],
                [3, 0]]), tensor([2, 1]))
    """
    sizes = [int(b) for b in sequence.batch_sizes.tolist()]
    max_seq_length = len(sizes)
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{max_seq_length}"
            )
    else:
        total_length = max_seq_length
    data = sequence.data
    B = sizes[0] if sizes else 0
    rest = tuple(data.shape[1:])
    rows, off = [], 0
    for bs in sizes:
        part = data.narrow(0, off, bs)
        off += bs
        if bs < B:
            fill = rtorch.full((B - bs, *rest), padding_value, dtype=data.dtype)
            part = rtorch.cat([part, fill], 0)
        rows.append(part)
    if total_length > max_seq_length:
        fill = rtorch.full((B, *rest), padding_value, dtype=data.dtype)
        rows.extend([fill] * (total_length - max_seq_length))
    padded = rtorch.stack(rows, 1 if batch_first else 0) if rows else data.new_zeros((0, 0, *rest))
    lengths = [sum(1 for b in sizes if b > i) for i in range(B)]
    lengths_t = rtorch.tensor(lengths, dtype=rtorch.int64)
    if sequence.unsorted_indices is not None:
        batch_dim = 0 if batch_first else 1
        ui = sequence.unsorted_indices
        return padded.index_select(batch_dim, ui), lengths_t[ui.cpu()]
    return padded, lengths_t


def pad_sequence(
    sequences: Tensor | Iterable[Tensor],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences of different lengths (``(L_i, *)``), padding to the longest.

    Returns ``(T, B, *)``, or ``(B, T, *)`` with ``batch_first``; padding goes
    after each sequence (``padding_side='right'``) or before it (``'left'``).

    Example::

        >>> import rtorch
        >>> pad_sequence([rtorch.tensor([1, 2]), rtorch.tensor([3])], batch_first=True)
        tensor([[1, 2],
                [3, 0]])
    """
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    seqs = list(sequences.unbind(0)) if isinstance(sequences, Tensor) else list(sequences)
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    max_len = max(s.size(0) for s in seqs)
    rows = []
    for s in seqs:
        n = max_len - s.size(0)
        if n:
            fill = rtorch.full((n, *s.shape[1:]), padding_value, dtype=s.dtype)
            s = rtorch.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        rows.append(s)
    return rtorch.stack(rows, 0 if batch_first else 1)


def unpad_sequence(
    padded_sequences: Tensor, lengths: Tensor | Sequence[int], batch_first: bool = False
) -> list[Tensor]:
    """Split a padded batch back into its sequences (the inverse of :func:`pad_sequence`).

    Example::

        >>> import rtorch
        >>> x = rtorch.tensor([[1, 2], [3, 0]])
        >>> unpad_sequence(x, rtorch.tensor([2, 1]), batch_first=True)
        [tensor([1, 2]), tensor([3])]
    """
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[:n] for seq, n in zip(padded_sequences, _lengths_list(lengths), strict=False)]


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (``(L_i, *)``) of different lengths.

    Example::

        >>> import rtorch
        >>> pack_sequence([rtorch.tensor([1]), rtorch.tensor([2, 3])], enforce_sorted=False).data
        tensor([2, 1, 3])
    """
    lengths = [v.size(0) for v in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences in a :class:`PackedSequence` (the inverse of :func:`pack_sequence`).

    Example::

        >>> import rtorch
        >>> p = pack_sequence([rtorch.tensor([1, 2]), rtorch.tensor([3])])
        >>> unpack_sequence(p)
        [tensor([1, 2]), tensor([3])]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
