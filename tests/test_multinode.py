"""Beyond one machine: torchrun agents as nodes, on localhost and in two network namespaces
joined by a veth pair; faults: a worker killed with SIGKILL, a whole node lost under
`--nnodes 1:2`, a process whose peers never join. CPU and gloo; commands as docs/cluster.md
gives them. Each agent runs in its own session and is killed with its group in a finally."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from convzoo.runs import checkpoint as ck
from convzoo.train.run import read_steps

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

# 128 images; 16 a process: at 2 processes 4 steps an epoch, 8 in all; saved every step
TRAIN = ["train", "lenet5_modern", "--data", "fake:1x28x28:128:4", "--epochs", "2",
         "--batch-size", "16", "--device", "cpu", "--save-every", "1", "--save-minutes", "0",
         "--no-report", "--set", "plots=false", "--set", "tensorboard=false"]
# The training command, which pauses once at step PAUSE_AT (in the process that PAUSE_RANK,
# when set, names, and only at world size 2) until the test has killed it.
HOOK = """
import os, sys, time, pathlib
from convzoo.train import run

at, marker = int(os.environ.get("PAUSE_AT", "0")), os.environ.get("MARKER", "")
here = os.environ.get("PAUSE_RANK", os.environ.get("RANK")) == os.environ.get("RANK")
if at and here and os.environ.get("WORLD_SIZE") == "2":
    decide = run.Run._decide
    def paused(self, i):
        if self.state.step == at and not os.path.exists(marker):
            pathlib.Path(marker).write_text(str(os.getpid()))
            time.sleep(60)  # killed here
        return decide(self, i)
    run.Run._decide = paused
