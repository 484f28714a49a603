"""BN107 keras-inference-in-training-mode: a Keras batch-norm model called with
`training=True` in inference code (evaluate/predict functions, `test_step` /
`predict_step`), reported at the call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.engine import fix_source, lint_source

from .conftest import assert_matches_markers, dedent, lint_package, package_markers

CODE = "BN107"

CLASSIFIER = """
import keras
import numpy as np
import tensorflow as tf
from keras import layers


def build_classifier(classes=10):
    return keras.Sequential([
        layers.Conv2D(32, 3, use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.3),
        layers.Dense(classes),
    ])
"""

SUBCLASS = """
import keras
import tensorflow as tf
from keras import layers


class Classifier(keras.Model):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = layers.Conv2D(32, 3, use_bias=False)
        self.bn = layers.BatchNormalization()
        self.head = layers.Dense(classes)

    def call(self, x, training=None):
        return self.head(tf.reduce_mean(tf.nn.relu(self.bn(self.conv(x), training=training)), axis=(1, 2)))
"""

POSITIVE = [
    pytest.param(
        CLASSIFIER + """

model = build_classifier()


def evaluate(dataset):
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    for images, labels in dataset:
        logits = model(images, training=True)  # expect: BN107
        accuracy.update_state(labels, logits)
    return accuracy.result()
""",
        id="evaluate-function-sequential",
    ),
    pytest.param(
        SUBCLASS + """

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=True)  # expect: BN107
        loss = self.compute_loss(y=y, y_pred=y_pred)
        return {"loss": loss}
""",
        id="test-step-override",
    ),
    pytest.param(
        SUBCLASS + """

    def predict_step(self, data):
        return tf.nn.softmax(self(data, training=True))  # expect: BN107
""",
        id="predict-step-override",
    ),
    pytest.param(
        CLASSIFIER + """

class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = keras.optimizers.Adam()

    def train_epoch(self, dataset):
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(self.model(x, training=True))
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))

    def validate(self, dataset):
        losses = []
        for x, y in dataset:
            losses.append(tf.reduce_mean(self.model(x, training=True)))  # expect: BN107
        return np.mean(losses)


trainer = Trainer(build_classifier())
for epoch in range(20):
    trainer.train_epoch(train_ds)
    print(epoch, trainer.validate(val_ds))
""",
        id="trainer-validate-method",
    ),
    pytest.param(
        """
        import keras
        import numpy as np


        def predict_labels(network, images):
            probabilities = network(images, training=True)  # expect: BN107
            return np.argmax(probabilities, axis=-1)


        def main(images):
            network = keras.applications.MobileNetV2(weights="imagenet")
            return predict_labels(network, keras.applications.mobilenet_v2.preprocess_input(images))
        """,
        id="helper-with-applications-model-passed-in",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf

        model = keras.models.load_model("checkpoints/best.keras")


        @tf.function
        def run_inference(batch):
            return model(batch, training=True)  # expect: BN107
        """,
        id="loaded-model-run-inference",
    ),
    # Monte Carlo dropout on a model with batch norm: the batch norm uses batch statistics too.
    pytest.param(
        CLASSIFIER + """

model = build_classifier()


def mc_dropout_predict(images, samples=30):
    predictions = np.stack([model(images, training=True) for _ in range(samples)])  # expect: BN107
    return predictions.mean(axis=0), predictions.std(axis=0)
""",
        id="mc-dropout-named-function",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()


def predict(images, passes=20):
    outputs = []
    for _ in range(passes):
        outputs.append(model(images, training=True))  # expect: BN107
    return tf.reduce_mean(tf.stack(outputs), axis=0)
""",
        id="mc-dropout-range-loop",
    ),
]

NEGATIVE = [
    pytest.param(
        CLASSIFIER + """

model = build_classifier()


def evaluate(dataset):
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    for images, labels in dataset:
        accuracy.update_state(labels, model(images, training=False))
    return accuracy.result()
""",
        id="training-false",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers


        def downsample(filters):
            return keras.Sequential([layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=False),
                                     layers.BatchNormalization(), layers.LeakyReLU()])


        generator = keras.Sequential([downsample(64), downsample(128),
                                      layers.Conv2DTranspose(3, 4, strides=4, padding="same", activation="tanh")])


        def predict_images(test_input):
            # pix2pix: batch statistics at test time, on purpose.
            return generator(test_input, training=True)
        """,
        id="pix2pix-generator",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()


def predict(images, training=False):
    return model(images, training=training)
""",
        id="training-passed-through-from-a-parameter",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        mlp = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dropout(0.5), layers.Dense(1)])


        def evaluate(x):
            return mlp(x, training=True)
        """,
        id="model-without-batch-norm",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()
optimizer = keras.optimizers.Adam()


def train_one_epoch(dataset):
    for images, labels in dataset:
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(labels, model(images, training=True), from_logits=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))


def test_output_shape():
    assert model(np.zeros((2, 32, 32, 3)), training=True).shape == (2, 10)
""",
        id="training-code-and-a-unit-test",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()


def evaluate_robustness(images, labels):
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = keras.losses.sparse_categorical_crossentropy(labels, model(images, training=True), from_logits=True)
    return tape.gradient(loss, images)
""",
        id="inside-a-gradient-tape",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_training_true_in_inference_code(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


MODULES = {
    "networks": SUBCLASS,
    "inference": """
        import numpy as np

        from .networks import Classifier


        def predict(images, weights_path):
            classifier = Classifier(classes=5)
            classifier.load_weights(weights_path)
            return np.argmax(classifier(images, training=True), axis=-1)  # expect: BN107
        """,
}


def test_model_class_from_another_file(tmp_path: Path) -> None:
    assert lint_package(tmp_path, MODULES, {CODE}) == package_markers(MODULES)


def test_fix_passes_training_false() -> None:
    before = dedent(POSITIVE[0].values[0])
    after = fix_source(before)
    assert after == before.replace("model(images, training=True)  # expect", "model(images, training=False)  # expect")
    assert fix_source(after) == after
    assert CODE not in {d.code for d in lint_source(after)}


def test_mc_dropout_message_points_to_a_dropout_that_stays_active() -> None:
    source = CLASSIFIER + """

model = build_classifier()


def sample_predictions(images, samples=10):
    return tf.stack([model(images, training=True) for _ in range(samples)])
"""
    (finding,) = [d for d in lint_source(dedent(source)) if d.code == CODE]
    assert "sample dropout" in finding.message and "stays active" in finding.message
    assert finding.fix is None
