"""The run's model on its test set, image by image: what the confusion matrix, per-class
accuracy and the grid of confident mistakes are drawn from.

The model is rebuilt from the run's last checkpoint (its EMA weights when it has them: what
the run's own final evaluation scored) and the data read through the catalog with the run's
data set, data directory and seed, so the figures match the run's summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserInputError
from ..evaluation.score import EvalResult
from .rundir import RunDir


@dataclass
class Predictions:
    classes: list[str]
    labels: torch.Tensor  # N true classes
    probs: torch.Tensor  # N x K softmax probabilities
    images: list[torch.Tensor]  # uint8 C x H x W of the images `wrong` points at, in order
    wrong: list[int]  # indices of the most confident mistakes, most confident first
    result: EvalResult  # the figures, from the scoring path `convzoo eval` uses
    split: str = "test"

    @property
    def predicted(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def k(self) -> int:
        return self.result.k

    @property
    def top1(self) -> float:
        return self.result.top1

    @property
    def top5(self) -> float:
        return self.result.top5

    def confusion(self) -> torch.Tensor:
        """K x K counts, rows the true class, columns the predicted one."""
        return self.result.confusion

    def per_class(self) -> list[tuple[str, int, float]]:
        """(class, test images, accuracy) per class."""
        cm = self.confusion()
        n = cm.sum(1)
        return [(c, int(n[i]), float(cm[i, i]) / max(int(n[i]), 1))
                for i, c in enumerate(self.classes)]


def _image(split, i: int) -> torch.Tensor:
    from ..data.dataset import ArraySplit

    if isinstance(split, ArraySplit):
        return split.images[i]
    from PIL import Image

    from ..data.pack import PackRecord, record_image

    key = split.samples[i][0]
    with record_image(key) if isinstance(key, PackRecord) else Image.open(key) as im:
        im = im.convert("RGB")
        im.thumbnail((96, 96))
        return torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8) \
            .view(im.height, im.width, 3).permute(2, 0, 1).contiguous()


@torch.no_grad()
def predict_run(run: RunDir, *, device: str = "cpu", limit: int | None = None,
                n_wrong: int = 24, batch_size: int = 256) -> Predictions:
    """Softmax outputs of the run's model on (the first `limit` images of) its test split."""
    from ..data.catalog import load_dataset
    from ..data.dataset import ArraySplit, FolderSplit
    from ..evaluation.score import plan_for, predictions
    from ..runs.source import load_source

    if run.checkpoint is None:
        raise UserInputError(f"{run.path} has no checkpoint: the report needs last/ or best/ "
                             "to score the test images")
    dev = torch.device(device)
    src = load_source(str(run.checkpoint.path), runs_only=True, ema=True, device=dev)
    info = src.info
    ds = load_dataset(info.data or run.data, info.setting("data_dir"),
                      seed=info.setting("seed", 0))
    classes = list(info.class_names or ds.classes)
    if len(classes) != len(ds.classes):
        raise UserInputError(f"the run knows {len(classes)} classes, {ds.name} has "
                             f"{len(ds.classes)}: score it with `convzoo eval` instead")
    split = ds.test
    if limit is not None and limit < len(split):
        split = (ArraySplit(split.images[:limit].contiguous(), split.labels[:limit])
                 if isinstance(split, ArraySplit) else FolderSplit(split.samples[:limit]))
    plan = plan_for(src, ds, device=dev)
    result, batches = predictions(plan, split, batch_size=batch_size)
    p = torch.cat([lp for lp, _ in batches]).exp()
    y = torch.cat([t for _, t in batches])
    conf, pred = p.max(1)
    mistakes = (pred != y).nonzero().flatten()
    order = mistakes[conf[mistakes].argsort(descending=True)][:n_wrong].tolist()
    return Predictions(classes, y, p, [_image(split, i) for i in order], order, result)
