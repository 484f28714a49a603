"""Fine-tuning a pretrained ResNet-50 on several GPUs with knowledge distillation, launched
with `torchrun --nproc_per_node=8 distributed_finetune.py`."""

import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

EPOCHS = 30


def build_student(num_classes: int) -> nn.Module:
    model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
    model.fc = nn.Linear(2048, num_classes)
    for parameter in model.layer1.parameters():  # the first stage keeps its ImageNet features
        parameter.requires_grad = False
    return model


def build_teacher() -> nn.Module:
    teacher = torchvision.models.resnet101(weights="IMAGENET1K_V2")
    teacher.requires_grad_(False)
    return teacher.eval()


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, rank: int) -> float:
    model.eval()
    correct = total = 0
    for images, labels in loader:
        predictions = model(images.cuda(rank)).argmax(1)
        correct += (predictions == labels.cuda(rank)).sum().item()
        total += labels.numel()
    return correct / total


def main() -> None:
    dist.init_process_group("nccl")
    rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(rank)
    student = DDP(build_student(num_classes=100).cuda(rank), device_ids=[rank])
    teacher = build_teacher().cuda(rank)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    train_set = torchvision.datasets.ImageFolder("data/train", transform=torchvision.transforms.ToTensor())
    val_set = torchvision.datasets.ImageFolder("data/val", transform=torchvision.transforms.ToTensor())
    sampler = DistributedSampler(train_set)
    train_loader = DataLoader(train_set, batch_size=64, sampler=sampler, num_workers=8, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=256, num_workers=8)

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        student.train()
        for images, labels in train_loader:
            images, labels = images.cuda(rank), labels.cuda(rank)
            with torch.no_grad():
                targets = F.softmax(teacher(images), dim=1)
            logits = student(images)
            loss = F.cross_entropy(logits, labels) + F.kl_div(
                F.log_softmax(logits, dim=1), targets, reduction="batchmean"
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = validate(student, val_loader, rank)
        if rank == 0:
            print(f"epoch {epoch}: top-1 {accuracy:.3f}")


if __name__ == "__main__":
    main()
