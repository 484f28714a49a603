"""Projection heads for contrastive pre-training (SimCLR style)."""

from collections import OrderedDict

import torch
import torch.nn as nn

EMBEDDING_DIM = 128

projector = nn.Sequential(
    OrderedDict(
        [
            ("fc1", nn.Linear(2048, 512, bias=False)),
            ("bn1", nn.BatchNorm2d(512)),
            ("relu", nn.ReLU(inplace=True)),
            ("fc2", nn.Linear(512, EMBEDDING_DIM)),
        ]
    )
)


class RegularizedHead(nn.Module):
    def __init__(self, in_features: int = 2048, hidden: int = 512, p: float = 0.2) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, hidden, bias=False)
        self.drop = nn.Dropout(p)
        self.bn = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, EMBEDDING_DIM)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.fc(features)))
        return self.out(self.bn(x))
