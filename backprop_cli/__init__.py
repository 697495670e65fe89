"""backprop: train fully connected networks with hand-written backpropagation in NumPy."""

__version__ = "0.1.0"
