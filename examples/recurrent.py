"""Activity recognition from wearable sensors: an LSTM with batch-normalized gates ("it
trains faster"), in PyTorch and in Keras, next to the two ways to normalize a recurrent
model correctly: layer norm inside the cell, or batch norm over the whole output sequence."""

import keras
import torch
import torch.nn as nn
from keras import layers


class BNLSTMCell(nn.Module):
    """An LSTM cell that batch-normalizes its input and recurrent projections."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.bn_ih = nn.BatchNorm1d(4 * hidden_size)
        self.bn_hh = nn.BatchNorm1d(4 * hidden_size)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        gates = self.bn_ih(self.ih(x)) + self.bn_hh(self.hh(h))
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class LNLSTMCell(BNLSTMCell):
    """The same cell with layer norm: statistics per sample and per step."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.bn_ih = nn.LayerNorm(4 * hidden_size)
        self.bn_hh = nn.LayerNorm(4 * hidden_size)


class ActivityNet(nn.Module):
    def __init__(self, channels: int = 6, hidden_size: int = 128, classes: int = 12) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = BNLSTMCell(channels, hidden_size)
        self.head = nn.Linear(hidden_size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time, channels)
        h = c = x.new_zeros(x.size(0), self.hidden_size)
        for x_t in x.unbind(1):
            h, c = self.cell(x_t, (h, c))
        return self.head(h)


class ActivityTagger(nn.Module):
    """Batch norm over the LSTM's whole output: all steps of all samples together."""

    def __init__(self, channels: int = 6, hidden_size: int = 128, classes: int = 12) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, hidden_size, batch_first=True)
        self.norm = nn.BatchNorm1d(hidden_size)
        self.head = nn.Linear(hidden_size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.norm(out.transpose(1, 2)).transpose(1, 2))


class NormalizedGRUCell(layers.Layer):
    """A minimal Keras GRU-like cell, normalized the wrong way."""

    def __init__(self, units: int, norm: str = "batch", **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.gates = layers.Dense(2 * units, use_bias=False)
        self.candidate = layers.Dense(units, use_bias=False)
        if norm == "batch":
            self.norm = layers.BatchNormalization()
        else:
            self.norm = layers.LayerNormalization()

    def call(self, inputs, states):
        h = states[0]
        z, r = keras.ops.split(keras.ops.sigmoid(self.gates(keras.ops.concatenate([inputs, h], axis=-1))), 2, axis=-1)
        n = keras.ops.tanh(self.norm(self.candidate(keras.ops.concatenate([inputs, r * h], axis=-1))))
        h = (1 - z) * n + z * h
        return h, [h]


def keras_activity_net(norm: str = "layer", classes: int = 12) -> keras.Model:
    inputs = keras.Input((None, 6))
    x = layers.RNN(NormalizedGRUCell(128, norm=norm))(inputs)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x))
