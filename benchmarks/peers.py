"""The typical PyTorch pipeline the GPU benchmarks measure convzoo against, in the same run:
a torchvision DataLoader with worker processes decoding per-image PIL transforms, a plain
training loop with bf16 autocast and channels_last."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


class PilImages(Dataset):
    """uint8 N x C x H x W images served one by one as PIL images through `transform`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        arr = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.images = arr[..., 0] if arr.shape[-1] == 1 else arr
        self.labels = labels.numpy().astype(np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def transforms(train: bool, size: int, pad: int, mean, std) -> Callable:
    from torchvision import transforms as T

    steps = [T.RandomCrop(size, padding=pad), T.RandomHorizontalFlip()] if train else []
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def loader(images, labels, *, train: bool, batch_size: int, workers: int, size: int, pad: int,
           mean, std, device: torch.device) -> DataLoader:
    ds = PilImages(images, labels, transforms(train, size, pad, mean, std))
    return DataLoader(ds, batch_size=batch_size, shuffle=train, drop_last=train,
                      num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=workers > 0)


def resnet18_28(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """torchvision's ResNet-18 adapted to 28x28: a 3x3 stride-1 first convolution, no max-pool."""
    from torchvision.models import resnet18

    m = resnet18(num_classes=num_classes)
    m.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def train_epoch(model: nn.Module, dl: DataLoader, opt, sched, device: torch.device, bf16: bool,
                channels_last: bool, label_smoothing: float = 0.0) -> float:
    """One epoch; returns its seconds (synchronised)."""
    model.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    t0 = time.perf_counter()
    for x, y in dl:
        x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
        y = y.to(device, non_blocking=True)
        with autocast(device, bf16):
            out = model(x)
        loss = F.cross_entropy(out.float(), y, label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


@torch.no_grad()
def accuracy(model: nn.Module, dl: DataLoader, device: torch.device, bf16: bool,
             channels_last: bool) -> float:
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    correct = torch.zeros((), dtype=torch.long, device=device)
    n = 0
    for x, y in dl:
        x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
        y = y.to(device, non_blocking=True)
        with autocast(device, bf16):
            out = model(x)
        correct += (out.argmax(1) == y).sum()
        n += len(y)
    return float(correct) / max(n, 1)
