"""Training a small tabular classifier and a segmentation head: batch sizes that batch norm
cannot work with, next to loaders that are fine (evaluation with batch size 1, drop_last)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, random_split

NUM_FEATURES = 20
SEG_BATCH_SIZE = 2


class TabularNet(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.fc1 = nn.Linear(NUM_FEATURES, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.bn1(self.fc1(x))))


class SegHead(nn.Module):
    def __init__(self, channels: int = 64, classes: int = 21) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.classifier = nn.Conv2d(channels, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.relu(self.bn(self.conv(x))))


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> None:
    model.train()
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    for inputs, targets in loader:
        correct += (model(inputs).argmax(1) == targets).sum().item()
        total += targets.numel()
    return correct / total


def train_tabular() -> None:
    data = TensorDataset(torch.randn(1100, NUM_FEATURES), torch.randint(0, 2, (1100,)))
    train_set, val_set = random_split(data, [1025, 75])
    model = TabularNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)  # 1025 = 16 * 64 + 1
    val_loader = DataLoader(val_set, batch_size=1)  # evaluation: any batch size is fine
    for epoch in range(20):
        train_one_epoch(model, train_loader, optimizer)
        print(f"epoch {epoch}: accuracy {evaluate(model, val_loader):.3f}")


def train_segmentation(train_set, val_set) -> None:
    model = SegHead()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_loader = DataLoader(train_set, batch_size=SEG_BATCH_SIZE, shuffle=True, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=8)
    for epoch in range(30):
        train_one_epoch(model, train_loader, optimizer)
        evaluate(model, val_loader)


def overfit_one_sample(sample_set) -> None:
    """A quick sanity check that the model can fit a single example."""
    model = TabularNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(100):
        train_one_epoch(model, DataLoader(sample_set), optimizer)


def print_output_shape() -> None:
    model = TabularNet()
    print(model(torch.randn(1, NUM_FEATURES)).shape)  # train mode: raises on a batch of one
    model.eval()
    print(model(torch.randn(1, NUM_FEATURES)).shape)  # fine in eval mode


if __name__ == "__main__":
    train_tabular()
    print_output_shape()
