"""A subclassed Keras model fed NCHW tensors exported from a PyTorch data pipeline."""

import tensorflow as tf
from tensorflow import keras


class ChannelsFirstNet(keras.Model):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = keras.layers.Conv2D(32, 3, padding="same", use_bias=False, data_format="channels_first")
        self.bn = keras.layers.BatchNormalization()
        self.pool = keras.layers.GlobalAveragePooling2D(data_format="channels_first")
        self.fc = keras.layers.Dense(128)
        self.fc_bn = keras.layers.BatchNormalization()
        self.head = keras.layers.Dense(num_classes)

    def call(self, images, training=False):
        x = tf.nn.relu(self.bn(self.conv(images), training=training))
        x = self.fc_bn(self.fc(self.pool(x)), training=training)
        return self.head(tf.nn.relu(x))
