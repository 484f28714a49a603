"""BN104 keras-training-flag-missing: a Keras training step (`train_step`, a GradientTape
whose gradients are applied) calls a batch-norm model without `training=True`, reported
at the model call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.engine import fix_source, lint_source

from .conftest import assert_matches_markers, dedent, lint_package, package_markers

CODE = "BN104"

CLASSIFIER = """
import keras
import tensorflow as tf
from keras import layers


def build_classifier(classes=10):
    return keras.Sequential([
        layers.Conv2D(32, 3, use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(classes),
    ])
"""

POSITIVE = [
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers


        class ResidualNet(keras.Model):
            def __init__(self, classes):
                super().__init__()
                self.conv = layers.Conv2D(64, 3, padding="same", use_bias=False)
                self.bn = layers.BatchNormalization()
                self.head = layers.Dense(classes)

            def call(self, x, training=None):
                x = tf.nn.relu(self.bn(self.conv(x), training=training))
                return self.head(tf.reduce_mean(x, axis=(1, 2)))

            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    y_pred = self(x)  # expect: BN104
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                gradients = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
                return {"loss": loss}
        """,
        id="train-step-override-self-call",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers


        class ConvBlock(layers.Layer):
            def __init__(self, filters):
                super().__init__()
                self.conv = layers.Conv2D(filters, 3, padding="same", use_bias=False)
                self.norm = layers.BatchNormalization()

            def call(self, x, training=None):
                return tf.nn.relu(self.norm(self.conv(x), training=training))


        class Encoder(keras.Model):
            def __init__(self):
                super().__init__()
                self.blocks = [ConvBlock(32), ConvBlock(64)]
                self.out = layers.Dense(16)

            def call(self, x, training=None):
                for block in self.blocks:
                    x = block(x, training=training)
                return self.out(layers.Flatten()(x))

            def train_step(self, data):
                images, targets = data
                with tf.GradientTape() as tape:
                    codes = self(images)  # expect: BN104
                    loss = keras.ops.mean(keras.ops.square(codes - targets))
                grads = tape.gradient(loss, self.trainable_weights)
                self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
                return {"loss": loss}
        """,
        id="batch-norm-through-a-project-layer",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers


        class CustomModel(keras.Model):
            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    y_pred = self(x)  # expect: BN104
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                return {"loss": loss}


        inputs = keras.Input(shape=(32,))
        x = layers.Dense(64, use_bias=False)(inputs)
        x = layers.BatchNormalization()(x)
        model = CustomModel(inputs, layers.Dense(1)(layers.ReLU()(x)))
        model.compile(optimizer="adam", loss="mse")
        model.fit(features, targets, epochs=3)
        """,
        id="subclass-built-like-a-functional-model",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()
optimizer = keras.optimizers.Adam(1e-3)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@tf.function
def train_step(images, labels):
    with tf.GradientTape() as tape:
        logits = model(images)  # expect: BN104
        loss = loss_fn(labels, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


for epoch in range(10):
    for images, labels in train_ds:
        train_step(images, labels)
""",
        id="tf-function-train-step-sequential",
    ),
    pytest.param(
        CLASSIFIER + """

class Trainer:
    def __init__(self, model, learning_rate=1e-3):
        self.model = model
        self.optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def train_epoch(self, dataset):
        for images, labels in dataset:
            with tf.GradientTape() as tape:
                loss = self.loss_fn(labels, self.model(images))  # expect: BN104
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))

    def validate(self, dataset):
        return [self.model(images, training=False) for images, _ in dataset]


trainer = Trainer(build_classifier())
for epoch in range(5):
    trainer.train_epoch(train_ds)
    trainer.validate(val_ds)
