"""The lecture topics the atlas has a page for: what each shows, its figure (committed under
docs/figures, made by the command beside it) and its lesson."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Lecture(NamedTuple):
    slug: str
    title: str
    text: str
    figures: tuple[str, ...]
    commands: tuple[str, ...]
    lesson: str = ""


LECTURES = (
    Lecture("receptive_fields", "Receptive fields and the cascade",
            "Each layer sees more of the input: a stack of 3x3 convolutions has the field of "
            "one larger filter with fewer weights (VGG's argument).",
            ("arch_columns_vgg19_plain34_resnet34.png",),
            ("convzoo summary vgg16 --format markdown   # the RF column",),
            "receptive_fields"),
    Lecture("why_relu", "Why ReLU", "The same small network trained with sigmoid, tanh, ReLU, "
            "leaky ReLU, ELU and SELU: saturating functions learn slowly.",
            ("activation_functions.png", "experiment_activations.png"),
            ("convzoo viz activation-functions --out functions.png",
             "convzoo experiment activations --data digits"), "why_relu"),
    Lecture("degradation", "Degradation: why residual connections",
            "Deeper plain networks train worse than shallower ones; the same depths with "
            "shortcuts do not (He et al. 2015, Figure 1).",
            ("experiment_degradation.png", "arch_residual_blocks.png"),
            ("convzoo experiment degradation --data mnist5k",), "degradation"),
    Lecture("test_time", "Test-time methods", "Averaging the predictions of flips and crops "
            "of one image (the ten-crop evaluation of AlexNet and VGG).", (),
            ("convzoo eval runs/RUN --tta flip --tta ten-crop",), "test_time"),
    Lecture("ensembles", "Ensembles", "Averaging several trained networks: how the papers' "
            "best results were reported.", (),
            ("convzoo eval runs/seed0 runs/seed1 runs/seed2 --data fashion-mnist",), "ensembles"),
    Lecture("filters", "What the filters see", "First-layer filters, activation maps and the "
            "image patches where a filter responds most (Zeiler and Fergus).",
            ("lite0_filters.png", "lite0_stage2_activations.png",
             "lite0_stage3_top_patches.png"),
            ("convzoo viz filters efficientnet_lite0 --weights imagenet --out filters.png",),
            "filters"),
    Lecture("transfer", "Transfer learning and how deep to fine-tune",
            "Train only the last layer, or it and a few before it with smaller steps; "
            "ImageNet features against random ones.",
            ("transfer_depth_lite0.png",),
            ("convzoo experiment transfer efficientnet_lite0 --weights imagenet "
             "--data fashion-mnist",), "transfer"),
    Lecture("architecture", "Drawing the networks", "LeNet-5's and AlexNet's layered volumes, "
            "the Inception module, the residual block, and ResNet's Figure 3 (VGG-19, plain-34 "
            "and ResNet-34 side by side), drawn from the real modules.",
            ("arch_lenet5_volumes.png", "arch_inception3a_blocks.png",
             "arch_columns_vgg19_plain34_resnet34.png"),
            ("convzoo viz architecture lenet5 --out lenet5.svg",
             "convzoo viz architecture vgg19 plain34 resnet34 --style columns --out cols.svg"),
            "architecture"),
)


def figures_dir() -> Path | None:
    """docs/figures of a source checkout, where the committed figures are; None when
    convzoo runs from an installed wheel (the lecture pages then show only the commands)."""
    here = Path(__file__).resolve().parents[3] / "docs" / "figures"
    return here if here.is_dir() else None
