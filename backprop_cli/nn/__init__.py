"""The numerics core: pure NumPy, no I/O, no printing, no config objects."""

from . import fast, kernel_check
from .activations import ACTIVATIONS, get_activation
from .gradcheck import gradcheck
from .losses import LOSSES, get_loss
from .network import INITS, Network
from .optimizers import OPTIMIZERS, make_optimizer

fast.check_with(kernel_check.self_test)

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "LOSSES",
    "OPTIMIZERS",
    "Network",
    "get_activation",
    "get_loss",
    "gradcheck",
    "make_optimizer",
]
