"""Optimization algorithms (PyTorch's ``torch.optim``).

Every optimizer updates parameters in place under ``no_grad`` with a plain
per-tensor loop over rtorch ops; the fused multi-tensor Rust kernel (one call
per step over all parameters) is a later step, and the per-tensor loop stays
as its float64 reference.
"""

from rtorch.optim import lr_scheduler
from rtorch.optim.adagrad import Adagrad
from rtorch.optim.adam import Adam
from rtorch.optim.adamw import AdamW
from rtorch.optim.optimizer import Optimizer
from rtorch.optim.rmsprop import RMSprop
from rtorch.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
