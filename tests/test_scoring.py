"""One scoring path: `eval`, `eval --tta`, ensembles of one member and of two copies of a run
give the same figures, bit for bit, on a data set whose statistics are not 0.5 (digits); a run
that evaluated with flip is scored with flip everywhere; the loss is the cross-entropy even
where a probability underflows."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cli_run import run
from convzoo.cli import main
from convzoo.data.catalog import load_dataset
from convzoo.evaluation.ensemble import evaluate_ensemble
from convzoo.evaluation.score import mean_of_probs, score_batches
from convzoo.runs.source import load_source

DATA = "digits"
FIGURES = ("top1", "top5", "loss", "n")


def _train(path, *extra: str) -> str:
    assert main(["train", "lenet5_modern", "--data", DATA, "--epochs", "1", "--device", "cpu",
                 "--out", str(path), "--quiet", "--batch-size", "64", *extra]) == 0
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("scoring")
    return {"plain": _train(base / "plain"), "flip": _train(base / "flip", "--tta-flip")}


def _eval(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "eval", *argv, "--format", "json", "--device", "cpu",
                         "--no-plot")
    assert code == 0, err
    return json.loads(out)


def test_the_data_is_not_normalised_with_a_half():
    ds = load_dataset(DATA, seed=0)
    assert abs(ds.mean[0] - 0.5) > 0.1 and abs(ds.std[0] - 0.5) > 0.1


@pytest.mark.parametrize("tta", [None, "ten-crop"])
def test_ensembles_of_one_and_of_two_copies_equal_eval(capsys, runs, tta):
    flags = ["--tta", tta] if tta else []
    alone = _eval(capsys, runs["plain"], *flags)
    row = alone["methods"][-1] if tta else alone
    pair = _eval(capsys, runs["plain"], runs["plain"], *flags)
    for r in (pair["members"][0], pair["members"][1], pair["ensemble"]):
        assert {k: r[k] for k in FIGURES} == {k: row[k] for k in FIGURES}

    ds = load_dataset(DATA, seed=0)
    one = evaluate_ensemble([load_source(runs["plain"])], ds.test, ds, method=tta)
    assert (one.ensemble.top1, one.ensemble.top5, one.ensemble.loss, one.ensemble.n) == \
        (row["top1"], row["top5"], row["loss"], row["n"])


def test_a_flip_run_is_scored_with_flip_by_eval_and_by_an_ensemble(capsys, runs):
    alone = _eval(capsys, runs["flip"])
    pair = _eval(capsys, runs["flip"], runs["flip"])
    assert pair["method"] == "flip"
    assert {k: pair["ensemble"][k] for k in FIGURES} == {k: alone[k] for k in FIGURES}
    # and that is the run's own final evaluation
    summary = json.loads((__import__("pathlib").Path(runs["flip"]) / "summary.json").read_text())
    test = summary.get("test") or summary["final"]
    assert alone["top1"] == pytest.approx(test["top1"])


def test_the_none_row_of_tta_is_plain_eval(capsys, runs):
    plain = _eval(capsys, runs["plain"])
    rows = _eval(capsys, runs["plain"], "--tta", "flip")["methods"]
    assert rows[0]["method"] == "none"
    assert {k: rows[0][k] for k in FIGURES} == {k: plain[k] for k in FIGURES}


class Scaled(nn.Module):
    """Logits large enough that some true-class probabilities underflow float32."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        return self.fc(x.flatten(1)) * 400


def test_the_loss_is_the_cross_entropy_where_probabilities_underflow():
    torch.manual_seed(1)
    x, y = torch.randn(64, 3, 2, 2), torch.randint(0, 4, (64,))
    model = Scaled().eval()
    with torch.no_grad():
        logits = model(x)
    assert (logits.softmax(1)[torch.arange(64), y] < 1e-12).sum() > 3  # the case in point
    res = score_batches(model, [(x[:40], y[:40]), (x[40:], y[40:])], 4, "none")
    assert res.loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    clamped = float(-logits.softmax(1)[torch.arange(64), y].clamp_min(1e-12).log().mean())
    assert res.loss != pytest.approx(clamped, rel=1e-3)


def test_the_mean_of_identical_predictions_is_the_prediction():
    torch.manual_seed(2)
    logp = F.log_softmax(torch.randn(50, 7) * 30, 1)
    assert torch.equal(mean_of_probs([logp, logp.clone(), logp.clone()]), logp)
    two = mean_of_probs([logp, torch.zeros_like(logp) - math.log(7)])
    assert torch.allclose(two.exp(), (logp.exp() + 1 / 7) / 2, atol=1e-6)
