"""A GAN generator ported from Keras code, where `BatchNormalization(momentum=0.8)` was
common: in PyTorch the second positional argument of BatchNorm is eps, not momentum."""

import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, latent_dim: int = 100, image_size: int = 28) -> None:
        super().__init__()
        self.image_size = image_size

        def block(in_feat: int, out_feat: int) -> list[nn.Module]:
            return [nn.Linear(in_feat, out_feat, bias=False), nn.BatchNorm1d(out_feat, 0.8), nn.LeakyReLU(0.2)]

        self.model = nn.Sequential(
            *block(latent_dim, 128),
            *block(128, 256),
            nn.Linear(256, image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.size(0), 1, self.image_size, self.image_size)


class Critic(nn.Module):
    """Correct: eps left at its default, the Keras momentum 0.8 translated to 0.2."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels, momentum=0.2)
        self.head = nn.Linear(channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = nn.functional.leaky_relu(self.bn(self.conv(image)), 0.2)
        return self.head(features.mean(dim=(2, 3)))
