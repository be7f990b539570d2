"""The lecture topics the atlas has a page for: what each shows, its figures, the command
that makes them and its lesson.

Two kinds of figure: `figures` are made by training, from photos or from downloaded weights,
so they are committed under docs/figures (their one copy) and the wheel carries exactly these
(setup.py copies them into convzoo/atlas/figures); `drawings` are the networks drawn from the
installed package itself, which the atlas draws as SVG when it is built (a second or two), so
they match the installed code and need no plotting extra.

setup.py reads this file on its own, without importing convzoo (torch may not be installed
where a wheel is built): it imports nothing but the standard library.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Drawing(NamedTuple):
    """`convzoo viz architecture MODELS --style STYLE [--block BLOCK]`, as SVG."""
    models: tuple[str, ...]
    style: str
    block: str | None = None

    @property
    def file(self) -> str:
        return f"arch_{self.style}_{'_'.join(self.models)}.svg"

    @property
    def command(self) -> str:
        block = f" --block {self.block}" if self.block else ""
        return (f"convzoo viz architecture {' '.join(self.models)} --style {self.style}{block} "
                f"--out {self.file}")


class Lecture(NamedTuple):
    slug: str
    title: str
    text: str
    figures: tuple[str, ...]  # committed under docs/figures, carried by the wheel
    commands: tuple[str, ...]
    lesson: str = ""
    drawings: tuple[Drawing, ...] = ()  # drawn by the atlas from the package


COLUMNS = Drawing(("vgg19", "plain34", "resnet34"), "columns")


LECTURES = (
    Lecture("receptive_fields", "Receptive fields and the cascade",
            "Each layer sees more of the input: a stack of 3x3 convolutions has the field of "
            "one larger filter with fewer weights (VGG's argument).",
            (), ("convzoo summary vgg16 --format markdown   # the RF column",),
            "receptive_fields", (COLUMNS,)),
    Lecture("why_relu", "Why ReLU", "The same small network trained with sigmoid, tanh, ReLU, "
            "leaky ReLU, ELU and SELU: saturating functions learn slowly.",
            ("activation_functions.png", "experiment_activations.png"),
            ("convzoo viz activation-functions --out functions.png",
             "convzoo experiment activations --data digits"), "why_relu"),
    Lecture("degradation", "Degradation: why residual connections",
            "Deeper plain networks train worse than shallower ones; the same depths with "
            "shortcuts do not (He et al. 2015, Figure 1).",
            ("experiment_degradation.png",),
            ("convzoo experiment degradation --data mnist5k",), "degradation",
            (Drawing(("resnet34",), "blocks"),)),
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
            (), (), "architecture",
            (Drawing(("lenet5",), "volumes"), Drawing(("alexnet",), "volumes"),
             Drawing(("googlenet",), "blocks", "stages.0.inception3a"),
             Drawing(("resnet34",), "blocks"), COLUMNS)),
)


def lecture_figures() -> list[str]:
    """Every committed figure a lecture page shows: what the wheel carries."""
    return sorted({f for lec in LECTURES for f in lec.figures})


def figures_dir() -> Path | None:
    """Where the committed lecture figures are: the installed package's copy
    (convzoo/atlas/figures, which setup.py fills from docs/figures), else docs/figures of a
    source checkout; None when neither is there (the pages then show only the commands)."""
    here = Path(__file__).resolve().parent
    for d in (here / "figures", here.parents[2] / "docs" / "figures"):
        if d.is_dir():
            return d
    return None
