"""benchmarks/gpu_suite.py --smoke: every part of the GPU suite runs, on the CPU, in seconds."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_suite_smoke_runs_every_part(tmp_path):
    env = {**os.environ, "CONVZOO_BENCH_RESULTS": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--smoke"],
                       capture_output=True, text=True, env=env, timeout=600)
    result = json.loads((tmp_path / "gpu_suite_smoke.json").read_text())
    parts = result["parts"]
    assert set(parts) == {"fashion_mnist", "cifar_epoch", "resnet50", "packed_loader",
                          "torchrun"}
    failed = {k: v.get("error", v.get("output")) for k, v in parts.items() if v["status"] != "ok"}
    assert not failed and p.returncode == 0, failed
    assert parts["resnet50"]["convzoo"]["train_img_s"] > 0
    assert parts["packed_loader"]["loader_and_resnet50_img_s"] > 0
    assert parts["torchrun"]["ok"] and "gloo" in parts["torchrun"]["output"]
    assert "versions" in result and result["smoke"] is True
