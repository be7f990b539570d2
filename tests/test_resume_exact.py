"""A run stopped at any step and resumed equals the run that never stopped: the same weights
(EMA too), the same per-step losses (steps.csv) and the same per-epoch metrics; for arrays in
memory, for image folders read by worker processes, and under DDP. Resuming with other
settings is refused; resuming a finished run does nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from convzoo import registry
from convzoo.cli import main
from convzoo.errors import UserInputError
from convzoo.models.base import ClassifierHead, ConvNet, pool_flatten
from convzoo.train import TrainConfig, fit, load_checkpoint
from convzoo.train.run import Run, read_steps
from image_folders import striped_folder

DATA = "fake:1x16x16:96:4"  # batches of 16: 6 steps an epoch


class Small(ConvNet):
    """Conv, batch norm, dropout: the state a resume has to carry (dropout: the RNG)."""

    default_input_size = (1, 16, 16)

    def __init__(self, num_classes: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 6, 3, padding=1), nn.BatchNorm2d(6),
                                  nn.ReLU())
        self.stages = nn.ModuleList([nn.Sequential(nn.Conv2d(6, 8, 3, 2, 1), nn.ReLU())])
        self.head = ClassifierHead(pool_flatten(), 8, num_classes, 0.3)


@pytest.fixture(autouse=True)
def _threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVZOO_THREADS", "1")  # the same arithmetic in every run compared


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> str:
    registry._ensure_loaded()
    monkeypatch.setitem(registry._REGISTRY, "small_resume",
                        registry.ModelEntry("small_resume", Small))
    return "small_resume"


def _cfg(out: Path, model: str, **kw) -> TrainConfig:
    base = dict(model=model, data=DATA, epochs=2, batch_size=16, lr=0.05, device="cpu",
                out=str(out), tensorboard=False, plots=False, log_every=1,
                schedule="onecycle", ema=0.9, augment="shift_flip", nesterov=True,
                label_smoothing=0.1, grad_clip=5.0, val_split=0.0)  # steps counted from 96
    base.update(kw)
    return TrainConfig(**base)


def run_until(cfg: TrainConfig, step: int | None, resume: Path | None = None) -> dict:
    """`fit`'s steps, ending this invocation after `step` optimiser steps."""
    run = Run(cfg, None, resume=resume)
    try:
        run.stop_at_step = step
        run.setup()
        run.restore()
        run.start()
        run.run_epochs()
        return run.finish()
    finally:
        run.close()


def assert_same_run(a: Path, b: Path) -> None:
    ca, cb = load_checkpoint(a, prefer="last"), load_checkpoint(b, prefer="last")
    assert ca.meta["step"] == cb.meta["step"] and ca.has_ema == cb.has_ema
    for which in ("model", "ema") if ca.has_ema else ("model",):
        ta, tb = ca.tensors(which), cb.tensors(which)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{which}: {k} differs"
    sa, sb = read_steps(a), read_steps(b)
    assert len(sa) == ca.meta["step"] and sa == sb  # every step, bit for bit
    timing = ("epoch_s", "images_per_s")
    ha = [{k: v for k, v in r.items() if k not in timing} for r in ca.meta["history"]]
    hb = [{k: v for k, v in r.items() if k not in timing} for r in cb.meta["history"]]
    assert ha == hb


