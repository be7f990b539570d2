"""Reading a foreign state_dict and loading it into a convzoo model through an explicit key
map, every shape checked (`load_state`); what was copied and what was left new
(`LoadReport`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError

log = logging.getLogger("convzoo.weights")

HEAD_PREFIX = "head.fc."


@dataclass
class LoadReport:
    source: str
    loaded: int = 0
    messages: list[str] = field(default_factory=list)
    head_loaded: bool = False  # the file's classifier went into the model's head
    # What the weights bring beside tensors; `load_weights` hands them to the model.
    class_names: list[str] | None = None
    preprocess: Any = None  # a convzoo.data.preprocess.Preprocess

    def __str__(self) -> str:
        return "; ".join([f"{self.loaded} tensors loaded from {self.source}", *self.messages])


def _why_unreadable(e: Exception) -> str:
    """torch's and safetensors' long messages, said in a few words."""
    text = str(e)
    if "Unsupported global" in text or "safe_globals" in text:
        return ("it holds Python objects besides tensors, which convzoo does not unpickle; "
                "save the model's state_dict, or convert it to .safetensors")
    if "Unsupported operand" in text or "invalid load key" in text:
        return "not a PyTorch weights file (neither a zip archive nor a pickle of tensors)"
    if "central directory" in text or "zip archive" in text:
        return "the file is truncated or damaged (its zip archive has no index)"
    first = (text.strip().splitlines() or [type(e).__name__])[0]
    return first[:160].rstrip(" .:")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat name -> tensor dict from a .safetensors or a .pth/.pt/.bin file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            import warnings

            with warnings.catch_warnings():  # torch's notes on weights_only are not for users
                warnings.simplefilter("ignore")
                sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every reader error becomes one clear line
        raise UserInputError(f"cannot read weights from {path}: {_why_unreadable(e)}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserInputError(f"{path} does not hold a state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def rename(sd: dict[str, torch.Tensor], prefix_map: dict[str, str | None]) -> dict:
    """Rename keys by their longest matching prefix; a prefix mapped to None drops the key."""
    prefixes = sorted(prefix_map, key=len, reverse=True)
    out = {}
    for key, value in sd.items():
        for p in prefixes:
            if key.startswith(p):
                new = prefix_map[p]
                if new is not None:
                    out[new + key[len(p):]] = value
                break
        else:
            out[key] = value
    return out


def to_convzoo(model: nn.Module, sd: dict[str, torch.Tensor], what: str) -> tuple[dict, str]:
    """Map a foreign state_dict onto the model's names; return it and the source it came from."""
    ours = set(model.state_dict())
    if set(sd) <= ours:
        return sd, "convzoo"
    best: tuple[int, dict, str] | None = None
    for source in getattr(model, "weight_sources", ()):
        mapped = rename(sd, model.key_map(source))
        unknown = len(set(mapped) - ours)
        if unknown == 0:
            return mapped, source
        if best is None or unknown < best[0]:
            best = (unknown, mapped, source)
    name = getattr(model, "model_name", type(model).__name__)
    stray = sorted(set(best[1]) - ours) if best else sorted(set(sd) - ours)
    raise UserInputError(
        f"the weights in {what} do not fit {name}: {len(stray)} tensors have no place in it "
        f"(first: {stray[0]}); is it the right architecture?"
    )


def load_state(model: nn.Module, sd: dict[str, torch.Tensor], what: str) -> LoadReport:
    """Load a (convzoo-named) state_dict, checking every shape; a head of another size is kept."""
    sd, source = to_convzoo(model, sd, what)
    report = LoadReport(what if source == "convzoo" else f"{what} ({source} names)")
    own = model.state_dict()
    # Auxiliary classifiers' last layers (GoogLeNet) are heads too: kept new when they differ.
    heads = (HEAD_PREFIX, *getattr(model, "extra_head_prefixes", ()))
    head_skipped = [k for k in sd if k.startswith(heads) and k in own
                    and sd[k].shape != own[k].shape]
    wrong = [k for k in sd if k in own and k not in head_skipped and sd[k].shape != own[k].shape]
    if wrong:
        k = wrong[0]
        raise UserInputError(
            f"the weights in {what} do not fit: {k} has shape {tuple(sd[k].shape)} there and "
            f"{tuple(own[k].shape)} in the model ({len(wrong)} tensors differ)"
        )
    missing = [k for k in own if k not in sd and not k.startswith(heads)
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserInputError(f"the weights in {what} lack {len(missing)} tensors "
                             f"the model needs (first: {missing[0]})")
    for k in head_skipped:
        sd.pop(k)
    if head_skipped:
        n_src = next(v.shape[0] for k, v in own.items() if k.startswith(HEAD_PREFIX))
        report.messages.append(
            f"the file's classifier does not fit this {n_src}-class head: the backbone is "
            f"loaded and the head keeps its new random weights"
        )
    model.load_state_dict(sd, strict=False)
    report.loaded = len(sd)
    report.head_loaded = any(k.startswith(HEAD_PREFIX) for k in sd)
    head = sd.get(HEAD_PREFIX + "weight")
    if source == "torchvision" and report.head_loaded and head is not None \
            and head.shape[0] == 1000:
        report.class_names = imagenet_class_names()  # torchvision's classifiers are ImageNet-1k
    return report


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, as torchvision ships them (no network needed).

    Read from torchvision's source file as a literal rather than imported: importing
    torchvision imports its models, ops and torch._dynamo, seconds that loading EfficientNet-
    Lite's weights (the atlas's filter figures, `viz filters`) would otherwise pay for names."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("torchvision")  # finds, does not import
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            tree = ast.parse((Path(folder) / "models" / "_meta.py").read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets):
                names = ast.literal_eval(node.value)
                if isinstance(names, list) and len(names) == 1000:
                    return [str(n) for n in names]
    from torchvision.models._meta import _IMAGENET_CATEGORIES  # a layout this does not know

    return list(_IMAGENET_CATEGORIES)
