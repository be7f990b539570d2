"""Why ReLU: the same network trained with each activation function, same initial weights,
same data order, same budget.

Recorded per activation: the training loss per epoch (and every few steps), the training and
test accuracy, and the gradient norm that reaches each layer's weights on one batch at
initialisation. The lecture's argument is in the last one: a sigmoid's derivative is at most
1/4, so each layer a gradient passes back through shrinks it, and the first layers of a deep
sigmoid net barely learn; ReLU's derivative is 1 where a unit is active.

The default net is `plain_fc` with 9 hidden layers after the first (10 layers, the highway
paper's shallowest plain net): deep enough for the effect, small enough for a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.dataset import DataSet
from ..errors import UserInputError
from ..tables import Table
from .common import first_batch, fit_quietly, init_grad_norms, pyplot, write_outputs
from .parts import Parts, say_estimate, step_seconds, train_seconds
from .settings import full_flag, option

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu")


@dataclass
class ActivationsSettings:
    """`convzoo experiment activations`'s settings (see `run_activations`)."""

    data: str = option("digits", "a data set (digits: 8x8, offline)", metavar="NAME")
    data_dir: str | None = option(None, metavar="DIR")
    act: tuple[str, ...] = option(ACTIVATIONS, "activations", metavar="A,A,...")
    model: str = option("plain_fc", "the network (lenet5_modern for a conv net)",
                        metavar="NAME")
    depth: int | None = option(None, "hidden layers after the first, for plain_fc, "
                               "highway_fc, plain_conv, highway_conv (default for plain_fc: 9)",
                               metavar="N", minimum=1)
    epochs: int = option(20, metavar="N", minimum=1)
    lr: float = option(0.01, "SGD with momentum 0.9 at a constant rate", metavar="X")
    batch_size: int = option(64, metavar="N", minimum=1)
    init: str = option("model", "weights drawn again for every arm: glorot (suits tanh), he "
                       "(suits ReLU); model: the model's own (Glorot for plain_fc)",
                       choices=("model", "glorot", "he"))
    device: str = option("cpu", metavar="cpu|cuda|auto")
    seed: int = option(0, metavar="N")
    out: str = option("runs/experiment-activations", metavar="DIR")
    full: bool = full_flag("no change: the defaults are already the whole experiment (about "
                           "a minute on a 2-core CPU)")


DEPTH_MODELS = ("plain_fc", "highway_fc", "plain_conv", "highway_conv")
FC_MODELS = ("plain_fc", "highway_fc")
INITS = ("model", "glorot", "he")
INIT_NAMES = {"model": "the model's own init", "glorot": "Glorot normal", "he": "He normal"}


def reinit(model: torch.nn.Module, init: str) -> None:
    """Every Linear and Conv2d weight drawn again: Glorot's normal (the variance tanh wants),
    or He's (fan-in, gain sqrt 2: the variance ReLU wants, since it zeroes half its inputs);
    'model' keeps the model's own initialisation."""
    if init == "model":
        return
    for m in model.modules():
        if isinstance(m, torch.nn.Linear | torch.nn.Conv2d):
            if init == "he":
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                torch.nn.init.xavier_normal_(m.weight)


def model_args(model: str, data: DataSet, depth: int | None) -> dict[str, Any]:
    c, h, w = data.image_size
    args: dict[str, Any] = {"num_classes": data.num_classes, "in_channels": c}
    if model in FC_MODELS:
        if h != w:
            raise UserInputError(f"{model} takes square images; {data.name} has {h}x{w}")
        args["image_size"] = h
    if depth is not None:
        if model not in DEPTH_MODELS:
            raise UserInputError(f"--depth applies to {', '.join(DEPTH_MODELS)}, not {model}")
        if depth < 1:
            raise UserInputError(f"--depth must be at least 1, got {depth}")
        args["depth"] = depth
    return args


