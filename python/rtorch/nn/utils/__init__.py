"""``rtorch.nn.utils``: sequence packing, gradient clipping, parameter
vectors and parametrizations, as ``torch.nn.utils``."""

from rtorch.nn.utils import fusion, parametrizations, parametrize, rnn  # isort: skip
from rtorch.nn.utils.clip_grad import (
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from rtorch.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from rtorch.nn.utils.fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from rtorch.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from rtorch.nn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = [
    "clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_",
    "get_total_norm", "parameters_to_vector", "vector_to_parameters", "parametrizations",
    "parametrize", "rnn", "remove_spectral_norm", "spectral_norm", "remove_weight_norm",
    "weight_norm", "fusion", "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
]  # fmt: skip
