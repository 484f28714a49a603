"""bnlint: catch batch-normalization misuse in PyTorch and Keras code before it costs a training run."""

__version__ = "0.1.0"
