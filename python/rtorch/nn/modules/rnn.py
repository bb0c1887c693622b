"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their one-step cells."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import rtorch
from rtorch import _C
from rtorch._C import Tensor
from rtorch.nn import _rnn, init
from rtorch.nn.modules.module import Module
from rtorch.nn.parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _apply_permutation(tensor: Tensor, permutation: Tensor, dim: int = 1) -> Tensor:
    return tensor.index_select(dim, permutation)


class RNNBase(Module):
    """Base class of ``RNN``, ``LSTM`` and ``GRU``: parameters, checks, ``repr``.

    Parameters are named as in PyTorch (``weight_ih_l{k}``, ``weight_hh_l{k}``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}`` with ``proj_size``,
    ``_reverse`` for the backward direction), so state dicts interchange.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1

        if (
            not isinstance(dropout, numbers.Number)
            or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                "element being zeroed"
            )
        self.dropout = float(dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                "dropout expects num_layers greater than 1, but got "
                f"dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        gate_size = _GATES[mode] * hidden_size

        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        real_hidden = proj_size if proj_size > 0 else hidden_size
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [
                    (f"weight_ih_l{layer}{suffix}", (gate_size, layer_input)),
                    (f"weight_hh_l{layer}{suffix}", (gate_size, real_hidden)),
                ]
                if bias:
                    shapes += [
                        (f"bias_ih_l{layer}{suffix}", (gate_size,)),
                        (f"bias_hh_l{layer}{suffix}", (gate_size,)),
                    ]
                if proj_size > 0:
                    shapes.append((f"weight_hr_l{layer}{suffix}", (proj_size, hidden_size)))
                for name, shape in shapes:
                    setattr(self, name, Parameter(rtorch.empty(shape, device=device, dtype=dtype)))
                names = [n for n, _ in shapes]
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters, one list per layer and direction."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op: there is no fused weight buffer to compact (cuDNN's, in PyTorch)."""

    def reset_parameters(self) -> None:
        """Every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _layer_weights(self) -> list[list[Tensor | None]]:
        out = []
        for layer in range(self.num_layers):
            for direction in range(2 if self.bidirectional else 1):
                suffix = "_reverse" if direction == 1 else ""

                def get(prefix: str, layer: int = layer, suffix: str = suffix) -> Any:
                    return getattr(self, f"{prefix}_l{layer}{suffix}", None)

                out.append(
                    [
                        get("weight_ih"),
                        get("weight_hh"),
                        get("bias_ih") if self.bias else None,
                        get("bias_hh") if self.bias else None,
                        get("weight_hr") if self.proj_size > 0 else None,
                    ]
                )
        return out

    # ---------------------------------------------------------------- checks

    def check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        w = self._flat_weights[0]
        if w is not None and input.dtype != w.dtype:
            raise ValueError(f"input must have the type {w.dtype}, got type {input.dtype}")
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(
                f"input must have {expected_input_dim} dimensions, got {input.dim()}"
            )
        if self.input_size != input.size(-1):
            raise RuntimeError(
                "input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {input.size(-1)}"
            )

    def get_expected_hidden_size(
        self, input: Tensor, batch_sizes: Tensor | None
    ) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (self.num_layers * num_directions, mini_batch, size)

    def check_hidden_size(
        self, hx: Tensor, expected_hidden_size: tuple, msg: str = "Expected hidden size {}, got {}"
    ) -> None:
        if tuple(hx.size()) != tuple(expected_hidden_size):
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input: Tensor, hidden: Tensor, batch_sizes: Any) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx: Tensor, permutation: Tensor | None) -> Tensor:
        if permutation is None:
            return hx
        return _apply_permutation(hx, permutation)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---------------------------------------------------------------- forward

    def _unpack_input(self, input: Any) -> tuple:
        """``(data, batch_sizes, sorted_indices, unsorted_indices)``; the last three
        ``None`` for a plain tensor."""
        from rtorch.nn.utils.rnn import PackedSequence

        if isinstance(input, PackedSequence):
            return input.data, input.batch_sizes, input.sorted_indices, input.unsorted_indices
        return input, None, None, None

    def _run(
        self,
        input: Tensor,
        batch_sizes: Tensor | None,
        hx: Tensor,
        cx: Tensor | None,
    ) -> tuple:
        sizes = None if batch_sizes is None else tuple(int(b) for b in batch_sizes.tolist())
        x = input
        if batch_sizes is None and self.batch_first:
            x = x.transpose(0, 1)
        res = _rnn.rnn_forward(
            self.mode,
            x,
            sizes,
            hx,
            cx,
            self._layer_weights(),
            self.num_layers,
            self.bidirectional,
            self.dropout,
            self.training,
        )
        out = res[0]
        if batch_sizes is None and self.batch_first:
            out = out.transpose(0, 1).contiguous()
        return (out, *res[1:])

    def _zeros_state(self, input: Tensor, max_batch: int, size: int) -> Tensor:
        num_directions = 2 if self.bidirectional else 1
        return rtorch.zeros(
            self.num_layers * num_directions,
            max_batch,
            size,
            dtype=input.dtype,
            device=input.device,
        )

    def _forward_single(self, input: Any, hx: Tensor | None, name: str) -> tuple:
        from rtorch.nn.utils.rnn import PackedSequence

        data, batch_sizes, sorted_indices, unsorted_indices = self._unpack_input(input)
        is_packed = batch_sizes is not None
        if is_packed:
            input = data
            max_batch = int(batch_sizes[0])
            if hx is not None:
                hx = self.permute_hidden(hx, sorted_indices)
            is_batched = True
        else:
            if input.dim() not in (2, 3):
                suffix = " tensor" if name == "RNN" else ""
                raise ValueError(
                    f"{name}: Expected input to be 2D or 3D, got {input.dim()}D{suffix} instead"
                )
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = input.unsqueeze(batch_dim)
                if hx is not None:
                    if hx.dim() != 2:
                        raise RuntimeError(
                            "For unbatched 2-D input, hx should also be 2-D but got "
                            f"{hx.dim()}-D tensor"
                        )
                    hx = hx.unsqueeze(1)
            elif hx is not None and hx.dim() != 3:
                raise RuntimeError(
                    f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor"
                )
            max_batch = input.size(0) if self.batch_first else input.size(1)
        if hx is None:
            hx = self._zeros_state(input, max_batch, self.hidden_size)
        self.check_forward_args(input, hx, batch_sizes)
        output, h_n = self._run(input, batch_sizes, hx, None)
        if is_packed:
            out = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            return out, self.permute_hidden(h_n, unsorted_indices)
        if not is_batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
        return output, h_n


class RNN(RNNBase):
    r"""A multi-layer Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    (``relu`` instead of ``tanh`` with ``nonlinearity='relu'``).

    Args:
        input_size: features of the input ``x``.
        hidden_size: features of the hidden state ``h``.
        num_layers: stacked layers. Default: 1.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``.
        bias: whether to use ``b_ih`` and ``b_hh``. Default: ``True``.
        batch_first: input and output as ``(batch, seq, feature)``. Default: ``False``.
        dropout: dropout on each layer's output but the last's (training only).
        bidirectional: a second pass from the end, outputs concatenated.

    Shape:
        - input: ``(L, H_in)``, ``(L, N, H_in)`` (``(N, L, H_in)`` with
          ``batch_first``) or a :class:`~rtorch.nn.utils.rnn.PackedSequence`.
        - h_0: ``(D * num_layers, H_out)`` or ``(D * num_layers, N, H_out)``; zeros if omitted.
        - output: ``(L, N, D * H_out)``; h_n: like h_0.

    Example::

        >>> import rtorch
        >>> rnn = rtorch.nn.RNN(10, 20, 2)
        >>> output, hn = rnn(rtorch.randn(5, 3, 10), rtorch.randn(2, 3, 20))
        >>> output.shape, hn.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self_nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self_nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self_nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self_nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(
                f"Unknown nonlinearity '{self_nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = self_nonlinearity

    def forward(self, input: Any, hx: Tensor | None = None) -> tuple:
        return self._forward_single(input, hx, "RNN")


class GRU(RNNBase):
    r"""A multi-layer gated recurrent unit RNN; per layer and step

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}),\quad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}),\\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\quad
        h' = (1 - z) \odot n + z \odot h.

    Args: as :class:`RNN` without ``nonlinearity``.

    Shape: as :class:`RNN`.

    Example::

        >>> import rtorch
        >>> gru = rtorch.nn.GRU(10, 20, 2)
        >>> output, hn = gru(rtorch.randn(5, 3, 10))
        >>> output.shape, hn.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input: Any, hx: Tensor | None = None) -> tuple:
        return self._forward_single(input, hx, "GRU")


class LSTM(RNNBase):
    r"""A multi-layer long short-term memory RNN; per layer and step

    .. math::
        i, f, g, o = \sigma, \sigma, \tanh, \sigma\ (W_{ih} x + b_{ih} + W_{hh} h + b_{hh}),\\
        c' = f \odot c + i \odot g,\quad h' = o \odot \tanh(c')

    (gate blocks in that order in the weights); with ``proj_size > 0``,
    ``h' = W_{hr}(o \odot \tanh(c'))``.

    Args: as :class:`RNN` without ``nonlinearity``, plus
        proj_size: size of the projected hidden state (0: none). Default: 0.

    Shape:
        - input: as :class:`RNN`; hx: ``(h_0, c_0)``, ``h_0`` ``(D * num_layers, N,
          proj_size or hidden_size)``, ``c_0`` ``(D * num_layers, N, hidden_size)``.
        - output: ``(L, N, D * H_out)``; ``(h_n, c_n)`` like ``(h_0, c_0)``.

    Example::

        >>> import rtorch
        >>> lstm = rtorch.nn.LSTM(10, 20, 2)
        >>> output, (hn, cn) = lstm(rtorch.randn(5, 3, 10))
        >>> output.shape, hn.shape, cn.shape
        (torch.Size([5, 3, 20]), torch.Size([2, 3, 20]), torch.Size([2, 3, 20]))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(
        self, input: Tensor, batch_sizes: Tensor | None
    ) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch, self.hidden_size)

    def check_forward_args(self, input: Tensor, hidden: tuple, batch_sizes: Any) -> None:  # type: ignore[override]
        self.check_input(input, batch_sizes)
        self.check_hidden_size(
            hidden[0],
            self.get_expected_hidden_size(input, batch_sizes),
            "Expected hidden[0] size {}, got {}",
        )
        self.check_hidden_size(
            hidden[1],
            self.get_expected_cell_size(input, batch_sizes),
            "Expected hidden[1] size {}, got {}",
        )

    def permute_hidden(self, hx: tuple, permutation: Tensor | None) -> tuple:  # type: ignore[override]
        if permutation is None:
            return hx
        return _apply_permutation(hx[0], permutation), _apply_permutation(hx[1], permutation)

    def forward(self, input: Any, hx: tuple | None = None) -> tuple:
        from rtorch.nn.utils.rnn import PackedSequence

        data, batch_sizes, sorted_indices, unsorted_indices = self._unpack_input(input)
        is_packed = batch_sizes is not None
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        if is_packed:
            input = data
            max_batch = int(batch_sizes[0])
            is_batched = True
            if hx is not None:
                hx = self.permute_hidden(hx, sorted_indices)
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = input.unsqueeze(batch_dim)
            max_batch = input.size(0) if self.batch_first else input.size(1)
            if hx is not None:
                want = 3 if is_batched else 2
                if hx[0].dim() != want or hx[1].dim() != want:
                    kind = "batched 3-D" if is_batched else "unbatched 2-D"
                    raise RuntimeError(
                        f"For {kind} input, hx and cx should also be {want}-D but got "
                        f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
                    )
                if not is_batched:
                    hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        if hx is None:
            hx = (
                self._zeros_state(input, max_batch, real_hidden),
                self._zeros_state(input, max_batch, self.hidden_size),
            )
        self.check_forward_args(input, hx, batch_sizes)
        output, h_n, c_n = self._run(input, batch_sizes, hx[0], hx[1])
        if is_packed:
            out = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            return out, self.permute_hidden((h_n, c_n), unsorted_indices)
        if not is_batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return output, (h_n, c_n)


