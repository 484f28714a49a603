"""A file with a syntax error: bnlint reports BN000 here and still checks every other file."""

import torch.nn as nn

block = nn.Sequential(
    nn.Conv2d(3, 64, kernel_size=3, bias=False),
    nn.BatchNorm2d(64)
    nn.ReLU(inplace=True),
)