@pytest.fixture
def reference(small: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    fit(_cfg(out, small))
    return out


@pytest.mark.parametrize("stops", [[1], [5, 6], [7, 11]])
def test_stopped_at_any_step_and_resumed_is_the_same_run(small: str, reference: Path,
                                                         tmp_path: Path, stops: list[int]) -> None:
    out = tmp_path / "run"
    s = run_until(_cfg(out, small), stops[0])
    assert s["status"] == "stopped" and s["steps"] == stops[0]
    ck = load_checkpoint(out, prefer="last")
    assert ck.meta["step"] == stops[0]
    pos = ck.extra_state()
    if stops[0] % 6:  # inside an epoch: the loader's position and the epoch's sums
        assert pos["loader"] == {"epoch": stops[0] // 6, "batch": stops[0] % 6}
        assert pos["tally"]["seen"] == 16 * (stops[0] % 6)
    for k in stops[1:]:
        assert run_until(_cfg(out, small), k, resume=out)["steps"] == k
    assert run_until(_cfg(out, small), None, resume=out)["status"] == "completed"
    assert_same_run(reference, out)


def test_saves_every_n_steps_inside_the_epoch(small: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from convzoo.runs import checkpoint as ck

    steps = []
    real = ck.save_checkpoint

    def spy(path, **kw):
        steps.append(kw["meta"]["step"])
        return real(path, **kw)

    monkeypatch.setattr(ck, "save_checkpoint", spy)
    fit(_cfg(tmp_path / "run", small, save_every=4, save_minutes=0))
    # steps 4 and 8 inside epochs, 6 and 12 at their ends (12 is also a multiple of 4)
    assert steps == [4, 6, 8, 12]


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "pack"])
def test_image_folder_with_workers_resumes_exactly(small: str, tmp_path: Path,
                                                   packed: bool) -> None:
    data = striped_folder(tmp_path / "images", 12)
    if packed:  # the same images through `convzoo pack`: records instead of files
        from convzoo.data.pack import write_pack

        write_pack(str(tmp_path / "images"), tmp_path / "p.pack", quality=None, progress=False)
        data = f"packed:{tmp_path / 'p.pack'}"
    kw = dict(data=data, batch_size=8, workers=1, epochs=2, input_size=(1, 16, 16),
              model_args={"num_classes": 3})
    fit(_cfg(tmp_path / "a", small, **kw))
    steps = load_checkpoint(tmp_path / "a", prefer="last").meta["step"]
    per_epoch = steps // 2
    stop = per_epoch + 1  # inside the second epoch
    assert run_until(_cfg(tmp_path / "b", small, **kw), stop)["steps"] == stop
    assert load_checkpoint(tmp_path / "b", prefer="last").extra_state()["loader"] == {
        "epoch": 1, "batch": 1}
    run_until(_cfg(tmp_path / "b", small, **kw), None, resume=tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_refuses_other_settings_and_records_nothing(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r"
    base = ["--device", "cpu", "--quiet"]
    assert main(["train", "lenet5_modern", "--data", "fake:1x28x28:32:2", "--epochs", "2",
                 "--batch-size", "16", "--out", str(out), "--stop-after", "1", *base]) == 0
    config = (out / "config.json").read_text()
    for flags, named in ((["--lr", "1e6"], "lr 1000000.0"), (["--batch-size", "8"], "batch_size"),
                         (["--data", "fake:1x28x28:64:2"], "data"),
                         (["--set", "momentum=0.5"], "momentum"),
                         (["--out", str(tmp_path / "elsewhere")], "leave out --out")):
        capsys.readouterr()
        assert main(["train", "--resume", str(out), *flags, *base]) == 2
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1, err
        assert (out / "config.json").read_text() == config  # nothing recorded
    with pytest.raises(UserInputError, match="a run of"):
        fit(TrainConfig(model="lenet5", data="fake:1x28x28:32:2", device="cpu"), resume=out)
    # what may change does: more epochs, another save interval
    assert main(["train", "--resume", str(out), "--epochs", "3", "--save-every", "1",
                 *base]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["epochs"] == 3 and cfg["save_every"] == 1
    summary = (out / "summary.json").read_text()
    capsys.readouterr()
    # a finished run: said so, exit 0, nothing written
    assert main(["train", "--resume", str(out), *base]) == 0
    assert "has finished (3 of 3 epochs" in capsys.readouterr().out
    assert (out / "summary.json").read_text() == summary


DDP_SCRIPT = """
import sys
from convzoo.train.config import TrainConfig
from convzoo.train.run import Run
from convzoo.runtime import distributed as dd
from convzoo.runtime.device import resolve_device


def run(out, stop, resume):
    cfg = TrainConfig(model="lenet5_modern", data="fake:1x28x28:128:4", epochs=2,
                      device="cpu", batch_size=16, out=out, plots=False, tensorboard=False,
                      save_minutes=0, val_split=0.0)
    r = Run(cfg, ddp, resume=out if resume else None)
    r.stop_at_step = stop
    try:
        r.setup(); r.restore(); r.start(); r.run_epochs(); r.finish()
    finally:
        r.close()


ddp = dd.init_from_env(resolve_device("cpu"))
tmp = sys.argv[1]
if sys.argv[2] == "first":  # the run never stopped, and one stopped inside epoch 2
    run(tmp + "/a", None, False)
    run(tmp + "/b", 6, False)
else:  # new processes resume it
    run(tmp + "/b", None, True)
dd.cleanup(ddp)
"""


def test_ddp_two_processes_resume_exactly(tmp_path: Path) -> None:
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)

    def torchrun(what: str) -> None:
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            "--nproc_per_node=2", str(script), str(tmp_path), what],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, r.stderr[-3000:]

    # 128 images, 2 processes, 16 each: 4 steps an epoch; stopped inside the second epoch
    torchrun("first")
    ck = load_checkpoint(tmp_path / "b", prefer="last")
    assert ck.meta["step"] == 6 and ck.extra_state()["loader"] == {"epoch": 1, "batch": 2}
    assert len(ck.extra_state()["rank_rng"]) == 2  # each process's own random stream
    torchrun("resume")
    assert_same_run(tmp_path / "a", tmp_path / "b")