""",
        id="trainer-class-self-model",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf

        net = keras.applications.ResNet50(weights=None, classes=100)
        optimizer = keras.optimizers.Adam()


        def run(dataset, epochs):
            for epoch in range(epochs):
                for x, y in dataset:
                    with tf.GradientTape() as tape:
                        loss = keras.losses.sparse_categorical_crossentropy(y, net(x))  # expect: BN104
                    optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                                                  net.trainable_variables))
        """,
        id="applications-model-from-scratch-weights-none",
    ),
    pytest.param(
        CLASSIFIER + """

def compute_gradients(network, images, labels):
    with tf.GradientTape() as tape:
        logits = network(images, training=None)  # expect: BN104
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return tape.gradient(loss, network.trainable_variables)


def main(dataset):
    classifier = build_classifier()
    optimizer = keras.optimizers.Adam()
    for images, labels in dataset:
        grads = compute_gradients(classifier, images, labels)
        optimizer.apply_gradients(zip(grads, classifier.trainable_variables))
""",
        id="helper-returns-gradients-caller-applies-training-none",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers

        generator = keras.Sequential([
            layers.Dense(7 * 7 * 128, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
            layers.Reshape((7, 7, 128)),
            layers.Conv2DTranspose(1, 5, strides=4, padding="same", activation="tanh"),
        ])
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(64, 5, strides=2, padding="same", use_bias=False)(inputs)
        x = layers.BatchNormalization()(x)
        discriminator = keras.Model(inputs, layers.Dense(1)(layers.Flatten()(x)))
        g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)


        @tf.function
        def gan_step(images, noise):
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                fake = generator(noise, training=True)
                real_logits = discriminator(images)  # expect: BN104
                fake_logits = discriminator(fake)  # expect: BN104
                g_loss = -tf.reduce_mean(fake_logits)
                d_loss = tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)
            g_opt.apply_gradients(zip(gen_tape.gradient(g_loss, generator.trainable_variables),
                                      generator.trainable_variables))
            d_opt.apply_gradients(zip(disc_tape.gradient(d_loss, discriminator.trainable_variables),
                                      discriminator.trainable_variables))
        """,
        id="gan-functional-discriminator",
    ),
]

NEGATIVE = [
    pytest.param(
        CLASSIFIER + """

model = build_classifier()
optimizer = keras.optimizers.Adam()


@tf.function
def train_step(images, labels):
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))


@tf.function
def test_step(images):
    return model(images)
""",
        id="training-true-and-eager-inference",
    ),
    pytest.param(
        CLASSIFIER + """

def forward(model, images, training):
    return model(images, training=training)


def train(model, dataset, optimizer):
    for images, labels in dataset:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(forward(model, images, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))


