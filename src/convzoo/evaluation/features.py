"""Features from any named layer, and the linear probe that reads them.

The lecture's comparison: the last layers' outputs of a network trained on ImageNet, used as
features for a new task, against the same architecture's random features. A linear probe is
the "train only a new last layer" mode computed once on stored features: the backbone is
frozen and in eval mode, so every epoch would see the same features anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..errors import UserInputError
from ..layers.lookup import find_layer


def _pool(t: torch.Tensor) -> torch.Tensor:
    """Feature maps are averaged over space; vectors pass through."""
    return t.float().mean((2, 3)) if t.dim() == 4 else t.float().flatten(1)


@torch.no_grad()
def extract(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    layer: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features (N x D, float32, CPU) and labels (N) from `layer` over all batches:
    a group (stem, stage2, ...) or any module's full name; None: the head's input."""
    target = None if layer is None else find_layer(model, layer)
    was_training = model.training
    model.eval()
    captured: list[torch.Tensor] = []
    handle = None
    if target is not None:
        def hook(_m: nn.Module, _i: tuple, out: object) -> None:
            t = out if isinstance(out, torch.Tensor) else out[0]  # type: ignore[index]
            captured.append(_pool(t).cpu())
        handle = target.register_forward_hook(hook)
    feats, labels = [], []
    try:
        for x, y in batches:
            if target is None:
                feats.append(_pool(model.forward_head(model.forward_features(x),
                                                      pre_logits=True)).cpu())
            else:
                captured.clear()
                model(x)
                feats.append(captured[-1])
            labels.append(y.cpu())
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    if not feats:
        raise UserInputError("no images to extract features from")
    return torch.cat(feats), torch.cat(labels)


def linear_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    num_classes: int, weight_decay: float = 1e-3, steps: int = 300, seed: int = 0,
) -> dict[str, float]:
    """Multinomial logistic regression on standardised features, full-batch L-BFGS.

    Returns train and test accuracy (fractions). Deterministic for a seed.
    """
    g = torch.Generator().manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    fc = nn.Linear(xtr.shape[1], num_classes)
    with torch.no_grad():
        fc.weight.normal_(0, 0.01, generator=g)
        fc.bias.zero_()
    opt = torch.optim.LBFGS(fc.parameters(), lr=1.0, max_iter=steps, history_size=20,
                            line_search_fn="strong_wolfe")
    loss_fn = nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(fc(xtr), train_y) + weight_decay * fc.weight.pow(2).sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        tr = (fc(xtr).argmax(1) == train_y).float().mean().item()
        te = (fc(xte).argmax(1) == test_y).float().mean().item()
    return {"train_acc": tr, "test_acc": te}