# ---------------------------------------------------------------- cells


class RNNCellBase(Module):
    """Base class of the one-step cells: parameters ``weight_ih``, ``weight_hh``,
    ``bias_ih``, ``bias_hh``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = Parameter(rtorch.empty(num_chunks * hidden_size, input_size, **kw))
        self.weight_hh = Parameter(rtorch.empty(num_chunks * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(rtorch.empty(num_chunks * hidden_size, **kw))
            self.bias_hh = Parameter(rtorch.empty(num_chunks * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += f", bias={self.bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def reset_parameters(self) -> None:
        """Every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _check(self, input: Tensor, hx: Tensor) -> None:
        if input.size(1) != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}"
            )
        if input.size(0) != hx.size(0):
            raise RuntimeError(
                f"Input batch size {input.size(0)} doesn't match hidden0 batch size {hx.size(0)}"
            )
        if hx.size(1) != self.hidden_size:
            raise RuntimeError(
                f"hidden0 has inconsistent hidden_size: got {hx.size(1)}, expected "
                f"{self.hidden_size}"
            )

    def _gates(self, input: Tensor, hx: Tensor) -> tuple[Tensor, Tensor]:
        gi = input.matmul(self.weight_ih.t())
        gh = hx.matmul(self.weight_hh.t())
        if self.bias_ih is not None:
            gi = gi + self.bias_ih
            gh = gh + self.bias_hh
        return gi, gh

    def _batch(self, name: str, input: Tensor, hx: Tensor | None, what: str = "hidden") -> tuple:
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None and hx.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {hx.dim()}D instead")
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = rtorch.zeros(
                input.size(0), self.hidden_size, dtype=input.dtype, device=input.device
            )
        elif not is_batched:
            hx = hx.unsqueeze(0)
        return input, hx, is_batched


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``
    (``relu`` with ``nonlinearity='relu'``).

    Shape:
        - input: ``(N, input_size)`` or ``(input_size)``; hidden: ``(N, hidden_size)``
          or ``(hidden_size)``, zeros if omitted. Output: like hidden.

    Example::

        >>> import rtorch
        >>> cell = rtorch.nn.RNNCell(10, 20)
        >>> cell(rtorch.randn(3, 10)).shape
        torch.Size([3, 20])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        input, hx, is_batched = self._batch("RNNCell", input, hx)
        self._check(input, hx)
        gi, gh = self._gates(input, hx)
        if self.nonlinearity == "tanh":
            ret = (gi + gh).tanh()
        elif self.nonlinearity == "relu":
            ret = (gi + gh).relu()
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return ret if is_batched else ret.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates ``i, f, g, o``); returns ``(h', c')``.

    Shape:
        - input: ``(N, input_size)`` or ``(input_size)``; hx: ``(h, c)`` each
          ``(N, hidden_size)`` or ``(hidden_size)``, zeros if omitted.

    Example::

        >>> import rtorch
        >>> cell = rtorch.nn.LSTMCell(10, 20)
        >>> h, c = cell(rtorch.randn(3, 10))
        >>> h.shape, c.shape
        (torch.Size([3, 20]), torch.Size([3, 20]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple[Tensor, Tensor]:
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            for idx, value in enumerate(hx):
                if value.dim() not in (1, 2):
                    raise ValueError(
                        f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {value.dim()}D instead"
                    )
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = rtorch.zeros(
                input.size(0), self.hidden_size, dtype=input.dtype, device=input.device
            )
            hx = (zeros, zeros)
        elif not is_batched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        h, c = hx
        self._check(input, h)
        self._check(input, c)
        gi = input.matmul(self.weight_ih.t())
        gh = h.matmul(self.weight_hh.t())
        # The fused pointwise step (gates, c', h') and its backward in Rust.
        h_new, c_new = _C._lstm_cell(gi, gh, c, self.bias_ih, self.bias_hh)
        if not is_batched:
            return h_new.squeeze(0), c_new.squeeze(0)
        return h_new, c_new


class GRUCell(RNNCellBase):
    """One GRU step (gates ``r, z, n``).

    Shape: as :class:`RNNCell`.

    Example::

        >>> import rtorch
        >>> cell = rtorch.nn.GRUCell(10, 20)
        >>> cell(rtorch.randn(3, 10)).shape
        torch.Size([3, 20])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        input, hx, is_batched = self._batch("GRUCell", input, hx)
        self._check(input, hx)
        gi = input.matmul(self.weight_ih.t())
        gh = hx.matmul(self.weight_hh.t())
        ret = _C._gru_cell(gi, gh, hx, self.bias_ih, self.bias_hh)
        return ret if is_batched else ret.squeeze(0)
