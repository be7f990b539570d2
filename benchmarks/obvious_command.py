"""The obvious command gives a good model: `convzoo train MODEL --data NAME` with no other flag
takes the model's own defaults (`convzoo.train.defaults`).

    python benchmarks/obvious_command.py            # lenet5 on mnist5k; writes
                                                    # results/obvious_command_cpu.json
    python benchmarks/obvious_command.py --smoke    # seconds, on generated data

Target: the paper's LeNet-5 at least 90% test accuracy on mnist5k (5,000 digits), where the
bare generic defaults (`--recipe none`: SGD at 0.1, momentum 0.9, a constant rate) diverge.
Each command runs as its own process, exactly as a user types it (plus --out and --threads).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402


def train(args: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "convzoo", "train", *args, "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() \
        else {}
    test = summary.get("test") or {}
    return {"command": "convzoo train " + " ".join(args), "exit_code": proc.returncode,
            "status": summary.get("status"), "recipe": summary.get("recipe"),
            "test_top1": test.get("top1"), "epochs": summary.get("epochs"),
            "process_wall_s": round(wall, 1),
            "last_line": (proc.stdout.strip().splitlines() or [""])[-1][:200],
            "stderr_tail": proc.stderr.strip()[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    data = "fake:1x32x32:200:10" if a.smoke else "mnist5k"
    extra = ["--max-steps", "3"] if a.smoke else []
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in (("defaults", ["lenet5", "--data", data]),
                           ("generic", ["lenet5", "--data", data, "--recipe", "none",
                                        "--epochs", "8"])):
            r = train([*args, "--device", "cpu", "--threads", "1", *extra], Path(tmp) / name)
            r["arm"] = name
            runs.append(r)
            print(f"{name}: {r['command']}: test top-1 {r['test_top1']} "
                  f"(exit {r['exit_code']}, {r['process_wall_s']} s)")
    if a.smoke:
        return
    write("obvious_command_cpu", {**environment(torch.device("cpu")), "target_top1": 0.90,
                                  "runs": runs})


if __name__ == "__main__":
    main()
