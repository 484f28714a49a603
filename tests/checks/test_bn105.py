"""BN105 keras-finetune-bn-mode: a pretrained Keras base called without `training=False`
while building a functional model, and trainable at some point; reported at the call of
the base."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint.engine import fix_source, lint_source

from .conftest import assert_matches_markers, dedent, lint_package, package_markers

CODE = "BN105"

POSITIVE = [
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.ResNet50(include_top=False, input_shape=(224, 224, 3))
        base.trainable = False
        inputs = keras.Input(shape=(224, 224, 3))
        x = keras.applications.resnet50.preprocess_input(inputs)
        x = base(x)  # expect: BN105
        x = layers.GlobalAveragePooling2D()(x)
        outputs = layers.Dense(5)(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(train_ds, epochs=10)

        base.trainable = True
        model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy")
        model.fit(train_ds, epochs=5)
        """,
        id="frozen-then-unfrozen",
    ),
    pytest.param(
        """
        from tensorflow import keras
        from tensorflow.keras import layers

        backbone = keras.applications.MobileNetV2(input_shape=(160, 160, 3), include_top=False)
        inputs = keras.Input(shape=(160, 160, 3))
        features = backbone(inputs)  # expect: BN105
        pooled = layers.GlobalAveragePooling2D()(features)
        model = keras.Model(inputs=inputs, outputs=layers.Dense(1)(layers.Dropout(0.2)(pooled)))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(train_ds, validation_data=val_ds, epochs=10)
        """,
        id="never-frozen-tf-keras",
    ),
    pytest.param(
        """
        import keras
        from keras import layers


        def build_model(classes):
            base = keras.applications.EfficientNetB0(include_top=False, weights="imagenet")
            base.trainable = False
            inputs = keras.Input(shape=(224, 224, 3))
            x = base(inputs)  # expect: BN105
            x = layers.GlobalAveragePooling2D()(x)
            return keras.Model(inputs, layers.Dense(classes)(x)), base


        def main():
            model, base = build_model(10)
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(train_ds, epochs=5)
            base.trainable = True
            model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy")
            model.fit(train_ds, epochs=5)
        """,
        id="builder-returns-base-caller-unfreezes",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.Xception(include_top=False)
        base.trainable = False
        inputs = keras.Input(shape=(299, 299, 3))
        x = layers.GlobalAveragePooling2D()(base(inputs))  # expect: BN105
        model = keras.Model(inputs, layers.Dense(2)(x))
        model.fit(train_ds, epochs=3)
        model.trainable = True
        model.compile(keras.optimizers.Adam(1e-5), "binary_crossentropy")
        model.fit(train_ds, epochs=3)
        """,
        id="whole-functional-model-unfrozen",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        encoder = keras.models.load_model("pretrained_encoder.keras")
        inputs = keras.Input(shape=(128, 128, 3))
        embedding = encoder(inputs)  # expect: BN105
        outputs = layers.Dense(3, activation="softmax")(embedding)
        classifier = keras.Model(inputs, outputs)
        classifier.compile("adam", "categorical_crossentropy")
        classifier.fit(train_ds, epochs=10)
        """,
        id="loaded-model-as-backbone",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.DenseNet121(include_top=False, pooling="avg")
        base.trainable = False
        inputs = keras.Input(shape=(224, 224, 3))
        model = keras.Model(inputs, layers.Dense(14, activation="sigmoid")(base(inputs)))  # expect: BN105
        model.fit(train_ds, epochs=5)

        base.trainable = True
        for layer in base.layers[:-40]:
            layer.trainable = False
        model.compile(keras.optimizers.Adam(1e-5), "binary_crossentropy")
        model.fit(train_ds, epochs=5)
        """,
        id="partial-unfreeze-of-the-top-layers",
    ),
    pytest.param(
        """
        import argparse

        from tensorflow.keras import Input, Model
        from tensorflow.keras.applications import InceptionV3
        from tensorflow.keras.layers import Dense, GlobalAveragePooling2D

        args = argparse.ArgumentParser().parse_args()
        base = InceptionV3(include_top=False)
        base.trainable = args.finetune
        inputs = Input(shape=(299, 299, 3))
        x = GlobalAveragePooling2D()(base(inputs))  # expect: BN105
        model = Model(inputs, Dense(100)(x))
        model.fit(train_ds, epochs=20)
        """,
        id="trainable-from-a-command-line-flag",
    ),
]

NEGATIVE = [
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.ResNet50(include_top=False, input_shape=(224, 224, 3))
        base.trainable = False
        inputs = keras.Input(shape=(224, 224, 3))
        x = base(inputs, training=False)
        outputs = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))
        model = keras.Model(inputs, outputs)
        model.fit(train_ds, epochs=10)
        base.trainable = True
        model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy")
        model.fit(train_ds, epochs=5)
        """,
        id="training-false-guide-recipe",
    ),
    pytest.param(
        """
        import keras
        from keras import layers


        def build_model():
            base = keras.applications.MobileNetV2(include_top=False, input_shape=(96, 96, 3))
            base.trainable = False
            inputs = keras.Input(shape=(96, 96, 3))
            x = layers.GlobalAveragePooling2D()(base(inputs))
            return keras.Model(inputs, layers.Dense(10)(x))


        model = build_model()
        model.fit(train_ds, epochs=10)
        """,
        id="frozen-for-good",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.ResNet50(include_top=False, weights=None)
        inputs = keras.Input(shape=(64, 64, 3))
        model = keras.Model(inputs, layers.Dense(200)(layers.GlobalAveragePooling2D()(base(inputs))))
        model.fit(train_ds, epochs=90)
        """,
        id="weights-none-is-not-pretrained",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.VGG16(include_top=False)
        inputs = keras.Input(shape=(224, 224, 3))
        model = keras.Model(inputs, layers.Dense(5)(layers.Flatten()(base(inputs))))
        base.trainable = True
        model.fit(train_ds, epochs=5)
        """,
        id="vgg-has-no-batch-norm",
    ),
    pytest.param(
        """
        import keras
        import numpy as np

        base = keras.applications.ResNet50(include_top=False, pooling="avg")


        def extract_features(dataset):
            features = []
            for images, _ in dataset:
                features.append(base(images))
            return np.concatenate(features)
        """,
        id="eager-feature-extraction",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.ResNet50(include_top=False, pooling="avg")
        inputs = keras.Input(shape=(224, 224, 3))
        # Domain adaptation: re-estimate the batch statistics on the target data.
        outputs = layers.Dense(7)(base(inputs, training=True))
        model = keras.Model(inputs, outputs)
        model.fit(target_ds, epochs=3)
        """,
        id="explicit-training-true",
    ),
    pytest.param(
        """
        import keras
        from keras import layers

        base = keras.applications.ResNet50(include_top=False, pooling="avg")
        embeddings = base.predict(images)
        head = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(5)])
        head.fit(embeddings, labels, epochs=20)
        """,
        id="predict-then-train-a-separate-head",
    ),
]


@pytest.mark.parametrize("source", POSITIVE)
def test_reports_the_call_of_the_pretrained_base(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=True)


@pytest.mark.parametrize("source", NEGATIVE)
def test_does_not_report(source: str) -> None:
    assert_matches_markers(source, CODE, flagged=False)


MODULES = {
    "model": """
        import keras
        from keras import layers


        def build_classifier(base):
            inputs = keras.Input(shape=(224, 224, 3))
            x = layers.GlobalAveragePooling2D()(base(inputs))  # expect: BN105
            return keras.Model(inputs, layers.Dense(10)(x))
        """,
    "finetune": """
        import keras

        from .model import build_classifier


        def main():
            base = keras.applications.ResNet50V2(include_top=False)
            base.trainable = False
            model = build_classifier(base)
            model.fit(train_ds, epochs=5)
            base.trainable = True
            model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy")
            model.fit(train_ds, epochs=5)
        """,
}


def test_builder_in_another_file(tmp_path: Path) -> None:
    assert lint_package(tmp_path, MODULES, {CODE}) == package_markers(MODULES)


def test_fix_passes_training_false() -> None:
    before = dedent(POSITIVE[0].values[0])
    after = fix_source(before)
    assert after == before.replace("x = base(x)  # expect: BN105", "x = base(x, training=False)  # expect: BN105")
    assert fix_source(after) == after
    assert CODE not in {d.code for d in lint_source(after)}
