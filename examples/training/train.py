"""The training script: the mistakes are in how the model is used, across three files."""

import torch

from .engine import predict, train_one_epoch, validate
from .models import SmallNet


def main(train_loader, val_loader, epochs=30):
    model = SmallNet().to("cuda" if torch.cuda.is_available() else "cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(epochs):
        train_one_epoch(model, train_loader, optimizer)
        accuracy = validate(model, val_loader)
        print(f"epoch {epoch}: {accuracy:.3f}")
    torch.save(model.state_dict(), "smallnet.pt")


def demo(images):
    model = SmallNet()
    model.load_state_dict(torch.load("smallnet.pt"))
    model.eval  # BN102: not called, so the model stays in train mode
    return predict(model, images)
