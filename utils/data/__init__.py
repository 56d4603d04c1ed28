"""Data: MNIST sources, cluttered and background generation, datasets and loaders.
`from utils.data import ClutteredMNIST` is the stable import path of the 2021 dataset."""

from utils.data.datasets import ClutteredMNIST  # noqa: F401
