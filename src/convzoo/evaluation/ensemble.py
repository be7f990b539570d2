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
from .score import EvalResult, mean_of_probs, plan_for, predictions, tally_of


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
        # a member's name without its parenthesis (which checkpoint and why): the table stays
        # readable in a terminal; the JSON keeps the whole description
        rows = [[n.split(" (", 1)[0], f"{r.top1:.4f}", f"{r.top5:.4f}", f"{r.err1:.4f}",
                 f"{r.loss:.4f}"] for n, r in zip(self.names, self.members)]
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


def member_logprobs(member: Any, split: Any, ds: Any, *, method: str | None = None,
                    batch_size: int = 256, device: torch.device | str = "cpu",
                    data_is_own: bool = True) -> tuple[EvalResult, torch.Tensor, torch.Tensor]:
    """(the member's own result, N x K log-probabilities, N labels) over `split` of the data set
    `ds`, scored exactly as `convzoo eval` scores it alone (`score.plan_for`)."""
    plan = plan_for(member, ds, device=torch.device(device), method=method,
                    data_is_own=data_is_own)
    res, batches = predictions(plan, split, batch_size=batch_size)
    return res, torch.cat([p for p, _ in batches]), torch.cat([y for _, y in batches])


def member_probs(member: Any, split: Any, ds: Any = None, **kw: Any) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """(N x K class probabilities, N labels) of one member over a split (see
    `member_logprobs`); `ds` defaults to a data set with the split's classes and statistics
    that the member's checkpoint records."""
    if ds is None:
        ds = _bare_dataset(member, split)
    _, logp, y = member_logprobs(member, split, ds, **kw)
    return logp.exp(), y


def _bare_dataset(member: Any, split: Any) -> Any:
    from types import SimpleNamespace

    names = member.class_names or [str(i) for i in range(member.model.num_classes)]
    return SimpleNamespace(name="data", classes=names, test=split, mean=member.mean,
                           std=member.std)


def evaluate_ensemble(members: Sequence[Any], split: Any, ds: Any, *,
                      method: str | None = None, batch_size: int = 256,
                      device: torch.device | str = "cpu",
                      data_is_own: bool = True) -> EnsembleResult:
    """Each member's top-1/top-5 on `split` of the data set `ds` and the ensemble's (the mean
    of their softmaxes).

    `members`: loaded sources (`runs.source.load_source`). Each is scored with its own input
    size, normalisation, precision and recorded settings, as `convzoo eval` scores it alone;
    `method` None is each member's own (flip for a run that evaluated with flip)."""
    if len(members) < 1:
        raise UserInputError("an ensemble needs at least one member")
    classes = list(ds.classes)
    check_classes(members, classes)
    results, outputs, methods = [], [], []
    for member in members:
        plan = plan_for(member, ds, device=torch.device(device), method=method,
                        data_is_own=data_is_own)
        res, batches = predictions(plan, split, batch_size=batch_size)
        if outputs and not all(torch.equal(y, y0) for (_, y), (_, y0) in zip(batches,
                                                                           outputs[0])):
            raise UserInputError("the members saw the images in different orders")
        results.append(res)
        outputs.append(batches)
        methods.append(plan.method)
    # batch by batch, as each member's own figures were tallied
    total = tally_of(((mean_of_probs([o[i][0] for o in outputs]), outputs[0][i][1])
                      for i in range(len(outputs[0]))), len(classes))
    shown = sorted({str(m) for m in methods})
    return EnsembleResult([getattr(m, "description", f"member {i + 1}")
                           for i, m in enumerate(members)], results, total, ", ".join(shown),
                          classes)


__all__ = ["EnsembleResult", "check_classes", "evaluate_ensemble", "member_logprobs",
           "member_probs"]
