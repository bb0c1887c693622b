"""Optimization algorithms (PyTorch's ``torch.optim``).

Every optimizer updates parameters in place under ``no_grad``. By default
(``foreach=None``) each param group's update is one call into a fused
multi-tensor Rust kernel (``rtorch._C._fused_<name>``) that reads every
gradient once and writes every parameter and state once, over all of the
group's tensors in parallel; ``foreach=False`` (or parameters the kernel does
not take) runs the per-tensor reference path (``_single_tensor_<name>``),
which is the kernels' float64 oracle in the tests.
"""

from rtorch.optim import lr_scheduler
from rtorch.optim.adadelta import Adadelta
from rtorch.optim.adagrad import Adagrad
from rtorch.optim.adam import Adam
from rtorch.optim.adamax import Adamax
from rtorch.optim.adamw import AdamW
from rtorch.optim.asgd import ASGD
from rtorch.optim.lbfgs import LBFGS
from rtorch.optim.nadam import NAdam
from rtorch.optim.optimizer import Optimizer
from rtorch.optim.radam import RAdam
from rtorch.optim.rmsprop import RMSprop
from rtorch.optim.rprop import Rprop
from rtorch.optim.sgd import SGD
from rtorch.optim.sparse_adam import SparseAdam

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SparseAdam",
    "lr_scheduler",
]
