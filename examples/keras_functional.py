"""A small CIFAR classifier built with the Keras functional API."""

import keras
from keras import layers


def build_classifier(num_classes: int = 10) -> keras.Model:
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(32, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(64, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.1)(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.BatchNormalization()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def build_embedding_head(units: int = 128) -> keras.Sequential:
    """A head whose author meant a momentum: epsilon=0.99 barely normalizes."""
    return keras.Sequential([
        layers.Dense(units, use_bias=False),
        layers.BatchNormalization(epsilon=0.99),
        layers.ReLU(),
    ])
