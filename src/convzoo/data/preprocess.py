"""The evaluation preprocessing a set of weights declares: resize, centre crop, normalise."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    resize: int  # shorter side after resizing
    crop: int  # side of the centre crop
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channels: int = 3
    interpolation: str = "bilinear"

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 C x H x W (any C of 1 or 3) -> normalised float C x crop x crop."""
        x = img.float().div(255)
        if x.shape[0] != self.channels:
            x = x.expand(self.channels, -1, -1) if x.shape[0] == 1 else x.mean(0, keepdim=True)
        h, w = x.shape[-2:]
        scale = self.resize / min(h, w)
        size = (max(self.crop, round(h * scale)), max(self.crop, round(w * scale)))
        x = F.interpolate(x[None], size=size, mode=self.interpolation, antialias=True,
                          align_corners=False)[0]
        top, left = (size[0] - self.crop) // 2, (size[1] - self.crop) // 2
        x = x[:, top:top + self.crop, left:left + self.crop]
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict:
        return asdict(self)
