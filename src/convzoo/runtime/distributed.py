"""Data-parallel training (DDP) over the processes torchrun starts, on one machine or many.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; with WORLD_SIZE > 1 a run joins the process
group (NCCL on CUDA, one GPU per process: cuda:LOCAL_RANK; gloo on the CPU), wraps its model in
DistributedDataParallel and trains on its share of every epoch. Everything here is a no-op
when there is one process, so a single-process run does exactly what it did before.
"""

from __future__ import annotations

import gc
import os
import random
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn

from ..errors import ConvzooError, UserInputError

try:
    import torch.distributed as dist
except ImportError:  # a torch built without distributed support
    dist = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Dist:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owned: bool  # this run created the process group, so it also destroys it


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def under_agent() -> bool:
    """Whether torchrun's elastic agent started this process (also with one process)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def restart_count() -> int:
    """How many times the agent has restarted the workers (0 on the first start)."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def run_id() -> str | None:
    """The agent's rendezvous id (`--rdzv-id`; torchrun --standalone draws one): the same for
    every node and every restart of one job."""
    return os.environ.get("TORCHELASTIC_RUN_ID") or None


def barrier() -> None:
    """Every process waits here for the others (nothing without a process group)."""
    if active():
        dist.barrier()


def active() -> bool:
    """Whether a process group of more than one process is up."""
    return (dist is not None and dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def rank() -> int:
    if active():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0 writes files and prints; the other processes stay quiet."""
    return rank() == 0


def init_from_env(device: torch.device) -> Dist | None:
    """Join torchrun's process group; returns None for a single-process run.

    `device` is the one asked for; on CUDA each process takes the GPU of its LOCAL_RANK."""
    if not launched():
        return None
    if dist is None or not dist.is_available():
        raise UserInputError("WORLD_SIZE > 1 but this torch has no torch.distributed; "
                             "run without torchrun or install a torch that has it")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserInputError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} "
                                 "GPUs: lower --nproc_per_node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        timeout = join_timeout()
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    **({"timeout": timeout} if timeout is not None else {}),
                                    **_attempt_store(timeout))
        except (RuntimeError, TimeoutError) as e:  # DistError, DistStoreError among them
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ConvzooError(
                f"rank {os.environ.get('RANK', '?')} of {os.environ.get('WORLD_SIZE', '?')}: "
                f"the other processes did not join at {os.environ.get('MASTER_ADDR', '?')}:"
                f"{os.environ.get('MASTER_PORT', '?')}"
                + (f" within {timeout.total_seconds():g} s" if timeout is not None else "")
                + f" ({first}); check that every node started and can reach that address "
                "(CONVZOO_DIST_TIMEOUT sets the wait in seconds)") from None
    return Dist(dist.get_rank(), local_rank, dist.get_world_size(), device, owned)


def _attempt_store(timeout: timedelta | None) -> dict:
    """Under torchrun's agent, every restart's processes meet in the agent's store under a
    prefix of their own. The agent keeps one store for all restarts, and torch's default keys
    are the same in each: a restarted process could read the address a process of the
    previous start had published, and fail to connect to it ("Connection refused", seen
    here on most restarts under load)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or restart_count() == 0:
        return {}
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          is_master=False, timeout=timeout or timedelta(minutes=5))
    return {"store": dist.PrefixStore(f"convzoo/restart_{restart_count()}", store),
            "rank": int(os.environ["RANK"]), "world_size": int(os.environ["WORLD_SIZE"])}


def join_timeout() -> timedelta | None:
    """How long a process waits for the others to join, and a collective for the rest:
    CONVZOO_DIST_TIMEOUT seconds, else torch's default (30 minutes for gloo, 10 for NCCL).
    torchrun's own wait for nodes is its `--rdzv-conf join_timeout=S` (600 s)."""
    raw = os.environ.get("CONVZOO_DIST_TIMEOUT")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise UserInputError(f"CONVZOO_DIST_TIMEOUT={raw!r} is not a number of seconds") \
            from None
    if seconds <= 0:
        raise UserInputError(f"CONVZOO_DIST_TIMEOUT={raw!r} must be more than 0 seconds")
    return timedelta(seconds=seconds)


def cleanup(ctx: Dist | None) -> None:
    if ctx is not None and ctx.owned and dist.is_initialized():
        # A DDP wrapper left for the collector holds the group; freed after the group is
        # destroyed, at exit, gloo aborts the process ("terminate called without an active
        # exception"), so it goes first, and every process arrives before any leaves.
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, ctx: Dist) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum_(*tensors: torch.Tensor) -> None:
    """Sum each tensor over the processes, in place."""
    if active():
        for t in tensors:
            dist.all_reduce(t)


def first_bad_step(first_bad: torch.Tensor) -> torch.Tensor:
    """The earliest step (or -1) at which any process saw a non-finite loss. Collective, so
    every process stops at the same check and none waits for the others forever."""
    if not active():
        return first_bad
    never = torch.iinfo(torch.long).max
    t = torch.where(first_bad < 0, never, first_bad)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return torch.where(t == never, -1, t)


def broadcast_buffers_(module: nn.Module) -> None:
    """Copy rank 0's buffers to every process. DDP keeps the parameters (and so their EMA)
    equal, but each process updates BatchNorm statistics from its own batches; evaluation
    uses rank 0's, which are the ones the checkpoint holds."""
    if active():
        for t in module.buffers():
            dist.broadcast(t.data, 0)


def decorrelate_rng(ctx: Dist | None) -> None:
    """Give each process its own random stream (dropout, stochastic depth) from here on;
    rank 0 keeps the stream a single-process run would have."""
    if ctx is None or ctx.rank == 0:
        return
    seed = int(torch.randint(0, 2**62, ())) + ctx.rank
    random.seed(seed)
    torch.manual_seed(seed)  # every CUDA device too


def shard_len(n: int, ctx: Dist | None) -> int:
    """How many of n evaluation samples this process takes (see data.loader.shard)."""
    if ctx is None:
        return n
    return len(range(ctx.rank, n, ctx.world_size))
