"""An MBConv block in the style of MaxViT, ported from a TensorFlow reference."""

from functools import partial

import torch
import torch.nn as nn

# Copied from the TensorFlow config, where 0.99 is a Keras momentum (pytorch/vision#8250).
norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.99)


class MBConv(nn.Module):
    def __init__(self, channels: int, expansion: int = 4) -> None:
        super().__init__()
        hidden = channels * expansion
        self.pre_norm = norm_layer(channels)
        self.expand = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.expand_norm = norm_layer(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden, bias=False)
        self.depthwise_norm = norm_layer(hidden)
        self.project = nn.Conv2d(hidden, channels, kernel_size=1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act(self.expand_norm(self.expand(self.pre_norm(x))))
        x = self.act(self.depthwise_norm(self.depthwise(x)))
        return self.project(x) + shortcut
