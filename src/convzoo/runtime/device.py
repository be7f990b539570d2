"""Where and how a run computes: the device, autocast's dtype, channels_last, CPU threads, and
their names.

bf16 autocast and channels_last on a GPU; fp32 and channels_last on the CPU, unless the config
says otherwise (`device`, `amp`, `channels_last`). On the CPU channels_last lets oneDNN run
its blocked convolution kernels without reordering every tensor first: measured on one core
of a Xeon (Sapphire Rapids), training steps ran 1.2x faster for lenet5_modern and resnet20 and
2x for the paper's lenet5 (benchmarks/cpu_speed.py records the figures).

CPU threads (`cpu_threads`): as many as there are cores free, at least one. Free cores are
those this process may run on (`os.sched_getaffinity`) less those other work keeps busy now
(/proc/stat over a tenth of a second; the 1-minute load average where there is no /proc, but it
lags: a minute after a job ends it still counts about one busy core, and the run after it would
take half the threads of an idle 2-core machine). Intra-op threads that wait for a busy core
stall every operator: on a 2-core machine with other work running, LeNet-5 trained at 24
images/s with torch's default two threads against 135 with one. A thread count the user chose
(a run's `threads`, `--threads`, OMP_NUM_THREADS or CONVZOO_THREADS) is kept.

bf16 on the CPU (`amp = "auto"`, `cpu_auto_amp`): where the CPU multiplies bf16 matrices in
hardware (Intel AMX) and the model is convolution-bound. Measured, one training step at one
thread, channels_last, bf16 autocast against fp32 (images/s ratio): resnet20 at 32x32 1.7-2.1,
plain20 2.1, resnet_fmnist 2.9, highway_conv 2.3, resnet18 at 224 2.4; but resnet18 at 32x32
0.89, vgg11_bn at 32x32 1.03, alexnet 1.04 (weight-bound: autocast casts every weight each
step), mobilenet_v1_025 0.36, mobilenet_v2 0.45, efficientnet_lite0 0.52 (depthwise
convolutions have no fast bf16 kernel) and lenet5 0.8 (too small: the casts cost more than
the arithmetic). Hence the rule: bf16 when the CPU has AMX, no convolution is grouped, and
the model does at least 5M multiply-adds per image and 30 per weight; fp32 otherwise. At
equal epochs bf16 reached the same accuracy (lenet5_modern, Fashion-MNIST, 3 epochs: 89.33%
against fp32's 89.60%, within the 0.3-point noise of 10,000 test images).
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserInputError

THREADS_ENV = ("CONVZOO_THREADS", "OMP_NUM_THREADS")


def resolve_device(spec: str) -> torch.device:
    """'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N' as a torch.device."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserInputError(f"unknown device {spec!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but no CUDA GPU is available "
                             "(use --device cpu or auto)")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast's dtype for the setting `amp` on `device`; None means fp32 throughout."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("fp32", "none", "off"):
        return None
    raise UserInputError(f"unknown amp setting {amp!r}: use auto, bf16 or fp32")


def resolve_channels_last(setting: bool | None, device: torch.device) -> bool:
    """The config's choice, or channels_last on a GPU and on the CPU (faster on both, see the
    module's docstring); other devices keep the default layout."""
    return setting if setting is not None else device.type in ("cuda", "cpu")


# the bf16 rule on the CPU (see the module's docstring): measured where it pays
BF16_MIN_MACS = 5_000_000
BF16_MIN_MACS_PER_WEIGHT = 30


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU has bf16 matrix units (Intel AMX), on which oneDNN runs bf16
    convolutions several times faster than fp32 ones."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, hence guarded
    if probe is not None:
        try:
            return bool(probe())
        except Exception:  # noqa: BLE001 - a probe that fails means no
            pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def cpu_auto_amp(model: torch.nn.Module, input_size: tuple[int, int, int]
                 ) -> tuple[torch.dtype | None, str]:
    """`amp = "auto"` on the CPU for this model: bf16 autocast where it pays, and why."""
    if not cpu_has_amx_bf16():
        return None, "fp32 (the CPU has no bf16 matrix units)"
    if any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in model.modules()):
        return None, "fp32 (grouped convolutions are slower in bf16)"
    from ..analysis.profile import profile_model

    try:
        prof = profile_model(model, input_size)
    except Exception:  # noqa: BLE001 - a model the counter cannot follow keeps fp32
        return None, "fp32 (the model's operations could not be counted)"
    macs, weights = prof.total_macs, max(1, prof.total_params)
    counted = f"{macs / 1e6:.1f}M multiply-adds per image, {macs / weights:.0f} per weight"
    if macs < BF16_MIN_MACS or macs < BF16_MIN_MACS_PER_WEIGHT * weights:
        return None, f"fp32 ({counted}: too few for bf16 to pay)"
    return torch.bfloat16, f"bf16 autocast on the CPU's AMX units ({counted})"