def run_activations(
    data: DataSet, out: Path, *, acts: tuple[str, ...] = ACTIVATIONS, model: str = "plain_fc",
    depth: int | None = 9, epochs: int = 20, lr: float = 0.01, batch_size: int = 64,
    init: str = "model", device: str = "cpu", seed: int = 0, log=print,
) -> dict[str, Any]:
    from ..layers.activations import act_factory
    from ..registry import create_model, get_entry
    from ..runtime.device import resolve_device
    from ..train.config import TrainConfig
    from ..train.loop import model_input_size

    get_entry(model)
    for a in acts:
        act_factory(a)  # an unknown name fails before any training
    args = model_args(model, data, depth)
    if init not in INITS:
        raise UserInputError(f"unknown init {init!r}; choose {', '.join(INITS)}")
    parts = Parts(out, "activations", {
        "model": model, "model_args": args, "data": data.name,
        "train_images": len(data.train), "test_images": len(data.test), "epochs": epochs,
        "lr": lr, "batch_size": batch_size, "init": init, "device": device, "seed": seed}, log)

    def arm(act: str) -> tuple[torch.nn.Module, TrainConfig]:
        torch.manual_seed(seed)
        net = create_model(model, act=act, **args)
        reinit(net, init)
        cfg = TrainConfig(model=model, data=data.name, epochs=epochs, lr=lr,
                          batch_size=batch_size, momentum=0.9, weight_decay=0.0,
                          schedule="constant", device=device, seed=seed, plots=False,
                          tensorboard=False, out=str(out / f"runs/{act}"), log_every=5,
                          model_args={**args, "act": act})
        return net, cfg

    left = 0.0
    for act in acts:
        if not parts.done(act):
            net, cfg = arm(act)
            step = step_seconds(net, model_input_size(net, cfg), batch_size,
                                resolve_device(device))
            left += train_seconds(step, step / 3, len(data.train), len(data.test), epochs,
                                  batch_size)
    say_estimate(log, left, len(acts), sum(parts.done(a) for a in acts))
    rows: list[dict[str, Any]] = []
    for act in acts:
        row = parts.load(act)
        if row is None:
            net, cfg = arm(act)
            row = train_arm(net, act, cfg, data, batch_size, seed, log)
            parts.save(act, row)
        rows.append(row)
    result = {"experiment": "activations", "model": model, "model_args": args,
              "data": data.name, "train_images": len(data.train), "test_images": len(data.test),
              "epochs": epochs, "lr": lr, "momentum": 0.9, "batch_size": batch_size,
              "init": init, "seed": seed, "rows": rows}
    write_outputs(out, "activations", result, result_table(result))
    plot(result, out / "activations.png")
    return result


def train_arm(net: torch.nn.Module, act: str, cfg: Any, data: DataSet, batch_size: int,
              seed: int, log: Any) -> dict[str, Any]:
    """One activation's net trained: its row of the result."""
    from ..train.loop import model_input_size

    x, y = first_batch(data, model_input_size(net, cfg), batch_size, seed)
    grads = init_grad_norms(net, x, y)
    log(f"{act}: gradient norm at the first layer at initialisation "
        f"{grads[0]['grad_norm']:.3g}, at the last {grads[-1]['grad_norm']:.3g}")
    summary, recorder, seconds = fit_quietly(cfg, data, net, log)
    hist = summary["history"]
    return {
        "act": act, "train_loss": [h["train_loss"] for h in hist],
        "train_acc": [h["train_top1"] for h in hist],
        "test_acc_per_epoch": [h["val_top1"] for h in hist],
        "test_acc": summary["test"]["top1"], "final_train_loss": hist[-1]["train_loss"],
        "grad_norm_first": grads[0]["grad_norm"], "grad_norm_last": grads[-1]["grad_norm"],
        "grad_norms_init": grads, "step_loss": recorder.points,
        "seconds": seconds,
    }


def result_table(result: dict[str, Any]) -> Table:
    rows = [[r["act"], f"{r['train_loss'][0]:.4f}", f"{r['final_train_loss']:.4f}",
             f"{r['test_acc']:.4f}", f"{r['grad_norm_first']:.3g}", f"{r['grad_norm_last']:.3g}"]
            for r in result["rows"]]
    depth = result["model_args"].get("depth")
    what = f"{result['model']}" + (f", depth {depth}" if depth is not None else "")
    return Table(
        f"activations: {what} on {result['data']}, {result['epochs']} epochs",
        ["activation", "loss, epoch 1", f"loss, epoch {result['epochs']}", "test accuracy",
         "grad norm, first layer (init)", "grad norm, last layer (init)"], rows,
        [f"same initial weights ({INIT_NAMES[result.get('init', 'model')]}) and data order "
         f"(seed {result['seed']}); SGD lr {result['lr']}, "
         f"momentum 0.9, batch {result['batch_size']}; {result['train_images']} training, "
         f"{result['test_images']} test images",
         "grad norm: of the loss on one batch with respect to the layer's weights, before "
         "training"],
        align_right={1, 2, 3, 4, 5})


def plot(result: dict[str, Any], path: Path) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in result["rows"]:
        line, = ax.plot(range(1, len(r["train_loss"]) + 1), r["train_loss"], marker="o",
                        markersize=3, label=f"{r['act']} (test {r['test_acc']:.3f})")
        norms = [max(g["grad_norm"], 1e-12) for g in r["grad_norms_init"]]
        bx.plot(range(1, len(norms) + 1), norms, marker="o", markersize=3,
                color=line.get_color(), label=r["act"])
    from matplotlib.ticker import MaxNLocator

    for axis in (ax, bx):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_yscale("log")
    ax.set_title(f"{result['model']} on {result['data']}: training loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    bx.set_yscale("log")
    bx.set_xlabel("layer (1 = next to the input)")
    bx.set_ylabel("gradient norm at initialisation")
    bx.set_title("gradient reaching each layer, before training")
    bx.grid(alpha=0.3, which="both")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
