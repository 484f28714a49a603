"""Batch norm used correctly: bnlint reports nothing in this file."""

from functools import partial

import keras
import torch
import torch.nn as nn
from keras import layers

norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


class BasicBlock(nn.Module):
    """A ResNet block: convolutions without bias, because batch norm follows them."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = norm_layer(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


# conv -> ReLU -> BN: the activation sits between, so the bias is not redundant.
post_activation = nn.Sequential(
    nn.Conv2d(64, 64, kernel_size=3, padding=1),
    nn.ReLU(inplace=True),
    nn.BatchNorm2d(64),
)

# Dropout after the last batch norm, right before the classifier.
head = nn.Sequential(
    nn.Linear(512, 256, bias=False),
    nn.BatchNorm1d(256, momentum=None),
    nn.ReLU(inplace=True),
    nn.Dropout(0.5),
    nn.Linear(256, 10),
)


def build_keras_block(channels: int = 64) -> keras.Sequential:
    return keras.Sequential(
        [
            layers.Conv2D(channels, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.99),
            layers.ReLU(),
        ]
    )