def run_amp(meta: Any, device: torch.device, model: torch.nn.Module,
            input_size: tuple[int, int, int]) -> torch.dtype | None:
    """The precision to score a run's model in on `device`, so that scoring it later gives the
    accuracy it reported: the one the run evaluated in where it ran on this kind of device, else
    its amp setting decided for this device and model as training decides it. `meta`: the
    run's `runs.meta.RunMeta` (or its checkpoint.json as a dict)."""
    if isinstance(meta, dict):
        from ..runs.meta import RunMeta

        meta = RunMeta.of(meta)
    setting = meta.setting("amp", "auto")
    if setting == "auto" and meta.amp and meta.device_type == device.type:
        return resolve_amp(meta.amp, device)
    if setting == "auto" and device.type == "cpu":
        return cpu_auto_amp(model, input_size)[0]
    return resolve_amp(setting, device)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast to `dtype`, or nothing at all for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def amp_name(dtype: torch.dtype | None) -> str:
    """'bfloat16' or 'fp32', as run summaries report it."""
    return str(dtype).replace("torch.", "") if dtype is not None else "fp32"


def device_name(device: torch.device) -> str:
    """The device as a person would name it: the GPU's model, or the CPU and its threads."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'s' if n != 1 else ''})"


# ---- CPU threads ---------------------------------------------------------------------------

def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_average() -> float | None:
    """The 1-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str

    def __str__(self) -> str:
        return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.reason})"


def check_threads(n: int) -> int:
    """`n` if it is a thread count this machine can use; else a one-line UserInputError."""
    cores = max(os.cpu_count() or 1, usable_cores())
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > cores:
        # far more threads than cores only slows every operator down; torch's pools crash
        # outright on counts in the millions
        raise UserInputError(f"--threads must be between 1 and this machine's {cores} "
                             f"cores, got {n}")
    return n


def _env_threads() -> tuple[str, int] | None:
    for name in THREADS_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                n = int(value)
            except ValueError:
                raise UserInputError(f"{name}={value!r} is not a whole number of threads") \
                    from None
            if n >= 1:
                return name, n
    return None


def own_load() -> float:
    """This process's own average share of the load: its CPU seconds over its lifetime's wall
    seconds (a long-lived process, a benchmark say, must not count its own earlier work as
    another's). 0 where /proc is missing."""
    try:
        import resource

        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return max(0.0, (ru.ru_utime + ru.ru_stime) / age) if age > 1.0 else 0.0
    except (OSError, ValueError, IndexError, ImportError, AttributeError):
        return 0.0


def busy_cores_now(window: float = 0.1) -> float | None:
    """Cores other work keeps busy now: the busy share of /proc/stat's CPU time over `window`
    seconds, times the CPUs it counts, less this process's own CPU time in that window. None
    where /proc/stat cannot be read."""
    import resource
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]  # all, idle + waiting for I/O

    def own() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    try:
        (all0, idle0), own0, t0 = sample(), own(), time.monotonic()
        time.sleep(window)
        (all1, idle1), own1, t1 = sample(), own(), time.monotonic()
    except (OSError, ValueError, IndexError):
        return None
    if all1 <= all0 or t1 <= t0:
        return None
    cpus = os.cpu_count() or 1
    busy = (1 - (idle1 - idle0) / (all1 - all0)) * cpus
    return max(0.0, busy - (own1 - own0) / (t1 - t0))


def other_work() -> tuple[float | None, str]:
    """(cores other work keeps busy, how that was measured): busy now (`busy_cores_now`),
    else the 1-minute load average less this process's own share; None where neither can be
    had. What the thread count and the loader's worker count both follow."""
    busy = busy_cores_now()
    if busy is not None:
        return busy, "other work busy on"
    total = load_average()
    return (None if total is None else max(0.0, total - own_load())), "load of other work"


def free_cores(cores: int, load: float | None) -> int:
    """Cores left for this run: `cores` less the load (rounded) of other work, at least one.
    A load average counts runnable processes, so a load of 2.0 keeps two cores busy."""
    if load is None:
        return cores
    return max(1, min(cores, cores - int(load + 0.5)))


def choose_threads(cores: int | None = None, load: float | None = None,
                   asked: int | None = None) -> ThreadChoice:
    """How many threads a CPU run should use, and why (see the module's docstring): `asked`
    (a run's `threads` setting) when given, else the environment's, else the cores free."""
    if asked is not None:
        return ThreadChoice(check_threads(asked), "as asked")
    env = _env_threads()
    if env is not None:
        # a cluster's OMP_NUM_THREADS=64 on a small node: more threads than cores only slow
        # every operator down, and counts in the millions crash torch's pools
        most = max(os.cpu_count() or 1, usable_cores())
        if env[1] > most:
            return ThreadChoice(most, f"{env[0]}={env[1]}, capped at the {most} cores")
        return ThreadChoice(env[1], f"{env[0]}={env[1]}")
    cores = usable_cores() if cores is None else cores
    what = "load of other work"
    if load is None:
        load, what = other_work()
    n = free_cores(cores, load)
    where = f"{cores} core{'s' if cores != 1 else ''}"
    if load is None:
        return ThreadChoice(n, f"{where}, no load average")
    return ThreadChoice(n, f"{where}, {what} {load:.1f}: {n} free")


def cpu_threads(asked: int | None = None) -> ThreadChoice:
    """Choose the thread count (`choose_threads`) and set it; what a CPU run calls first."""
    choice = choose_threads(asked=asked)
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


def cpu_fast_path_line(choice: ThreadChoice, channels_last: bool, optimizer: str,
                       amp: str = "fp32", kernels: list[str] | None = None) -> str:
    """What a CPU run says about how it computes, for its log."""
    layout = "channels_last" if channels_last else "contiguous layout"
    swapped = f", {', '.join(kernels)}" if kernels else ""
    return (f"cpu: {choice}, {amp}, {layout}{swapped}, {optimizer} step; evaluation under "
            "torch.inference_mode")