train(build_classifier(), train_ds, keras.optimizers.Adam())
""",
        id="training-passed-through-from-a-parameter",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()
optimizer = keras.optimizers.Adam()


def train_step(images, labels, **call_options):
    with tf.GradientTape() as tape:
        logits = model(images, **call_options)
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
""",
        id="training-may-come-in-keyword-arguments",
    ),
    pytest.param(
        CLASSIFIER + """

model = build_classifier()
optimizer = keras.optimizers.Adam(1e-5)


def finetune_step(images, labels):
    with tf.GradientTape() as tape:
        # Batch norm frozen on purpose: fine-tune the weights with the pretrained statistics.
        logits = model(images, training=False)
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
""",
        id="explicit-training-false-in-tape",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers

        mlp = keras.Sequential([layers.Dense(256, activation="relu"), layers.Dropout(0.2), layers.Dense(10)])
        optimizer = keras.optimizers.Adam()


        @tf.function
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = keras.losses.mean_squared_error(y, mlp(x))
            optimizer.apply_gradients(zip(tape.gradient(loss, mlp.trainable_variables), mlp.trainable_variables))
        """,
        id="model-without-batch-norm",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers


        class CustomModel(keras.Model):
            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    loss = self.compute_loss(y=y, y_pred=self(x))
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                return {"loss": loss}


        inputs = keras.Input(shape=(32,))
        model = CustomModel(inputs, layers.Dense(1)(layers.Dense(64, activation="relu")(inputs)))
        model.fit(features, targets, epochs=3)
        """,
        id="subclass-built-like-a-functional-model-without-batch-norm",
    ),
    pytest.param(
        CLASSIFIER + """

def adversarial_pattern(model, image, label):
    with tf.GradientTape() as tape:
        tape.watch(image)
        prediction = model(image)
        loss = keras.losses.sparse_categorical_crossentropy(label, prediction)
    return tf.sign(tape.gradient(loss, image))


perturbation = adversarial_pattern(build_classifier(), image, label)
""",
        id="fgsm-gradient-with-respect-to-the-input",
    ),
    pytest.param(
        """
        import tensorflow as tf

        inputs = tf.keras.Input((28, 28, 1))
        x = tf.keras.layers.BatchNormalization()(inputs)
        model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization()(x))


        def step_1(tensor):
            with tf.GradientTape() as tape:
                tape.watch(tensor)
                out = model(tensor)
            return tape.gradient(out, tensor)


        for i in range(40):
            gradients = step_1(tf.ones((1, 28, 28, 1)))
        """,
        id="input-gradient-in-a-step-named-function",
    ),
    pytest.param(
        """
        import keras
        import tensorflow as tf
        from keras import layers

        base = keras.applications.EfficientNetB0(include_top=False, pooling="avg")
        head = layers.Dense(5)
        optimizer = keras.optimizers.Adam(1e-5)


        @tf.function
        def train_step(images, labels):
            with tf.GradientTape() as tape:
                logits = head(base(images))
                loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            variables = base.trainable_variables + head.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        """,
        id="pretrained-base-kept-in-inference-mode",
    ),
    pytest.param(
        CLASSIFIER + """

teacher = keras.models.load_model("teacher.keras")
teacher.trainable = False
student = build_classifier()
optimizer = keras.optimizers.Adam()
teacher_net = build_classifier()
teacher_net.trainable = False


@tf.function
def distill_step(images):
    with tf.GradientTape() as tape:
        soft = tf.nn.softmax(teacher_net(images))
        loss = keras.losses.kl_divergence(soft, tf.nn.softmax(student(images, training=True)))
    optimizer.apply_gradients(zip(tape.gradient(loss, student.trainable_variables), student.trainable_variables))
""",
        id="frozen-teacher-in-distillation",
    ),
    pytest.param(
        """
        import torch
        import torch.nn as nn

        model = nn.Sequential(nn.Linear(32, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


        def train_step(x, y):
            model.train()
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
        id="torch-train-step",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_the_model_call_in_a_training_step(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


MODULES = {
    "models": """
        import keras
        from keras import layers


        class SegmentationNet(keras.Model):
            def __init__(self, classes):
                super().__init__()
                self.encoder = layers.Conv2D(32, 3, padding="same", use_bias=False)
                self.norm = layers.BatchNormalization()
                self.decoder = layers.Conv2D(classes, 1)

            def call(self, x, training=None):
                return self.decoder(self.norm(self.encoder(x), training=training))
        """,
    "train": """
        import keras
        import tensorflow as tf

        from .models import SegmentationNet


        def fit(dataset, epochs=20):
            net = SegmentationNet(classes=21)
            optimizer = keras.optimizers.Adam()
            for epoch in range(epochs):
                for images, masks in dataset:
                    with tf.GradientTape() as tape:
                        logits = net(images)  # expect: BN104
                        loss = keras.losses.sparse_categorical_crossentropy(masks, logits, from_logits=True)
                    grads = tape.gradient(loss, net.trainable_variables)
                    optimizer.apply_gradients(zip(grads, net.trainable_variables))
        """,
}


def test_model_class_from_another_file(tmp_path: Path) -> None:
    assert lint_package(tmp_path, MODULES, {CODE}) == package_markers(MODULES)


FIXES = [
    pytest.param(
        "        logits = model(images)  # expect: BN104\n",
        "        logits = model(images, training=True)  # expect: BN104\n",
        id="add-keyword",
    ),
    pytest.param(
        "        logits = model(images, training=None)  # expect: BN104\n",
        "        logits = model(images, training=True)  # expect: BN104\n",
        id="replace-none",
    ),
    pytest.param(
        "        logits = model(\n            images,\n        )\n",
        "        logits = model(\n            images, training=True,\n        )\n",
        id="multi-line-call",
    ),
]

FIX_TEMPLATE = CLASSIFIER + """

model = build_classifier()
optimizer = keras.optimizers.Adam()


def train_step(images, labels):
    with tf.GradientTape() as tape:
{call}        loss = tf.reduce_mean(logits)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
"""


@pytest.mark.parametrize(("call", "fixed"), FIXES)
def test_fix_passes_training_true(call: str, fixed: str) -> None:
    before = dedent(FIX_TEMPLATE.format(call=call))
    after = fix_source(before)
    assert after == dedent(FIX_TEMPLATE.format(call=fixed))
    assert fix_source(after) == after
    assert CODE not in {d.code for d in lint_source(after)}
