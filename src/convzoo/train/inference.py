"""A trained run as a classifier of image files: its model, class names and preprocessing.

An image is brought to the size the training images were stored at (shorter side resized,
centre crop), then through the same adaptation and normalisation the loader applied in
training (e.g. 28x28 padded to 32x32 for LeNet-5), so a file is seen as a training image was.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.preprocess import Preprocess
from .checkpoint import load_checkpoint, model_from_checkpoint


class RunPreprocess:
    """uint8 C x H x W of any size -> the float tensor the run's model was trained on."""

    def __init__(self, stored: tuple[int, int, int], input_size: tuple[int, int, int],
                 mean: list[float], std: list[float]) -> None:
        from ..data.loader import Pipeline

        c, h, w = stored
        self.channels = c
        self.stored = stored
        self.to_stored = Preprocess(resize=min(h, w), crop=min(h, w), mean=(0.0,) * c,
                                    std=(1.0,) * c, channels=c)
        self.pipeline = Pipeline(stored, input_size, mean, std, torch.device("cpu"))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = self.to_stored(img)  # 0..1
        c, h, w = self.stored
        if x.shape[-2:] != (h, w):
            x = torch.nn.functional.interpolate(x[None], size=(h, w), mode="bilinear")[0]
        x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        return self.pipeline(x[None])[0]


def is_run(source: str | Path) -> bool:
    p = Path(source)
    return p.exists() and (p.is_dir() or p.name.endswith((".json", ".safetensors")))


def model_for_predict(source: str | Path) -> nn.Module:
    """The model of a run directory or checkpoint, in eval mode, with `class_names` and
    `preprocess` set (EMA weights when the run kept them)."""
    ckpt = load_checkpoint(source)
    model = model_from_checkpoint(ckpt)
    meta = ckpt.meta
    input_size = tuple(meta.get("input_size") or model.default_input_size)
    stored = tuple(meta.get("image_size") or input_size)
    model.preprocess = RunPreprocess(stored, input_size, meta.get("mean", [0.5] * stored[0]),
                                     meta.get("std", [0.5] * stored[0]))
    return model.eval()
