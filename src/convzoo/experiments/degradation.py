"""The degradation experiment (He et al. 2016, section 4.2 and Figure 6): plain networks get
worse as they get deeper, in training error, not only test error, so the cause is not
overfitting but optimisation; the same networks with identity shortcuts get better.

Arms, for each depth: the CIFAR-10 ResNet of section 4.2 (6n+2 layers, three stages of n basic
blocks at 16, 32 and 64 filters, batch norm, shortcut option A) and its plain twin (the same
layers without shortcuts); or, with `family="highway"`, the fully connected highway and plain
nets of Srivastava et al. (figure 1 of "Training Very Deep Networks"). Every arm has the same
seed, data order, optimiser and number of epochs.

The paper trained on CIFAR-10's 45k images for 64k iterations of batch 128 (about 182 epochs),
SGD with momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at 32k and 48k iterations,
depths 20, 32, 44, 56 (and 110). The defaults here are a CPU-sized version that finishes in
about two and a half minutes on two cores: MNIST's 5,000-image sample at its own 28x28 (the
CIFAR nets end in a global pool, so they take any size; padding to 32x32 would cost 30% more
for nothing the experiment shows), two epochs of batch 64 (more steps for the same images than
batch 128, which a short budget needs), the paper's rate scaled to the batch (0.05; 0.1 at
batch 64 made resnet-56's first steps diverge in some runs), divided by 10 at half and three
quarters of the budget, and a warm-up from a tenth of the rate over the first half epoch:
without it, a 56-layer ResNet's large initial outputs meet the full rate in its first steps and
the few epochs left do not undo the damage (the paper warmed its 110-layer net up at 0.01 for
the same reason, and had some 32k steps at 0.1 for the rest to recover).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.dataset import DataSet
from ..errors import UserInputError
from ..sizes import Size
from ..tables import Table
from .common import first_batch, fit_quietly, init_grad_norms, pyplot, write_outputs
from .parts import Parts, say_estimate, step_seconds, train_seconds
from .settings import full_flag, option, sized

FAMILIES = ("resnet", "highway")
PAPER_SETTING = ("the paper: CIFAR-10 (45k training images), depths 20,32,44,56, 64k iterations "
                 "of batch 128 (~182 epochs), lr 0.1 divided by 10 at 32k and 48k iterations, "
                 "momentum 0.9, weight decay 1e-4")


@dataclass
class DegradationSettings:
    """`convzoo experiment degradation`'s settings (see `run_degradation`)."""

    data: str = sized("mnist5k", "cifar10", "a data set", metavar="NAME")
    data_dir: str | None = option(None, metavar="DIR")
    family: str = option("resnet", "resnet: CIFAR ResNets (6n+2 layers) vs plain twins; "
                         "highway: highway_fc vs plain_fc (layers in all)", choices=FAMILIES)
    depths: tuple[int, ...] = sized((20, 56), (20, 32, 44, 56), metavar="D,D,...", minimum=1)
    epochs: int = sized(2, 164, metavar="N", minimum=1)
    input: Size | None = option(None, "what the resnet family's nets see, HxW (default: the "
                                "data's own size: 28x28 for MNIST, 32x32 for CIFAR-10)",
                                metavar="HxW")
    lr: float | None = option(None, "initial rate (default: per 128 images of batch, 0.1 for "
                              "resnet as in the paper, 0.01 for highway: 0.05 and 0.005 at "
                              "batch 64)", metavar="X")
    batch_size: int = sized(64, 128, metavar="N", minimum=1)
    warmup: float = sized(0.5, 0.0, "start at a tenth of the rate, rising to it over EPOCHS "
                          "(the paper warmed up its 110-layer net; at short budgets a 56-layer "
                          "ResNet needs it too; 0: none)", metavar="EPOCHS", minimum=0)
    device: str = option("cpu", metavar="cpu|cuda|auto")
    seed: int = option(0, metavar="N")
    out: str = option("runs/experiment-degradation", metavar="DIR")
    full: bool = full_flag()


