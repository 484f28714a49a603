"""Well-known third-party model constructors and whether the models they build hold
batch norm: `torchvision.models.resnet50()` does, `vit_b_16()` does not, and what
`timm.create_model(name)` builds cannot be known statically.

"Holds batch norm" means a layer whose behaviour depends on train/eval mode and whose
statistics depend on the batch: `nn.BatchNorm1d/2d/3d` (and subclasses such as SyncBatchNorm)
or keras `BatchNormalization`. torchvision's `FrozenBatchNorm2d` is a fixed affine map and
does not count. A constructor is YES or NO only when that holds under its default arguments
*and* under the arguments that pick its pretrained weights, quantization or backbone:

* torchvision detection builders swap their backbone's BatchNorm2d for FrozenBatchNorm2d
  whenever `weights` or `weights_backbone` is given, and `weights_backbone` defaults to
  ImageNet weights: `fasterrcnn_resnet50_fpn()` holds no trainable batch norm, but
  `fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)` does, so it is UNKNOWN.
  The `_v2` detection builders and `ssdlite320_mobilenet_v3_large` keep BatchNorm2d in their
  heads or backbone either way (YES); `ssd300_vgg16` never has any (NO).
* torchvision quantization builders hold BatchNorm2d by default and none with
  `quantize=True`, which folds it into the quantized convolutions: UNKNOWN.
* segmentation_models_pytorch's FPN decoder uses GroupNorm, so whether `smp.FPN` holds batch
  norm depends on `encoder_name` (the default resnet34 does): UNKNOWN. Every other smp
  decoder holds BatchNorm2d whatever the encoder (YES).
* model zoos that pick the architecture from an argument (`timm.create_model`,
  `torch.hub.load`, `torchvision.models.get_model`, `smp.create_model`, transformers'
  `AutoModel*.from_pretrained/from_config`) are UNKNOWN.

Explicit norm arguments (torchvision's `norm_layer=`, smp's `decoder_use_norm=`) override all
of this; callers that see one should not trust the table.

Provenance. One-off scripts (not shipped) imported the pinned sources under
/work/corpus-real (C++ operator registrations and huggingface_hub stubbed out), built each
model on the meta device, counted `nn.modules.batchnorm._BatchNorm` / keras
`BatchNormalization` layers, and printed the tables below:

* torchvision 0.29.1: every builder in `models.list_models()` (121), with default arguments
  and, where the builder has them, with `weights=None, weights_backbone=None` and with
  `quantize=True` (weight loading patched out). A builder is listed under its defining module;
  its names are that module's and the re-exporting package's (`torchvision.models.resnet.
  resnet50`, `torchvision.models.resnet50`), plus `mobilenet` for `mobilenetv2/3`.
* keras 3.15.1: every application, with `weights=None, include_top=False`. tf-keras 2.21.0
  (Keras 2, what `tf.keras` was before TF 2.16) adds RegNet* and ResNetRS*, read in its
  source. The union is listed under `keras.applications`, `tensorflow.keras.applications`
  (what `tf.keras.applications` resolves to) and `tf_keras.applications`, each also through
  the public submodule exporting it (`keras.applications.resnet50.ResNet50`).
* segmentation_models_pytorch 0.6.0: every architecture, with the default encoder and with
  BN-free ones (`mit_b0`, `tu-convnext_atto`).
* transformers 5.24.0: the `Auto*` model classes of `models/auto/modeling_auto.py`.

Verification: `tests/test_constructors.py` checks that the tables list exactly the exported
names, rebuilds one torchvision builder per table group from the pinned source, builds a few
keras applications, and checks every keras application and smp decoder against its source.
"""

from __future__ import annotations

from enum import Enum


