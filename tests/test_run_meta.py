"""The typed view of checkpoint.json: every field a reader uses, old checkpoints' gaps filled
with defaults, ill-typed values not passed on."""

from __future__ import annotations

from convzoo.runs.meta import RunMeta


def test_fields_are_typed_and_missing_ones_have_defaults():
    m = RunMeta.of({"model": "lenet5", "data": "mnist", "input_size": [1, 32, 32],
                    "image_size": [1, 28, 28], "mean": [0.13], "std": [0.31],
                    "config": {"seed": 3, "tta_flip": True}, "epoch": 2, "step": 40,
                    "amp": "fp32", "device_type": "cpu", "class_names": ["a", 1]})
    assert m.input_size == (1, 32, 32) and m.image_size == (1, 28, 28)
    assert m.mean == (0.13,) and m.std == (0.31,) and m.class_names == ["a", "1"]
    assert m.setting("seed") == 3 and m.setting("tta_flip") is True
    assert m.setting("val_split", 0.0) == 0.0  # not recorded by older runs
    assert (m.epoch, m.step, m.amp, m.device_type) == (2, 40, "fp32", "cpu")
    old = RunMeta.of({"model": "x"})
    assert old.config == {} and old.input_size is None and old.history == []


def test_ill_typed_values_are_not_passed_on():
    m = RunMeta.of({"input_size": [1, 32], "mean": "0.5", "epoch": True, "step": "7",
                    "best_top1": False, "config": []})
    assert m.input_size is None and m.mean is None and m.epoch == 0 and m.step == 0
    assert m.best_top1 is None and m.config == {}