def build(family: str, depth: int, residual: bool, data: DataSet) -> tuple[nn.Module, str]:
    """(model, its name) for one arm."""
    from ..registry import create_model, list_models

    c, h, w = data.image_size
    k = data.num_classes
    if family == "resnet":
        from ..models.resnet import Arch, ResNet

        if depth < 8 or (depth - 2) % 6:
            raise UserInputError(f"CIFAR ResNets have 6n+2 layers (8, 14, 20, 32, 44, 56, ...), "
                                 f"not {depth}")
        name = f"{'resnet' if residual else 'plain'}{depth}"
        args = {"num_classes": k, "in_channels": c}
        if name in list_models():
            return create_model(name, **args), name
        # a depth the registry does not name (8, 14, 26, ...): the same family, built here
        arch = Arch(depth, "basic", ((depth - 2) // 6,) * 3, (16, 32, 64), "cifar")
        return ResNet(arch, residual=residual, **args), name
    if depth < 2:
        raise UserInputError(f"highway and plain nets need at least 2 layers, not {depth}")
    if h != w:
        raise UserInputError(f"the fully connected nets take square images; {data.name} has "
                             f"{h}x{w}")
    name = "highway_fc" if residual else "plain_fc"
    model = create_model(name, num_classes=k, in_channels=c, depth=depth - 1, image_size=h)
    return model, f"{'highway' if residual else 'plain'}-{depth}"


def run_degradation(
    data: DataSet, out: Path, *, depths: tuple[int, ...] = (20, 56), family: str = "resnet",
    epochs: int = 2, lr: float | None = None, batch_size: int = 64, warmup: float = 0.5,
    input: Size | None = None, device: str = "cpu", seed: int = 0, log=print,
) -> dict[str, Any]:
    from ..runtime.device import resolve_device
    from ..train.config import TrainConfig
    from ..train.loop import model_input_size

    if family not in FAMILIES:
        raise UserInputError(f"unknown family {family!r}; choose {' or '.join(FAMILIES)}")
    if epochs < 1:
        raise UserInputError(f"--epochs must be at least 1, got {epochs}")
    if input is not None and family != "resnet":
        raise UserInputError("--input sets the resnet family's input; the highway nets are "
                             "fully connected and take the data's own size")
    if lr is None:  # the rate per 128 images, scaled with the batch (linear scaling)
        lr = (0.1 if family == "resnet" else 0.01) * batch_size / 128
    for d in depths:  # every depth is checked before anything trains
        build(family, d, True, data)
    parts = Parts(out, "degradation", {
        "family": family, "data": data.name, "train_images": len(data.train),
        "test_images": len(data.test), "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "warmup": warmup, "input": list(input or data.image_size), "device": device,
        "seed": seed}, log)
    arms = [(depth, residual) for depth in sorted(depths) for residual in (False, True)]

    def config(name: str) -> TrainConfig:
        milestones = [epochs * 0.5, epochs * 0.75] if epochs >= 2 else []
        return TrainConfig(model=name, data=data.name, epochs=epochs, lr=lr,
                           batch_size=batch_size, momentum=0.9,
                           weight_decay=1e-4 if family == "resnet" else 0.0,
                           schedule="multistep" if milestones else "constant",
                           milestones=milestones, gamma=0.1, warmup_epochs=warmup,
                           input_size=tuple(input or data.image_size),  # type: ignore[arg-type]
                           device=device, seed=seed,
                           plots=False, tensorboard=False, out=str(out / f"runs/{name}"),
                           log_every=5)

    left = 0.0
    finished = 0
    for depth, residual in arms:
        model, name = build(family, depth, residual, data)
        if parts.done(name):
            finished += 1
            continue
        step = step_seconds(model, model_input_size(model, config(name)), batch_size,
                            resolve_device(device))
        left += train_seconds(step, step / 3, len(data.train), len(data.test), epochs,
                              batch_size)
    say_estimate(log, left, len(arms), finished)
    rows: list[dict[str, Any]] = []
    for depth, residual in arms:
        torch.manual_seed(seed)
        model, name = build(family, depth, residual, data)
        cfg = config(name)
        row = parts.load(name)
        if row is None:
            row = train_arm(model, name, depth, residual, cfg, data, batch_size, seed, log)
            parts.save(name, row)
        rows.append(row)
    result = {"experiment": "degradation", "family": family, "data": data.name,
              "input_size": list(model_input_size(model, cfg)),
              "train_images": len(data.train), "test_images": len(data.test),
              "depths": sorted(depths), "epochs": epochs, "lr": lr,
              "milestones": cfg.milestones, "warmup_epochs": warmup, "batch_size": batch_size,
              "weight_decay": cfg.weight_decay, "seed": seed, "paper_setting": PAPER_SETTING,
              "rows": rows}
    write_outputs(out, "degradation", result, result_table(result))
    plot(result, out / "degradation.png")
    return result


def train_arm(model: nn.Module, name: str, depth: int, residual: bool, cfg: Any,
              data: DataSet, batch_size: int, seed: int, log: Any) -> dict[str, Any]:
    """One arm trained: its row of the result."""
    from ..train.loop import model_input_size

    x, y = first_batch(data, model_input_size(model, cfg), batch_size, seed)
    grads = init_grad_norms(model, x, y)
    params = sum(p.numel() for p in model.parameters())
    log(f"{name}: {params:,} parameters")
    summary, recorder, seconds = fit_quietly(cfg, data, model, log)
    hist = summary["history"]
    return {
        "name": name, "depth": depth, "residual": residual, "params": params,
        "train_loss": [h["train_loss"] for h in hist],
        "train_err": [1 - h["train_top1"] for h in hist],
        "val_err_per_epoch": [None if h["val_top1"] is None else 1 - h["val_top1"]
                               for h in hist],
        "final_train_err": 1 - hist[-1]["train_top1"],
        "test_err": 1 - summary["test"]["top1"],
        "val_images": (summary.get("selection") or {}).get("images", 0),
        "grad_norm_first": grads[0]["grad_norm"], "step_loss": recorder.points,
        "seconds": seconds,
    }


def result_table(result: dict[str, Any]) -> Table:
    rows = [[r["name"], r["depth"], "yes" if r["residual"] else "no", r["params"],
             f"{r['train_loss'][-1]:.4f}", f"{100 * r['final_train_err']:.2f}",
             f"{100 * r['test_err']:.2f}", f"{r['grad_norm_first']:.3g}"]
            for r in result["rows"]]
    kind = "shortcut" if result["family"] == "resnet" else "gates"
    return Table(
        f"degradation: plain vs {'residual' if kind == 'shortcut' else 'highway'} on "
        f"{result['data']}, {result['epochs']} epochs",
        ["net", "depth", kind, "params", "final train loss", "train error %", "test error %",
         "grad norm, first layer (init)"], rows,
        [f"same seed, data order and budget: SGD lr {result['lr']} (divided by 10 at epochs "
         f"{', '.join(f'{m:g}' for m in result['milestones']) or '-'}), momentum 0.9, weight "
         f"decay {result['weight_decay']:g}, batch {result['batch_size']}; "
         f"{held_out(result)}{result['test_images']:,} test images"
         + (f"; warm-up from lr/10 over {result['warmup_epochs']:g} epoch"
            f"{'' if result['warmup_epochs'] == 1 else 's'}" if result.get("warmup_epochs")
            else ""),
         "train error %: over the last epoch, measured while training (as Figure 6's thin "
         "curves)", result["paper_setting"]],
        align_right={1, 3, 4, 5, 6, 7})


def held_out(result: dict[str, Any]) -> str:
    """'4,000 training images (400 held out for validation, 3,600 trained on), '."""
    n = result["train_images"]
    held = max((r.get("val_images", 0) for r in result["rows"]), default=0)
    if not held:
        return f"{n:,} training, "
    return f"{n:,} training images ({held:,} held out for validation, {n - held:,} trained on), "


def plot(result: dict[str, Any], path: Path) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    depth_colour = {d: colours[i % len(colours)] for i, d in enumerate(result["depths"])}
    for r in result["rows"]:
        style = dict(color=depth_colour[r["depth"]], linestyle="-" if r["residual"] else "--")
        epochs = range(1, len(r["train_err"]) + 1)
        ax.plot(epochs, [100 * e for e in r["train_err"]], marker="o", markersize=3,
                label=r["name"], **style)
        steps = [p[0] for p in r["step_loss"]]
        bx.plot(steps, smooth([p[1] for p in r["step_loss"]]), label=r["name"], **style)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training error (%)")
    ax.set_title(f"training error on {result['data']} (dashed: plain)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    bx.set_xlabel("epoch")
    bx.set_ylabel("training loss (batch, smoothed)")
    bx.set_yscale("log")
    bx.set_title("training loss")
    bx.grid(alpha=0.3, which="both")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def smooth(values: list[float], weight: float = 0.6) -> list[float]:
    """An exponential moving average, so batch-to-batch noise does not hide the trend."""
    out, s = [], None
    for v in values:
        s = v if s is None else weight * s + (1 - weight) * v
        out.append(s)
    return out