class Presence(str, Enum):
    """Whether a model holds batch norm."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


YES, NO, UNKNOWN = Presence.YES, Presence.NO, Presence.UNKNOWN

# torchvision builders by presence and defining module (relative to torchvision.models).
_TORCHVISION: dict[Presence, dict[str, str]] = {
    YES: {
        "resnet": "resnet18 resnet34 resnet50 resnet101 resnet152 resnext50_32x4d resnext101_32x8d "
        "resnext101_64x4d wide_resnet50_2 wide_resnet101_2",
        "densenet": "densenet121 densenet161 densenet169 densenet201",
        "efficientnet": "efficientnet_b0 efficientnet_b1 efficientnet_b2 efficientnet_b3 efficientnet_b4 "
        "efficientnet_b5 efficientnet_b6 efficientnet_b7 efficientnet_v2_s efficientnet_v2_m efficientnet_v2_l",
        "googlenet": "googlenet",
        "inception": "inception_v3",
        "maxvit": "maxvit_t",  # MBConv blocks between the attention layers
        "mnasnet": "mnasnet0_5 mnasnet0_75 mnasnet1_0 mnasnet1_3",
        "mobilenetv2": "mobilenet_v2",
        "mobilenetv3": "mobilenet_v3_large mobilenet_v3_small",
        "regnet": "regnet_x_400mf regnet_x_800mf regnet_x_1_6gf regnet_x_3_2gf regnet_x_8gf regnet_x_16gf "
        "regnet_x_32gf regnet_y_400mf regnet_y_800mf regnet_y_1_6gf regnet_y_3_2gf regnet_y_8gf regnet_y_16gf "
        "regnet_y_32gf regnet_y_128gf",
        "shufflenetv2": "shufflenet_v2_x0_5 shufflenet_v2_x1_0 shufflenet_v2_x1_5 shufflenet_v2_x2_0",
        "vgg": "vgg11_bn vgg13_bn vgg16_bn vgg19_bn",
        "segmentation.deeplabv3": "deeplabv3_resnet50 deeplabv3_resnet101 deeplabv3_mobilenet_v3_large",
        "segmentation.fcn": "fcn_resnet50 fcn_resnet101",
        "segmentation.lraspp": "lraspp_mobilenet_v3_large",
        "detection.faster_rcnn": "fasterrcnn_resnet50_fpn_v2",
        "detection.mask_rcnn": "maskrcnn_resnet50_fpn_v2",
        "detection.retinanet": "retinanet_resnet50_fpn_v2",
        "detection.ssdlite": "ssdlite320_mobilenet_v3_large",
        "video.resnet": "r3d_18 mc3_18 r2plus1d_18",
        "video.s3d": "s3d",
        "optical_flow.raft": "raft_large",  # its context encoder; the feature encoder uses InstanceNorm2d
    },
    NO: {
        "alexnet": "alexnet",
        "convnext": "convnext_tiny convnext_small convnext_base convnext_large",
        "squeezenet": "squeezenet1_0 squeezenet1_1",
        "swin_transformer": "swin_t swin_s swin_b swin_v2_t swin_v2_s swin_v2_b",
        "vgg": "vgg11 vgg13 vgg16 vgg19",
        "vision_transformer": "vit_b_16 vit_b_32 vit_l_16 vit_l_32 vit_h_14",
        "detection.ssd": "ssd300_vgg16",
        "video.mvit": "mvit_v1_b mvit_v2_s",
        "video.swin_transformer": "swin3d_t swin3d_s swin3d_b",
        "optical_flow.raft": "raft_small",
    },
    UNKNOWN: {
        "detection.faster_rcnn": "fasterrcnn_resnet50_fpn fasterrcnn_mobilenet_v3_large_fpn "
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "detection.fcos": "fcos_resnet50_fpn",
        "detection.keypoint_rcnn": "keypointrcnn_resnet50_fpn",
        "detection.mask_rcnn": "maskrcnn_resnet50_fpn",
        "detection.retinanet": "retinanet_resnet50_fpn",
        "quantization.googlenet": "googlenet",
        "quantization.inception": "inception_v3",
        "quantization.mobilenetv2": "mobilenet_v2",
        "quantization.mobilenetv3": "mobilenet_v3_large",
        "quantization.resnet": "resnet18 resnet50 resnext101_32x8d resnext101_64x4d",
        "quantization.shufflenetv2": "shufflenet_v2_x0_5 shufflenet_v2_x1_0 shufflenet_v2_x1_5 shufflenet_v2_x2_0",
    },
}
# Modules that re-export another module's builders besides the parent package.
_TORCHVISION_REEXPORTS = {"mobilenetv2": "mobilenet", "mobilenetv3": "mobilenet"}

# keras.applications functions by presence and the public submodule that also exports them
# ("": none does; keras.applications.mobilenet_v3 exports only the pre/post-processing).
_KERAS: dict[Presence, dict[str, str]] = {
    YES: {
        "resnet": "ResNet50 ResNet101 ResNet152",
        "resnet50": "ResNet50",
        "resnet_v2": "ResNet50V2 ResNet101V2 ResNet152V2",
        "resnet_rs": "ResNetRS50 ResNetRS101 ResNetRS152 ResNetRS200 ResNetRS270 ResNetRS350 ResNetRS420",
        "mobilenet": "MobileNet",
        "mobilenet_v2": "MobileNetV2",
        "": "MobileNetV3Small MobileNetV3Large",
        "efficientnet": "EfficientNetB0 EfficientNetB1 EfficientNetB2 EfficientNetB3 EfficientNetB4 "
        "EfficientNetB5 EfficientNetB6 EfficientNetB7",
        "efficientnet_v2": "EfficientNetV2B0 EfficientNetV2B1 EfficientNetV2B2 EfficientNetV2B3 "
        "EfficientNetV2S EfficientNetV2M EfficientNetV2L",
        "densenet": "DenseNet121 DenseNet169 DenseNet201",
        "xception": "Xception",
        "inception_v3": "InceptionV3",
        "inception_resnet_v2": "InceptionResNetV2",
        "nasnet": "NASNetMobile NASNetLarge",
        "regnet": "RegNetX002 RegNetX004 RegNetX006 RegNetX008 RegNetX016 RegNetX032 RegNetX040 RegNetX064 "
        "RegNetX080 RegNetX120 RegNetX160 RegNetX320 RegNetY002 RegNetY004 RegNetY006 RegNetY008 RegNetY016 "
        "RegNetY032 RegNetY040 RegNetY064 RegNetY080 RegNetY120 RegNetY160 RegNetY320",
    },
    NO: {
        "convnext": "ConvNeXtTiny ConvNeXtSmall ConvNeXtBase ConvNeXtLarge ConvNeXtXLarge",  # LayerNormalization
        "vgg16": "VGG16",
        "vgg19": "VGG19",
    },
}
_KERAS_ROOTS = ("keras.applications", "tensorflow.keras.applications", "tf_keras.applications")

# segmentation_models_pytorch models by presence and decoder subpackage. Every decoder but
# FPN's (GroupNorm) holds BatchNorm2d by default; FPN's presence depends on `encoder_name`.
_SMP: dict[Presence, dict[str, str]] = {
    YES: {
        "unet": "Unet",
        "unetplusplus": "UnetPlusPlus",
        "manet": "MAnet",
        "linknet": "Linknet",
        "pspnet": "PSPNet",
        "deeplabv3": "DeepLabV3 DeepLabV3Plus",
        "pan": "PAN",
        "upernet": "UPerNet",
        "segformer": "Segformer",
        "dpt": "DPT",
    },
    UNKNOWN: {"fpn": "FPN"},
}

# Constructors whose architecture is chosen by an argument (a name, a hub repository).
# transformers' Auto classes build through `from_pretrained` and `from_config`.
_TRANSFORMERS_AUTO = (
    "AutoModel AutoBackbone AutoModelForPreTraining AutoModelForCausalLM AutoModelForMaskedLM AutoModelForSeq2SeqLM "
    "AutoModelForSequenceClassification AutoModelForTokenClassification AutoModelForQuestionAnswering "
    "AutoModelForTableQuestionAnswering AutoModelForVisualQuestionAnswering AutoModelForDocumentQuestionAnswering "
    "AutoModelForMultipleChoice AutoModelForNextSentencePrediction AutoModelForTextEncoding AutoModelForMaskGeneration "
    "AutoModelForImageClassification AutoModelForZeroShotImageClassification AutoModelForImageSegmentation "
    "AutoModelForSemanticSegmentation AutoModelForUniversalSegmentation AutoModelForInstanceSegmentation "
    "AutoModelForObjectDetection AutoModelForZeroShotObjectDetection AutoModelForDepthEstimation "
    "AutoModelForKeypointDetection AutoModelForKeypointMatching AutoModelForImageToImage AutoModelForImageMatting "
    "AutoModelForMaskedImageModeling AutoModelForVideoClassification AutoModelForImageTextToText "
    "AutoModelForMultimodalLM AutoModelForTextRecognition AutoModelForTableRecognition AutoModelForNormalEstimation "
    "AutoModelForPointmapEstimation AutoModelForPoseEstimation AutoModelForTimeSeriesPrediction "
    "AutoModelForAudioClassification AutoModelForAudioFrameClassification AutoModelForAudioXVector "
    "AutoModelForAudioTokenization AutoModelForCTC AutoModelForRNNT AutoModelForTDT AutoModelForTextToSpectrogram "
    "AutoModelForTextToWaveform AutoModelForSpeechSeq2Seq AutoModelForDecision"
)
_ZOOS = [
    "torch.hub.load",
    "timm.create_model",
    "timm.models.create_model",
    "torchvision.models.get_model",
    "segmentation_models_pytorch.create_model",
    "segmentation_models_pytorch.from_pretrained",
    *(f"transformers.{cls}.{method}" for cls in _TRANSFORMERS_AUTO.split() for method in ("from_pretrained", "from_config")),
]


def _torchvision_names(module: str, builder: str) -> list[str]:
    """A builder's qualified names: in its defining module and in the modules re-exporting it."""
    full = f"torchvision.models.{module}"
    package, _, leaf = full.rpartition(".")
    modules = [full, package]
    if leaf in _TORCHVISION_REEXPORTS:
        modules.append(f"{package}.{_TORCHVISION_REEXPORTS[leaf]}")
    return [f"{where}.{builder}" for where in modules]


