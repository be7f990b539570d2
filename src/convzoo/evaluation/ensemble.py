"""Ensembles: the members' softmax outputs averaged over a data split, as AlexNet's seven CNNs
were ("averaging the predictions of ... CNNs", Krizhevsky et al. 2012: 18.2% -> 15.4% top-5
error on ImageNet).

Each member sees the split as its own weights expect it (its input size and normalisation),
batch by batch in the split's order, so every member's probabilities line up image by image.
Members must predict the same classes in the same order; so must the data set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserInputError
from ..tables import Table
from .evaluate import EvalResult
from .tta import Tally, parse_method, tta_loader


@dataclass
class EnsembleResult:
    names: list[str]  # each member's description
    members: list[EvalResult]
    ensemble: EvalResult
    method: str  # the test-time method every member was evaluated with
    classes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method,
                "members": [{"name": n, **r.to_dict(self.classes)}
                            for n, r in zip(self.names, self.members)],
                "ensemble": self.ensemble.to_dict(self.classes)}

    def table(self) -> Table:
        rows = [[n, f"{r.top1:.4f}", f"{r.top5:.4f}", f"{r.err1:.4f}", f"{r.loss:.4f}"]
                for n, r in zip(self.names, self.members)]
        e = self.ensemble
        rows.append([f"ensemble of {len(self.members)} (mean softmax)", f"{e.top1:.4f}",
                     f"{e.top5:.4f}", f"{e.err1:.4f}", f"{e.loss:.4f}"])
        return Table(f"ensemble on {e.n} images", ["model", "top-1", f"top-{e.k}", "error",
                                                   "loss"], rows,
                     [f"test-time method: {self.method}; the ensemble averages the members' "
                      "class probabilities"], align_right={1, 2, 3, 4})


def check_classes(members: Sequence[Any], classes: Sequence[str]) -> None:
    """Every member must have exactly the data set's classes, in its order."""
    want = list(classes)
    for m in members:
        have = getattr(m, "class_names", None)
        name = getattr(m, "description", "a member")
        if have is None:
            n = getattr(m.model, "num_classes", None)
            if n != len(want):
                raise UserInputError(f"{name} predicts {n} classes but the data have "
                                     f"{len(want)}; ensemble members must share the classes")
            continue
        if list(have) != want:
            diff = sorted(set(have) ^ set(want))
            what = (f"classes {', '.join(map(str, diff[:4]))} are not in both" if diff
                    else "the same classes in another order")
            raise UserInputError(f"{name} was trained on other classes than the data set "
                                 f"and the other members ({what}); ensemble members must "
                                 "share the class names")


@torch.no_grad()
def member_probs(member: Any, split: Any, *, method: str = "none", batch_size: int = 256,
                 device: torch.device | str = "cpu",
                 amp: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N x K class probabilities, N labels), on the CPU, of one member over a split, the
    images adapted to the member's input size and normalisation."""
    from ..runtime.device import autocast
    from .tta import dense_model, method_probs

    m = parse_method(method)
    model = member.model.to(device).eval()
    size = tuple(member.input_size or model.default_input_size)
    mean = member.mean if member.mean is not None else (0.5,) * size[0]
    std = member.std if member.std is not None else (0.5,) * size[0]
    batches = tta_loader(split, m, size, mean, std, batch_size=batch_size, device=device)
    dense = dense_model(model) if m.kind == "dense" else None
    probs, labels = [], []
    for x, y in batches:
        with autocast(torch.device(device), amp):
            probs.append(method_probs(model, x, m, size[1:], dense).float().cpu())
        labels.append(y.cpu())
    if not probs:
        raise UserInputError("the split has no images to evaluate")
    return torch.cat(probs), torch.cat(labels)


def evaluate_ensemble(members: Sequence[Any], split: Any, classes: Sequence[str], *,
                      method: str = "none", batch_size: int = 256,
                      device: torch.device | str = "cpu",
                      amp: torch.dtype | None = None) -> EnsembleResult:
    """Each member's top-1/top-5 on `split` and the ensemble's (the mean of their softmaxes).

    `members`: loaded sources (`train.source.load_source`): anything with `.model`,
    `.class_names`, `.input_size`, `.mean`, `.std`, `.description`."""
    if len(members) < 1:
        raise UserInputError("an ensemble needs at least one member")
    check_classes(members, classes)
    k = len(classes)
    results, total, labels = [], None, None
    for member in members:
        p, y = member_probs(member, split, method=method, batch_size=batch_size, device=device,
                            amp=amp)
        if labels is not None and not torch.equal(y, labels):
            raise UserInputError("the members saw the images in different orders")
        labels = y
        tally = Tally(k)
        tally.add(p, y)
        results.append(tally.result())
        total = p if total is None else total + p
    tally = Tally(k)
    tally.add(total / len(members), labels)
    return EnsembleResult([getattr(m, "description", f"member {i + 1}")
                           for i, m in enumerate(members)], results, tally.result(),
                          str(parse_method(method)), list(classes))


__all__ = ["EnsembleResult", "check_classes", "evaluate_ensemble",
           "member_probs"]
