"""BN301 bn-in-recurrence: batch norm in an RNN cell (reported at its constructor) or called
at every step of a time loop (reported at the call), in torch and Keras."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.config import load_config
from bnlint.engine import RunOptions, lint_paths

from .conftest import assert_matches_markers, expected_at

CODE = "BN301"

POSITIVE = [
    pytest.param(
        """
        import torch
        from torch import nn
        from torch.nn import BatchNorm1d as BN


        class BNLSTMCell(nn.RNNCellBase):
            def __init__(self, input_size, hidden_size):
                super().__init__(input_size, hidden_size, bias=False, num_chunks=4)
                self.bn_ih = BN(4 * hidden_size)  # expect: BN301
                self.bn_hh = BN(4 * hidden_size)  # expect: BN301

            def forward(self, x, state):
                h, c = state
                gates = self.bn_ih(x @ self.weight_ih.t()) + self.bn_hh(h @ self.weight_hh.t())
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                return torch.sigmoid(o) * torch.tanh(c), c
        """,
        id="rnncellbase-subclass-aliased-bn",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class NormGRUCell(nn.GRUCell):
            def __init__(self, input_size, hidden_size, norm_layer=nn.BatchNorm1d):
                super().__init__(input_size, hidden_size)
                self.norm = norm_layer(hidden_size)  # expect: BN301

            def forward(self, x, hx=None):
                return self.norm(super().forward(x, hx))
        """,
        id="grucell-subclass-norm-layer-default",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class ConvLSTMCell(nn.Module):
            def __init__(self, in_channels, hidden_channels):
                super().__init__()
                self.conv = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(4 * hidden_channels)  # expect: BN301

            def forward(self, x, hidden):
                h, c = hidden
                gates = self.bn(self.conv(torch.cat([x, h], dim=1)))
                i, f, g, o = gates.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                return torch.sigmoid(o) * torch.tanh(c), c


        class ConvLSTM(nn.Module):
            def __init__(self, in_channels, hidden_channels):
                super().__init__()
                self.hidden_channels = hidden_channels
                self.cell = ConvLSTMCell(in_channels, hidden_channels)

            def forward(self, frames):
                b, t, _, height, width = frames.shape
                h = c = frames.new_zeros(b, self.hidden_channels, height, width)
                for step in range(frames.size(1)):
                    h, c = self.cell(frames[:, step], (h, c))
                return h
        """,
        id="plain-module-cell-called-per-step",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self, input_size, hidden_size, seq_len):
                super().__init__()
                self.seq_len = seq_len
                self.hidden_size = hidden_size
                self.rnn = nn.RNNCell(input_size, hidden_size)
                self.bn = nn.BatchNorm1d(hidden_size)

            def forward(self, x):
                h = x.new_zeros(x.size(0), self.hidden_size)
                for t in range(self.seq_len):
                    h = self.bn(self.rnn(x[:, t], h))  # expect: BN301
                return h
        """,
        id="same-bn-called-in-time-loop",
    ),
    pytest.param(
        """
        from functools import partial

        import torch
        import torch.nn as nn

        norm = partial(nn.BatchNorm1d, eps=1e-3)


        class Decoder(nn.Module):
            def __init__(self, vocab, hidden):
                super().__init__()
                self.embed = nn.Embedding(vocab, hidden)
                self.cell = nn.GRUCell(hidden, hidden)
                self.proj = nn.Sequential(nn.Linear(hidden, hidden, bias=False), norm(hidden), nn.ReLU())
                self.out = nn.Linear(hidden, vocab)

            def forward(self, h, max_len):
                token = torch.zeros(h.size(0), dtype=torch.long, device=h.device)
                logits = []
                t = 0
                while t < max_len:
                    h = self.cell(self.embed(token), h)
                    step = self.out(self.proj(h))  # expect: BN301
                    token = step.argmax(-1)
                    logits.append(step)
                    t += 1
                return torch.stack(logits, 1)
        """,
        id="while-decoding-loop-partial-bn-in-sequential",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Recurrent(nn.Module):
            def __init__(self, size):
                super().__init__()
                self.ih = nn.Linear(size, size, bias=False)
                self.hh = nn.Linear(size, size, bias=False)
                self.norm = nn.BatchNorm1d(size)

            def _step(self, x_t, h):
                return torch.tanh(self.norm(self.ih(x_t) + self.hh(h)))  # expect: BN301

            def forward(self, x, h):
                outputs = []
                for x_t in x.unbind(1):
                    h = self._step(x_t, h)
                    outputs.append(h)
                return torch.stack(outputs, 1), h
        """,
        id="bn-call-in-a-step-method",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F


        class SharedStatsRNN(nn.Module):
            def __init__(self, size):
                super().__init__()
                self.cell = nn.RNNCell(size, size)
                self.register_buffer("running_mean", torch.zeros(size))
                self.register_buffer("running_var", torch.ones(size))

            def forward(self, x, h):
                for t in range(x.size(0)):
                    h = self.cell(x[t], h)
                    h = F.batch_norm(h, self.running_mean, self.running_var, training=self.training)  # expect: BN301
                return h
        """,
        id="functional-bn-with-shared-buffers",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class StackedRNN(nn.Module):
            def __init__(self, size, num_layers):
                super().__init__()
                self.num_layers = num_layers
                self.cells = nn.ModuleList([nn.LSTMCell(size, size) for _ in range(num_layers)])
                self.norms = nn.ModuleList([nn.BatchNorm1d(size) for _ in range(num_layers)])

            def forward(self, x, states):
                for x_t in x.unbind(1):
                    for layer in range(self.num_layers):
                        h, c = self.cells[layer](x_t, states[layer])
                        x_t = self.norms[layer](h)  # expect: BN301
                        states[layer] = (h, c)
                return x_t
        """,
        id="per-layer-bn-shared-across-time",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class FrameEncoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 32, 3, stride=2, bias=False)
                self.bn = nn.BatchNorm2d(32)
                self.pool = nn.AdaptiveAvgPool2d(1)

            def forward(self, frame):
                return self.pool(self.bn(self.conv(frame)).relu()).flatten(1)


        class VideoClassifier(nn.Module):
            def __init__(self, classes):
                super().__init__()
                self.encoder = FrameEncoder()
                self.gru = nn.GRUCell(32, 64)
                self.head = nn.Linear(64, classes)

            def forward(self, video, h):
                for t in range(video.size(1)):
                    h = self.gru(self.encoder(video[:, t]), h)  # expect: BN301
                return self.head(h)
        """,
        id="module-with-bn-applied-to-each-frame-of-a-time-loop",
    ),
    pytest.param(
        """
        import keras
        from keras import layers


        class MinimalRNNCell(layers.Layer):
            def __init__(self, units, **kwargs):
                super().__init__(**kwargs)
                self.units = units
                self.state_size = units
                self.kernel = layers.Dense(units, use_bias=False)
                self.norm = layers.BatchNormalization()  # expect: BN301

            def call(self, inputs, states, training=None):
                h = self.kernel(keras.ops.concatenate([inputs, states[0]], axis=-1))
                h = keras.ops.tanh(self.norm(h, training=training))
                return h, [h]
        """,
        id="keras-layer-with-state-size",
    ),
    pytest.param(
        """
        import tensorflow as tf


        class PeepholeCell(tf.keras.layers.AbstractRNNCell):
            def __init__(self, units):
                super().__init__()
                self.units = units
                self.dense = tf.keras.layers.Dense(4 * units, use_bias=False)
                self.bn = tf.keras.layers.BatchNormalization(momentum=0.99)  # expect: BN301

            @property
            def state_size(self):
                return [self.units, self.units]

            def call(self, inputs, states):
                h, c = states
                z = self.bn(self.dense(tf.concat([inputs, h], axis=-1)))
                i, f, g, o = tf.split(z, 4, axis=-1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                return h, [h, c]
        """,
        id="keras-abstract-rnn-cell",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        from .base import CellBase


        class NormCell(CellBase):
            def __init__(self, units):
                super().__init__(units)
                self.norm = layers.BatchNormalization()  # expect: BN301

            def call(self, inputs, states):
                h = self.norm(self.transition(inputs, states[0]))
                return h, [h]


        cell = NormCell(64)
        inputs = keras.Input((None, 16))
        outputs = layers.Bidirectional(layers.RNN(cell))(inputs)
        stacked = layers.RNN(layers.StackedRNNCells([NormCell(32), NormCell(32)]))
        """,
        id="keras-class-passed-to-rnn-through-a-variable",
    ),
    pytest.param(
        """
        import keras
        from keras import layers


        class Smoother(keras.Model):
            def __init__(self, units):
                super().__init__()
                self.dense = layers.Dense(units, use_bias=False)
                self.bn = layers.BatchNormalization()

            def call(self, inputs, training=False):
                state = keras.ops.zeros_like(inputs[:, 0])
                for t in range(inputs.shape[1]):
                    state = 0.5 * state + self.bn(self.dense(inputs[:, t]), training=training)  # expect: BN301
                return state
        """,
        id="keras-time-loop-in-call",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import torch.nn as nn


        class Tagger(nn.Module):
            def __init__(self, size, tags):
                super().__init__()
                self.lstm = nn.LSTM(size, size, num_layers=2, batch_first=True)
                self.bn = nn.BatchNorm1d(size)
                self.head = nn.Linear(size, tags)

            def forward(self, x):
                out, _ = self.lstm(x)
                return self.head(self.bn(out.transpose(1, 2)).transpose(1, 2))
        """,
        id="bn-over-the-whole-lstm-output",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        model = keras.Sequential([
            keras.Input((None, 16)),
            layers.LSTM(64, return_sequences=True),
            layers.BatchNormalization(),
            layers.TimeDistributed(layers.BatchNormalization()),
            layers.GRU(32),
            layers.Dense(1),
        ])
        """,
        id="keras-bn-over-sequences-and-time-distributed",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, size):
                super().__init__()
                self.fc = nn.Linear(size, size, bias=False)
                self.bn = nn.BatchNorm1d(size)

            def forward(self, x):
                return self.bn(self.fc(x)).relu()


        class Deep(nn.Module):
            def __init__(self, size, num_layers):
                super().__init__()
                self.num_layers = num_layers
                self.layers = nn.ModuleList([Block(size) for _ in range(num_layers)])
                self.norms = nn.ModuleList([nn.BatchNorm1d(size) for _ in range(num_layers)])

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                for i in range(self.num_layers):
                    x = self.norms[i](x)
                for i in range(len(self.layers)):
                    x = self.layers[i](x)
                return x
        """,
        id="depth-loops-over-layers",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class LNGRUCell(nn.RNNCellBase):
            def __init__(self, input_size, hidden_size):
                super().__init__(input_size, hidden_size, bias=True, num_chunks=3)
                self.norm = nn.LayerNorm(3 * hidden_size)

            def forward(self, x, h):
                r, z, n = self.norm(x @ self.weight_ih.t() + h @ self.weight_hh.t()).chunk(3, 1)
                return (1 - torch.sigmoid(z)) * torch.tanh(n) + torch.sigmoid(z) * h
        """,
        id="layer-norm-inside-a-cell",
    ),
    pytest.param(
        """
        import torch.nn as nn


        class ConvStem(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(40, 128, 5, bias=False)
                self.bn = nn.BatchNorm1d(128)

            def forward(self, x):
                return self.bn(self.conv(x)).relu()


        class SpeechModel(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = ConvStem()
                self.rnn = nn.LSTM(128, 256, batch_first=True)

            def forward(self, x):
                out, _ = self.rnn(self.stem(x).transpose(1, 2))
                return out
        """,
        id="bn-in-a-non-recurrent-module-next-to-an-lstm",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class RecurrentBN(nn.Module):
            def __init__(self, size, max_steps):
                super().__init__()
                self.max_steps = max_steps
                self.cell = nn.RNNCell(size, size)
                self.bns = nn.ModuleList([nn.BatchNorm1d(size) for _ in range(max_steps)])

            def forward(self, x, h):
                for t, x_t in enumerate(x.unbind(1)):
                    h = self.bns[min(t, self.max_steps - 1)](self.cell(x_t, h))
                return h
        """,
        id="separate-bn-per-time-step",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class LiGRULayer(nn.Module):
            def __init__(self, input_size, hidden_size):
                super().__init__()
                self.w = nn.Linear(input_size, 2 * hidden_size, bias=False)
                self.u = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
                self.norm = nn.BatchNorm1d(2 * hidden_size)

            def forward(self, x, hx):
                w = self.w(x)
                w = self.norm(w.reshape(-1, w.shape[2])).reshape(w.shape)
                return self._ligru_cell(w, hx)

            def _ligru_cell(self, w, ht):
                hiddens = []
                for k in range(w.shape[1]):
                    at, zt = (w[:, k] + self.u(ht)).chunk(2, 1)
                    zt = torch.sigmoid(zt)
                    ht = zt * ht + (1 - zt) * torch.relu(at)
                    hiddens.append(ht)
                return torch.stack(hiddens, dim=1)
        """,
        id="bn-on-the-feed-forward-input-before-the-time-loop",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Backbone(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 64, 3, bias=False)
                self.bn = nn.BatchNorm2d(64)

            def forward(self, x):
                return self.bn(self.conv(x)).relu()


        class MultiCrop(nn.Module):
            def __init__(self, iterations):
                super().__init__()
                self.backbone = Backbone()
                self.iterations = iterations

            def forward(self, crops, features):
                outputs = [self.backbone(crop) for crop in crops]
                for crop in crops:
                    outputs.append(self.backbone(crop))
                for feature in features:
                    outputs.append(self.backbone(feature))
                x = crops[0]
                for _ in range(self.iterations):
                    x = self.backbone(x)
                return outputs, x
        """,
        id="loops-over-crops-features-and-refinement-iterations",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Seq2Seq(nn.Module):
            def __init__(self, size):
                super().__init__()
                self.cell = nn.GRUCell(size, size)
                self.bn = nn.BatchNorm1d(size)

            def forward(self, x):
                return self.bn(x)

            def generate(self, h, steps):
                outputs = []
                for t in range(steps):
                    h = self.bn(self.cell(h, h))
                    outputs.append(h)
                return outputs
        """,
        id="loop-outside-forward",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class Pyramid(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.down = nn.Sequential(nn.Conv2d(channels, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels))
                self.fuse = nn.BatchNorm2d(channels)

            def forward(self, x, features):
                while x.size(-1) > 1:
                    x = self.down(x)
                out = x
                for i in range(x.size(0)):
                    out = torch.add(out, self.fuse(x[i:i + 1]))
                for feature in features:
                    out = torch.cat([out, self.fuse(feature)], 1)
                return out
        """,
        id="downsampling-while-and-per-sample-and-concat-loops",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class UpdateBlock(nn.Module):
            def __init__(self, hidden):
                super().__init__()
                self.gru = nn.Conv2d(2 * hidden, hidden, 3, padding=1)
                self.flow = nn.Conv2d(hidden, 2, 3, padding=1)

            def forward(self, hidden, context):
                hidden = torch.tanh(self.gru(torch.cat([hidden, context], 1)))
                return hidden, self.flow(hidden)


        class Raft(nn.Module):
            def __init__(self, hidden, num_flow_updates):
                super().__init__()
                self.num_flow_updates = num_flow_updates
                self.encoder = nn.Sequential(nn.Conv2d(3, 2 * hidden, 7, 2, 3, bias=False), nn.BatchNorm2d(2 * hidden))
                self.update_block = UpdateBlock(hidden)

            def forward(self, image):
                hidden, context = self.encoder(image).chunk(2, 1)
                flows = []
                for _ in range(self.num_flow_updates):
                    hidden, delta = self.update_block(hidden, context)
                    flows.append(delta)
                return flows
        """,
        id="raft-like-refinement-loop-bn-only-before-it",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn


        class TabNetLike(nn.Module):
            def __init__(self, dim, n_steps):
                super().__init__()
                self.n_steps = n_steps
                self.initial_bn = nn.BatchNorm1d(dim)
                self.shared = nn.Linear(dim, dim, bias=False)
                self.feat_transformers = nn.ModuleList(
                    [nn.Sequential(self.shared, nn.BatchNorm1d(dim), nn.ReLU()) for _ in range(n_steps)])
                self.att_transformers = nn.ModuleList(
                    [nn.Sequential(nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim)) for _ in range(n_steps)])

            def forward(self, x):
                x = self.initial_bn(x)
                prior = torch.ones_like(x)
                outputs = []
                for step in range(self.n_steps):
                    mask = torch.softmax(self.att_transformers[step](prior), -1)
                    prior = prior * (1.5 - mask)
                    outputs.append(self.feat_transformers[step](mask * x))
                return outputs
        """,
        id="tabnet-like-modules-per-decision-step",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_bn_in_the_recurrent_step(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


# ----- a cell in another file of the package --------------------------------------------------

CELLS = """\
import torch
import torch.nn as nn


class NormRNNCell(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.ih = nn.Linear(size, size, bias=False)
        self.hh = nn.Linear(size, size, bias=False)
        self.bn = nn.BatchNorm1d(size)  # expect: BN301

    def forward(self, x, hidden):
        return torch.tanh(self.bn(self.ih(x) + self.hh(hidden)))


class BNLSTMCell(nn.LSTMCell):
    def __init__(self, size):
        super().__init__(size, size)
        self.bn = nn.BatchNorm1d(size)  # expect: BN301

    def forward(self, x, state):
        h, c = super().forward(x, state)
        return self.bn(h), c
"""

MODEL = """\
import torch
import torch.nn as nn

from . import NormRNNCell  # re-exported by the package
from .cells import BNLSTMCell


class Encoder(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.size = size
        self.rnn = NormRNNCell(size)
        self.lstm = BNLSTMCell(size)

    def forward(self, x):
        h = c = x.new_zeros(x.size(0), self.size)
        for t in range(x.size(1)):
            h = self.rnn(x[:, t], h)
            h, c = self.lstm(h, (h, c))
        return h
"""


def test_cell_in_another_file(tmp_path: Path) -> None:
    package = tmp_path / "proj" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .cells import BNLSTMCell, NormRNNCell\n")
    (package / "cells.py").write_text(CELLS)
    (package / "model.py").write_text(MODEL)
    run = lint_paths([str(package)], load_config(tmp_path), RunOptions(jobs=1, use_cache=False))
    found = {Path(result.path).name: [(d.code, d.line) for d in result.diagnostics] for result in run.results}
    # Both cells are reported at their batch norms, in their own file: the explicit cell by
    # that file alone, the plain module because its caller feeds its output back; the calls
    # of the cells are not reported again.
    assert found == {"__init__.py": [], "cells.py": expected_at(CELLS), "model.py": []}


def test_a_cached_finding_follows_the_imported_cell(tmp_path: Path) -> None:
    package = tmp_path / "proj" / "models"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .cells import BNLSTMCell, NormRNNCell\n")
    (package / "cells.py").write_text(CELLS)
    (package / "model.py").write_text(MODEL)
    options = RunOptions(jobs=1, cache_dir=tmp_path / "cache")

    def cell_findings() -> list[tuple[str, int]]:
        run = lint_paths([str(package)], load_config(tmp_path), options)
        return [(d.code, d.line) for result in run.results if result.path.endswith("cells.py")
                for d in result.diagnostics]

    assert cell_findings() == expected_at(CELLS)
    assert cell_findings() == expected_at(CELLS)  # from the cache: the caller's evidence is kept
    (package / "cells.py").write_text(CELLS.replace("BatchNorm1d", "LayerNorm"))
    assert cell_findings() == []


ENCODER = """\
import torch.nn as nn


class FrameEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, bias=False)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, frame):
        return self.bn(self.conv(frame)).mean((2, 3))
"""

VIDEO = """\
import torch.nn as nn

from .encoder import FrameEncoder


class VideoNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = FrameEncoder()
        self.gru = nn.GRUCell(16, 16)

    def forward(self, video, h):
        for t in range(video.size(1)):
            h = self.gru(self.encoder(video[:, t]), h)  # expect: BN301
        return h
"""


def test_module_of_another_file_applied_at_every_step(tmp_path: Path) -> None:
    package = tmp_path / "proj" / "video"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "encoder.py").write_text(ENCODER)
    (package / "model.py").write_text(VIDEO)
    run = lint_paths([str(package)], load_config(tmp_path), RunOptions(jobs=1, use_cache=False))
    found = {Path(result.path).name: [(d.code, d.line) for d in result.diagnostics] for result in run.results}
    # Its output is not fed back: no cell, so the finding is the call inside the loop.
    assert found == {"__init__.py": [], "encoder.py": [], "model.py": expected_at(VIDEO)}
