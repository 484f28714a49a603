"""The runtime checker on real Keras 3 (TensorFlow) models, in one worker run."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Checked, line_of, verify_sources

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

FUNCTIONAL = """
    import keras
    from keras import layers


    def build_model() -> keras.Model:
        inputs = keras.Input(shape=(8, 8, 3))
        x = layers.Conv2D(8, 3, padding="same")(inputs)
        x = layers.BatchNormalization(momentum=0.1)(x)
        x = layers.ReLU()(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(16, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
        x = layers.BatchNormalization()(x)
        outputs = layers.Dense(4)(x)
        return keras.Model(inputs, outputs)
"""

CHANNELS_FIRST = """
    import numpy as np
    from tensorflow import keras


    class ChannelsFirstNet(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, data_format="channels_first")
            self.bn = keras.layers.BatchNormalization()

        def call(self, images, training=False):
            return self.bn(self.conv(images), training=training)


    def example_input():
        return np.zeros((4, 3, 6, 6), "float32")
"""

DENSE = """
    import keras
    from keras import layers


    def build_model() -> keras.Model:
        inputs = keras.Input(shape=(10,))
        x = layers.Dense(16, use_bias=False)(inputs)
        x = layers.BatchNormalization()(x)
        x = layers.Dense(8, activation="relu")(x)  # finding: BN304
        x = layers.BatchNormalization()(x)
        return keras.Model(inputs, layers.Dense(3)(x))


    def predict(model, x):
        return model(x, training=True)  # finding: BN107


    BATCH_SIZE = 1  # finding: BN201
"""

LOOPED = """
    import keras
    import numpy as np
    from keras import layers


    class Looped(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.inp = layers.Dense(8)
            self.bn = layers.BatchNormalization()  # finding: BN301

        def call(self, x, training=False):
            h = 0.0
            for t in range(x.shape[1]):
                h = keras.ops.tanh(self.bn(self.inp(x[:, t]), training=training) + h)
            return h


    def example_input():
        return np.zeros((4, 5, 6), "float32")
"""

CELL = """
    import keras
    from keras import layers


    class NormedGRUCell(layers.Layer):
        def __init__(self, units: int = 24, **kwargs) -> None:
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units
            self.candidate = layers.Dense(units, use_bias=False)
            self.norm = layers.BatchNormalization()  # finding: BN301

        def call(self, inputs, states):
            n = keras.ops.tanh(self.norm(self.candidate(keras.ops.concatenate([inputs, states[0]], axis=-1))))
            return n, [n]
"""

TWO_INPUTS = """
    import keras
    from keras import layers


    def build_model() -> keras.Model:
        image, meta = keras.Input(shape=(10,)), keras.Input(shape=(4,))
        x = layers.Dense(16, use_bias=False)(layers.Concatenate()([image, meta]))
        return keras.Model([image, meta], layers.Dense(2)(layers.BatchNormalization()(x)))


    def predict(model, image, meta):
        return model([image, meta], training=True)  # finding: BN107
"""

SOURCES = {"two_inputs.py": TWO_INPUTS, "cell.py": CELL, "functional.py": FUNCTIONAL, "channels_first.py": CHANNELS_FIRST, "dense.py": DENSE, "looped.py": LOOPED}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return verify_sources(tmp_path_factory.mktemp("keras_models"), SOURCES)


def test_input_shapes_come_from_keras_input_or_example_input(checked: Checked) -> None:
    sources = {Path(m["path"]).name: (tuple(m["input_shape"]), m["input_source"]) for m in checked.verification.models}
    assert sources["functional.py"] == ((8, 8, 8, 3), "from the model's keras.Input")
    assert sources["channels_first.py"] == ((4, 3, 6, 6), "from example_input()")


def test_bn304_bias_cancelled_fix_verified_and_moving_mean_migrated(checked: Checked) -> None:
    runtime = checked.runtime("functional.py", line_of(FUNCTIONAL, "Conv2D(8, 3"), "BN304")
    numbers = runtime["numbers"]
    assert runtime["verdict"] == "confirmed"
    assert runtime["fix_verified"] is True
    assert numbers["parameters_after"] == numbers["parameters_before"] - 8
    assert numbers["train_max_difference"] < 1e-4
    assert numbers["eval_max_difference_migrated"] < 1e-4
    assert numbers["eval_max_difference_bias_dropped"] > 1e-2


def test_bn304_fused_activation_is_refuted(checked: Checked) -> None:
    runtime = checked.runtime("dense.py", line_of(DENSE, "finding: BN304"), "BN304")
    assert runtime["verdict"] == "not-reproduced"


def test_bn306_pytorch_momentum_in_keras(checked: Checked) -> None:
    runtime = checked.runtime("functional.py", line_of(FUNCTIONAL, "momentum=0.1"), "BN306")
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["batch_weight_measured"] == pytest.approx(0.9, abs=1e-4)
    assert runtime["fix_verified"] is True


def test_bn305_dropout_before_batch_norm(checked: Checked) -> None:
    runtime = checked.runtime("functional.py", line_of(FUNCTIONAL, "x = layers.BatchNormalization()(x)"), "BN305")
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["ratio"] > 1.2


def test_bn302_default_axis_on_channels_first_data(checked: Checked) -> None:
    runtime = checked.runtime("channels_first.py", line_of(CHANNELS_FIRST, "self.bn = "), "BN302")
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["normalized_axis"] == 3 and runtime["numbers"]["channel_axis"] == 1


def test_bn201_batch_of_one_returns_beta(checked: Checked) -> None:
    runtime = checked.runtime("dense.py", line_of(DENSE, "finding: BN201"), "BN201")
    assert runtime["verdict"] == "confirmed"
    assert "outputs its beta" in runtime["evidence"]
    assert runtime["numbers"]["remedy_runs"] is True


def test_bn107_training_true_at_inference(checked: Checked) -> None:
    runtime = checked.runtime("dense.py", line_of(DENSE, "finding: BN107"), "BN107")
    assert runtime["verdict"] == "confirmed"
    assert runtime["fix_verified"] is True
    assert runtime["numbers"]["spread_eval"] < 1e-5


def test_bn301_batch_norm_shared_across_time_steps(checked: Checked) -> None:
    runtime = checked.runtime("looped.py", line_of(LOOPED, "finding: BN301"), "BN301")
    assert runtime["verdict"] == "confirmed"
    assert runtime["numbers"]["calls_per_sequence"] == 5
    assert runtime["numbers"]["layer_norm_runs"] is True


def test_bn301_keras_rnn_cell_is_driven_with_states_from_state_size(checked: Checked) -> None:
    model = next(m for m in checked.verification.models if Path(m["path"]).name == "cell.py")
    assert model["inputs"] == "(8, 16), [(8, 24)]" and "state_size = 24" in model["input_source"]
    runtime = checked.runtime("cell.py", line_of(CELL, "finding: BN301"), "BN301")
    assert runtime["verdict"] == "confirmed", runtime["evidence"]
    assert runtime["numbers"]["calls_per_sequence"] == 8
    assert runtime["numbers"]["largest_eval_offset"] > 0.3


def test_a_model_with_two_keras_inputs_is_fed_both(checked: Checked) -> None:
    model = next(m for m in checked.verification.models if Path(m["path"]).name == "two_inputs.py")
    assert model["inputs"] == "[(8, 10), (8, 4)]"
    runtime = checked.runtime("two_inputs.py", line_of(TWO_INPUTS, "finding: BN107"), "BN107")
    assert runtime["verdict"] == "confirmed", runtime["evidence"]