def _keras_names(submodule: str, function: str) -> list[str]:
    """An application's qualified names: under each root, directly and in its submodule."""
    wheres = [""] + ([f".{submodule}"] if submodule else [])
    return [f"{root}{where}.{function}" for root in _KERAS_ROOTS for where in wheres]


def _smp_names(decoder: str, model: str) -> list[str]:
    """A model's qualified names: the package, its decoder subpackage and module."""
    where = f"segmentation_models_pytorch.decoders.{decoder}"
    return [f"segmentation_models_pytorch.{model}", f"{where}.{model}", f"{where}.model.{model}"]


def _build() -> dict[str, Presence]:
    known = dict.fromkeys(_ZOOS, UNKNOWN)
    for expand, table in ((_torchvision_names, _TORCHVISION), (_keras_names, _KERAS), (_smp_names, _SMP)):
        for presence, groups in table.items():
            for where, names in groups.items():
                for name in names.split():
                    known.update(dict.fromkeys(expand(where, name), presence))
    return known


_KNOWN: dict[str, Presence] = _build()


def constructor_presence(qualname: str) -> Presence | None:
    """For the qualified name of a callable that builds a whole model (a model zoo
    constructor), whether that model holds batch norm; None when `qualname` is no known
    model constructor."""
    return _KNOWN.get(qualname)
