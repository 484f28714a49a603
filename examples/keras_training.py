"""Keras training code: a custom train_step / test_step, and fine-tuning a pretrained base."""

import keras
import tensorflow as tf
from keras import layers


class FlowerNet(keras.Model):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv = layers.Conv2D(32, 3, padding="same", use_bias=False)
        self.bn = layers.BatchNormalization()
        self.pool = layers.GlobalAveragePooling2D()
        self.head = layers.Dense(num_classes)

    def call(self, images, training=None):
        x = tf.nn.relu(self.bn(self.conv(images), training=training))
        return self.head(self.pool(x))

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            logits = self(images)
            loss = self.compute_loss(y=labels, y_pred=logits)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}

    def test_step(self, data):
        images, labels = data
        logits = self(images, training=True)
        return {"loss": self.compute_loss(y=labels, y_pred=logits)}


def build_finetuning_model(num_classes: int):
    base = keras.applications.EfficientNetB0(include_top=False, input_shape=(224, 224, 3))
    base.trainable = False  # first train the new head only
    inputs = keras.Input(shape=(224, 224, 3))
    features = base(inputs)
    outputs = layers.Dense(num_classes)(layers.GlobalAveragePooling2D()(features))
    return keras.Model(inputs, outputs), base


def train_from_scratch(images, labels):
    model = FlowerNet()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=4, epochs=20)
    one_by_one = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(1000).batch(1)
    model.fit(one_by_one, epochs=5)


def finetune(train_ds, val_ds):
    model, base = build_finetuning_model(5)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_ds, validation_data=val_ds, epochs=10)
    base.trainable = True  # then fine-tune everything with a small learning rate
    model.compile(optimizer=keras.optimizers.Adam(1e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_ds, validation_data=val_ds, epochs=5)
    return model


# Correct code: a custom loop that trains in training mode and evaluates in inference mode.
# Monte Carlo dropout (last) samples in training mode on purpose, but the classifier's batch
# norm then uses batch statistics too: BN107 (a dropout layer that stays active is the fix).
classifier = keras.Sequential([
    layers.Conv2D(32, 3, use_bias=False),
    layers.BatchNormalization(),
    layers.ReLU(),
    layers.GlobalAveragePooling2D(),
    layers.Dropout(0.3),
    layers.Dense(5),
])
optimizer = keras.optimizers.Adam(1e-3)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@tf.function
def train_batch(images, labels):
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, classifier(images, training=True))
    gradients = tape.gradient(loss, classifier.trainable_variables)
    optimizer.apply_gradients(zip(gradients, classifier.trainable_variables))
    return loss


def evaluate(dataset):
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    for images, labels in dataset:
        accuracy.update_state(labels, classifier(images, training=False))
    return accuracy.result()


def mc_dropout_predict(images, samples: int = 20):
    return tf.reduce_mean(tf.stack([classifier(images, training=True) for _ in range(samples)]), axis=0)