from convzoo.cli import main
sys.exit(main(sys.argv[1:]))
"""
TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONVZOO_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT"):
        env.pop(key, None)
    return {**env, **extra}


def torchrun_line(*launch: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launch]


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


class Agents:
    """torchrun agents started in their own sessions; all groups killed on exit."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.logs = tmp, [], []

    def start(self, name: str, argv: list[str], env: dict[str, str],
              prefix: list[str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 (closed in stop)
        p = subprocess.Popen([*(prefix or []), *argv], env=env, cwd=self.tmp, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        self.logs.append(log)
        return p

    def wait(self, p: subprocess.Popen, timeout: float = TIMEOUT) -> int:
        return p.wait(timeout=timeout)

    def output(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                # torchrun starts each worker in a session of its own: those groups too
                for pid in [p.pid, *_descendants(p.pid)]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                p.wait()
        for log in self.logs:
            log.close()


@contextlib.contextmanager
def agents(tmp: Path) -> Iterator[Agents]:
    a = Agents(tmp)
    try:
        yield a
    finally:
        a.stop()


def hook(tmp: Path) -> str:
    path = tmp / "train_hook.py"
    path.write_text(HOOK)
    return str(path)


def assert_same(a: Path, b: Path) -> None:
    ca, cb = ck.load_checkpoint(a, prefer="last"), ck.load_checkpoint(b, prefer="last")
    assert ca.meta["step"] == cb.meta["step"] == 8
    for k, v in ca.model_state.items():
        assert torch.equal(v, cb.model_state[k]), k
    assert read_steps(a) == read_steps(b)  # every step's loss, bit for bit


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One node, two processes: the run the others must equal."""
    tmp = tmp_path_factory.mktemp("one_node")
    with agents(tmp) as a:
        p = a.start("agent", torchrun_line("--standalone", "--nnodes", "1",
                                           "--nproc-per-node", "2", hook(tmp), *TRAIN,
                                           "--out", str(tmp / "run")),
                    _env(GLOO_SOCKET_IFNAME="lo"))
        assert a.wait(p) == 0, a.output("agent")[-3000:]
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["processes"] == 2
    return tmp / "run"


def two_node_line(endpoint: str, *extra: str, nnodes: str = "2") -> list[str]:
    return ["--nnodes", nnodes, "--nproc-per-node", "1", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", endpoint, "--rdzv-id", "convzoo-test", *extra]


def test_two_nodes_on_localhost_equal_one_node(reference: Path, tmp_path: Path) -> None:
    endpoint, out = f"127.0.0.1:{free_port()}", tmp_path / "run"
    with agents(tmp_path) as a:
        nodes = [a.start(f"node{i}", torchrun_line(*two_node_line(endpoint), hook(tmp_path),
                                                   *TRAIN, "--out", str(out)),
                         _env(GLOO_SOCKET_IFNAME="lo")) for i in range(2)]
        for i, p in enumerate(nodes):
            assert a.wait(p) == 0, a.output(f"node{i}")[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["world_sizes"] == [
        {"world_size": 2, "from_step": 0, "epoch": 0}]
    assert_same(reference, out)


def _netns_skip_reason() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux's"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"czprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if r.returncode != 0:
        return f"`ip netns add` is not allowed here: {r.stderr.strip()}"
    return None


@contextlib.contextmanager
def two_namespaces() -> Iterator[tuple[str, str]]:
    """Namespaces A (10.77.0.1/24) and B (10.77.0.2/24) joined by a veth pair; nothing else
    reaches them; both deleted on exit (the pair goes with them)."""
    tag = str(os.getpid())[-6:]
    ns = (f"czA{tag}", f"czB{tag}")
    veth = (f"czva{tag}", f"czvb{tag}")

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    try:
        for n in ns:
            ip("netns", "add", n)
            ip("-n", n, "link", "set", "lo", "up")
        ip("link", "add", veth[0], "netns", ns[0], "type", "veth", "peer", "name", veth[1],
           "netns", ns[1])
        for n, v, addr in zip(ns, veth, ("10.77.0.1/24", "10.77.0.2/24")):
            ip("-n", n, "addr", "add", addr, "dev", v)
            ip("-n", n, "link", "set", v, "up")
        yield ns
    finally:
        for n in ns:
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=30)


def test_two_nodes_in_network_namespaces_equal_one_node(reference: Path,
                                                        tmp_path: Path) -> None:
    reason = _netns_skip_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "run"
    with two_namespaces() as ns, agents(tmp_path) as a:
        tag = ns[0][3:]
        nodes = []
        for i, (n, addr) in enumerate(zip(ns, ("10.77.0.1", "10.77.0.2"))):
            argv = torchrun_line(*two_node_line("10.77.0.1:29400", "--local-addr", addr,
                                                "--rdzv-conf", f"is_host={int(i == 0)}"),
                                 hook(tmp_path), *TRAIN, "--out", str(out))
            env = _env(GLOO_SOCKET_IFNAME=f"czv{'ab'[i]}{tag}")
            nodes.append(a.start(f"node{i}", argv, env, prefix=["ip", "netns", "exec", n]))
        for i, p in enumerate(nodes):
            assert a.wait(p) == 0, a.output(f"node{i}")[-3000:]
        # everything between the nodes crossed the veth pair: 8 steps' gradient all-reduces
        # (lenet5_modern: 61k float32 parameters, ~245 kB each), the rendezvous, ...
        for n, v in zip(ns, ("czva", "czvb")):
            link = json.loads(subprocess.run(["ip", "-n", n, "-s", "-j", "link", "show",
                                              f"{v}{tag}"], capture_output=True, text=True,
                                             check=True).stdout)[0]
            assert link["stats64"]["rx"]["bytes"] > 1_000_000, link["stats64"]
    assert json.loads((out / "summary.json").read_text())["processes"] == 2
    assert_same(reference, out)


def _wait_for(marker: Path, procs: list[subprocess.Popen], a: Agents) -> int:
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
            "\n".join(a.output(n)[-2000:] for n in ("agent", "node0", "node1")
                      if (a.tmp / f"{n}.log").exists())
        time.sleep(0.05)
    time.sleep(0.1)
    return int(marker.read_text())


def test_killed_worker_restarts_and_ends_equal(reference: Path, tmp_path: Path) -> None:
    out, marker = tmp_path / "run", tmp_path / "marker"
    with agents(tmp_path) as a:
        p = a.start("agent", torchrun_line("--standalone", "--nnodes", "1", "--nproc-per-node",
                                           "2", "--max-restarts", "2", hook(tmp_path), *TRAIN,
                                           "--out", str(out)),
                    _env(GLOO_SOCKET_IFNAME="lo", PAUSE_AT="6", PAUSE_RANK="1",
                         MARKER=str(marker)))
        worker = _wait_for(marker, [p], a)
        # step 6 is taken, step 5 saved: the middle of the second epoch
        assert ck.load_checkpoint(out, prefer="last").meta["step"] == 5
        os.kill(worker, signal.SIGKILL)  # kill -9 of rank 1
        assert a.wait(p) == 0, a.output("agent")[-3000:]
        log = a.output("agent")
    assert "failed (exitcode: -9) local_rank: 1" in log, log[-3000:]  # torchrun saw it
    assert "(step 5) (torchrun restart 1)" in log  # and the restarted workers resumed there
    assert_same(reference, out)


def test_lost_node_continues_at_world_size_one(tmp_path: Path) -> None:
    endpoint, out, marker = f"127.0.0.1:{free_port()}", tmp_path / "run", tmp_path / "marker"
    # fast membership decisions for a test; a cluster keeps torchrun's defaults
    conf = "join_timeout=60,last_call_timeout=3,keep_alive_interval=1,keep_alive_max_attempt=2"
    with agents(tmp_path) as a:
        nodes = []
        for i in (1, 0):  # node 1 first: waiting for node 0's store, it makes the first round 2
            argv = torchrun_line(*two_node_line(endpoint, "--max-restarts", "2", "--rdzv-conf",
                                                f"{conf},is_host={int(i == 0)}", nnodes="1:2"),
                                 hook(tmp_path), *TRAIN, "--out", str(out))
            env = _env(GLOO_SOCKET_IFNAME="lo", **(
                {"PAUSE_AT": "6", "MARKER": str(marker)} if i == 1 else {}))
            nodes.append(a.start(f"node{i}", argv, env))
        node1, node0 = nodes
        worker = _wait_for(marker, nodes, a)
        # node 1 is lost: its agent and its worker (which torchrun starts in a session of its own)
        os.killpg(node1.pid, signal.SIGKILL)
        os.killpg(worker, signal.SIGKILL)
        assert a.wait(node0) == 0, a.output("node0")[-3000:]
        log = a.output("node0")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    # saved at step 5 (epoch 2, batch 1 of 4 at world size 2), then 6 steps of 16 images
    assert summary["world_sizes"] == [{"world_size": 2, "from_step": 0, "epoch": 0},
                                      {"world_size": 1, "from_step": 5, "epoch": 1}]
    assert summary["steps"] == 11 and len(read_steps(out)) == 11
    assert "world size 2 -> 1 at step 5" in log, log[-3000:]


def test_peers_that_never_join_end_in_one_line(tmp_path: Path) -> None:
    # a process told of a second one that never comes: convzoo's own wait, one line
    env = _env(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(free_port()), CONVZOO_DIST_TIMEOUT="3")
    with agents(tmp_path) as a:
        p = a.start("alone", [sys.executable, "-m", "convzoo", *TRAIN, "--quiet", "--out",
                              str(tmp_path / "run")], env)
        assert a.wait(p, 120) == 1
        err = a.output("alone").strip()
    assert err.count("\n") == 0 and "did not join at 127.0.0.1" in err and "within 3 s" in err, err
    assert "Traceback" not in err
    # a node that never joins torchrun's rendezvous: torchrun gives up after join_timeout
    with agents(tmp_path) as a:
        p = a.start("agent", torchrun_line(*two_node_line(f"127.0.0.1:{free_port()}",
                                                          "--rdzv-conf", "join_timeout=3"),
                                           "-m", "convzoo", *TRAIN, "--out",
                                           str(tmp_path / "run2")), _env())
        assert a.wait(p, 120) != 0
        log = a.output("agent")
    assert "RendezvousTimeoutError" in log, log[-3000:]
    assert not (tmp_path / "run2").exists()  # no worker started
