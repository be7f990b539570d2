"""Export a model for deployment, and check the written file against the PyTorch model.

Three formats:

- `onnx`: an ONNX graph for ONNX Runtime and the runtimes that read ONNX (needs the `export`
  extra). Two exporters ship with torch: the TorchScript-based one (`legacy`, needs only
  `onnx`, fast) and the torch.export-based one (`dynamo`, needs `onnxscript`, handles more
  models but takes several times as long). `auto` tries the legacy one first and the dynamo
  one when it fails (adaptive pooling over a size it cannot read, for example).
- `exported`: a `torch.export` program (.pt2), loaded back with `torch.export.load`.
- `torchscript`: a traced TorchScript module (.pt), loaded back with `torch.jit.load`.

Every file is loaded back and run on the same random input as the model; the largest
absolute difference, and that divided by the largest absolute output, say how faithful it
is. The relative figure is the one to read: a randomly initialised deep network gives
logits in the tens of thousands, where an absolute 0.01 is rounding.

The file takes one tensor, N x C x H x W float32 (normalised as in training), and returns
the logits, N x classes; the auxiliary classifiers of GoogLeNet are left out.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import UserInputError
from .sizes import Size

FORMATS: dict[str, str] = {"onnx": ".onnx", "exported": ".pt2", "torchscript": ".pt"}
ONNX_EXPORTERS = ("auto", "legacy", "dynamo")
# Suffixes a format is recognised by when --format is left out.
SUFFIX_FORMATS = {".onnx": "onnx", ".pt2": "exported", ".pt": "torchscript",
                  ".ts": "torchscript", ".torchscript": "torchscript"}
INPUT_NAME, OUTPUT_NAME = "input", "logits"
# Above this many bytes of weights an ONNX file keeps them in FILE.data beside it
# (protobuf cannot hold more than 2 GiB).
EXTERNAL_DATA_BYTES = 1_800_000_000
# The example batch a dynamic-batch file is traced at, and the batches it is checked on:
# a traced size of 1 would be taken for a constant, and checking others shows it is not.
DYNAMIC_TRACE_BATCH = 2
DYNAMIC_CHECK_BATCHES = (1, 3)


class ExportError(UserInputError):
    """A model that cannot be written in a format, or not at that input: the reason in a line."""


@dataclass(frozen=True)
class Parity:
    """The exported file against the PyTorch model on the same random input."""

    max_abs_diff: float
    max_abs_output: float
    batches: tuple[int, ...]

    @property
    def relative(self) -> float:
        """max |difference| / max |output| (0 when both are 0)."""
        if self.max_abs_output == 0:
            return 0.0 if self.max_abs_diff == 0 else float("inf")
        return self.max_abs_diff / self.max_abs_output


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    exporter: str  # which exporter wrote the file, e.g. "torch.onnx legacy (opset 17)"
    input_size: Size
    batch: int | None  # None: any batch size
    parity: Parity

    @property
    def size_bytes(self) -> int:
        extra = self.path.with_name(self.path.name + ".data")
        return self.path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)


class LogitsOnly(nn.Module):
    """The model with one output, the logits: GoogLeNet's `ModelOutput` and the like reduced
    to the tensor a deployed classifier returns."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out.logits if hasattr(out, "logits") else out


def format_for(fmt: str | None, out: str | Path) -> str:
    """The format asked for, or the one `out`'s suffix names."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UserInputError(f"unknown format {fmt!r}: choose {', '.join(FORMATS)}")
        return fmt
    suffix = Path(out).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise UserInputError(f"cannot tell the format from {str(out)!r}: pass --format "
                             f"{'|'.join(FORMATS)} (or name the file .onnx, .pt2 or .pt)")
    return SUFFIX_FORMATS[suffix]


def export_model(model: nn.Module, fmt: str, out: str | Path, input_size: Size, *,
                 dynamic_batch: bool = False, batch: int = 1, seed: int = 0,
                 onnx_exporter: str = "auto",
                 metadata: dict[str, str] | None = None) -> ExportResult:
    """Write `model` (on the CPU, in eval mode, float32) to `out` in format `fmt` for inputs of
    `input_size` (C, H, W) and a batch of `batch`, or any batch with `dynamic_batch`; then load
    the file back and compare it with the model on random input.

    A model that cannot be written raises ExportError with the exporter's reason; nothing is
    left at `out` then (the file is written under a temporary name and renamed). `metadata`
    (ONNX only) goes into the file's metadata_props, where ONNX Runtime's `metadata_map`
    reads it: what a deployment needs besides the graph (class names, normalisation)."""
    fmt = format_for(fmt, out)
    if onnx_exporter not in ONNX_EXPORTERS:
        raise UserInputError(f"unknown ONNX exporter {onnx_exporter!r}: choose "
                             f"{', '.join(ONNX_EXPORTERS)}")
    if batch < 1:
        raise UserInputError(f"the batch size must be at least 1, got {batch}")
    out = Path(out)
    if out.is_dir():
        raise UserInputError(f"{out} is a directory: pass a file name, e.g. {out / 'model'}"
                             f"{FORMATS[fmt]}")
    if not out.parent.is_dir():
        raise UserInputError(f"cannot write {out}: directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):  # a read-only mount, or no permission
        raise UserInputError(f"cannot write {out}: directory {out.parent} is not writable")
    name = getattr(model, "model_name", type(model).__name__)
    was_training = model.training
    wrapped = LogitsOnly(model.cpu().float()).eval()
    c, h, w = input_size
    example_batch = DYNAMIC_TRACE_BATCH if dynamic_batch else batch
    example = _random_input((example_batch, c, h, w), seed)
    try:
        with torch.no_grad():
            try:
                wrapped(example)
            except Exception as e:
                raise ExportError(f"{name} does not take a {c}x{h}x{w} input: "
                                  f"{_reason(e)}") from None
            exporter = _write(wrapped, fmt, out, example, dynamic_batch, onnx_exporter, name)
            if metadata and fmt == "onnx":
                add_onnx_metadata(out, metadata)
            check = DYNAMIC_CHECK_BATCHES if dynamic_batch else (batch,)
            parity = check_parity(wrapped, fmt, out, input_size, check, seed)
    finally:
        model.train(was_training)
    return ExportResult(out, fmt, exporter, (c, h, w), None if dynamic_batch else batch, parity)


def check_parity(model: nn.Module, fmt: str, path: str | Path, input_size: Size,
                 batches: tuple[int, ...] = (1,), seed: int = 0) -> Parity:
    """Run the file at `path` and `model` on the same random inputs, one per batch size."""
    run = _runner(fmt, Path(path))
    diff = biggest = 0.0
    model = LogitsOnly(model) if not isinstance(model, LogitsOnly) else model
    for i, n in enumerate(batches):
        x = _random_input((n, *input_size), seed + 1 + i)
        with torch.no_grad():
            ref = model.eval()(x).float()
        if not bool(torch.isfinite(ref).all()):
            # e.g. a very deep net at initialisation, its batch norm not yet calibrated
            raise ExportError(f"{path} was written, but the model's own output on random "
                              "input is not finite (nan or inf), so there is nothing to check "
                              "the file against")
        try:
            got = run(x)
        except Exception as e:
            raise ExportError(f"the {fmt} file {path} does not run on a batch of {n}: "
                              f"{_reason(e)}") from None
        if tuple(got.shape) != tuple(ref.shape):
            raise ExportError(f"the {fmt} file {path} returns shape {tuple(got.shape)} on a "
                              f"batch of {n}; the model returns {tuple(ref.shape)}")
        diff = max(diff, float((got.float() - ref).abs().max()))
        biggest = max(biggest, float(ref.abs().max()))
    return Parity(diff, biggest, tuple(batches))


# --- writing -------------------------------------------------------------------------------


def _write(model: nn.Module, fmt: str, out: Path, example: torch.Tensor, dynamic_batch: bool,
           onnx_exporter: str, name: str) -> str:
    params = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    external = fmt == "onnx" and params > EXTERNAL_DATA_BYTES
    # External weights are found by the name written into the graph, so such a file is
    # written in place; every other file goes to a temporary name first.
    tmp = out if external else out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if fmt == "onnx":
            exporter = _write_onnx(model, tmp, example, dynamic_batch, onnx_exporter, name,
                                   external)
        elif fmt == "exported":
            exporter = _write_exported(model, tmp, example, dynamic_batch, name)
        else:
            exporter = _write_torchscript(model, tmp, example, name)
        if tmp != out:
            tmp.replace(out)
    finally:
        if tmp != out and tmp.exists():
            tmp.unlink()
    return exporter


def _write_onnx(model: nn.Module, path: Path, example: torch.Tensor, dynamic_batch: bool,
                exporter: str, name: str, external: bool) -> str:
    _require("onnx", "--format onnx")
    if exporter == "legacy":
        return _onnx_legacy(model, path, example, dynamic_batch, name)
    if exporter == "dynamo":
        return _onnx_dynamo(model, path, example, dynamic_batch, name, external)
    try:
        return _onnx_legacy(model, path, example, dynamic_batch, name)
    except ExportError as legacy_error:
        try:
            return _onnx_dynamo(model, path, example, dynamic_batch, name, external)
        except ExportError as e:
            raise ExportError(f"{legacy_error}; the dynamo exporter failed too: "
                              f"{str(e).split(': ', 1)[-1]}") from None


def add_onnx_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Set `metadata` as the ONNX file's metadata_props (replacing keys of the same name),
    rewriting the file under a temporary name first."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    tmp = path.with_name(f".{path.name}.meta")
    try:
        onnx.save(proto, str(tmp))
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _onnx_legacy(model: nn.Module, path: Path, example: torch.Tensor, dynamic_batch: bool,
                 name: str) -> str:
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with _quiet(), _failure(name, "onnx (legacy exporter)"):
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes=axes)
    return f"torch.onnx legacy (opset {_opset(path)})"


def _onnx_dynamo(model: nn.Module, path: Path, example: torch.Tensor, dynamic_batch: bool,
                 name: str, external: bool) -> str:
    _require("onnxscript", "the dynamo ONNX exporter")
    with _quiet(), _failure(name, "onnx (dynamo exporter)"):
        torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes=_batch_dim(dynamic_batch), external_data=external)
    return f"torch.onnx dynamo (opset {_opset(path)})"


def _write_exported(model: nn.Module, path: Path, example: torch.Tensor, dynamic_batch: bool,
                    name: str) -> str:
    with _quiet(), _failure(name, "exported (torch.export)"):
        program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim(dynamic_batch))
        # torch.export.save names the archive after the path: keep the .pt2 suffix on the
        # temporary file by writing through an open file instead.
        with open(path, "wb") as f:
            torch.export.save(program, f)
    return f"torch.export (torch {torch.__version__})"


def _write_torchscript(model: nn.Module, path: Path, example: torch.Tensor, name: str) -> str:
    with _quiet(), _failure(name, "torchscript (torch.jit.trace)"):
        traced = torch.jit.trace(model, (example,), check_trace=False)
        traced.save(str(path))
    return f"torch.jit.trace (torch {torch.__version__})"


def _batch_dim(dynamic_batch: bool) -> tuple[dict[int, object]] | None:
    return ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None


def _opset(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return str(versions[0]) if versions else "?"


# --- loading back --------------------------------------------------------------------------


def _runner(fmt: str, path: Path):  # -> Callable[[Tensor], Tensor]
    if fmt == "onnx":
        ort = _require("onnxruntime", "checking an ONNX file")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
        try:
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ExportError(f"ONNX Runtime cannot load {path}: {_reason(e)}") from None
        feed = session.get_inputs()[0].name

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {feed: x.numpy()})[0])

        return run
    if fmt == "exported":
        with _quiet():
            module = torch.export.load(str(path)).module()

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(x)

        return run
    with _quiet():
        scripted = torch.jit.load(str(path), map_location="cpu")
    scripted.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return scripted(x)

    return run


# --- helpers -------------------------------------------------------------------------------


def _random_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g)


def _require(module: str, what: str):  # -> the module
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{what} needs the {module} package: pip install 'convzoo[export]'") \
            from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' progress lines, graph dumps and deprecation warnings stay out of the
    user's output. Some are written by torch's C++ side straight to file descriptors 1 and 2,
    so those are pointed at /dev/null too, not only sys.stdout."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no such descriptors (an embedded interpreter): Python's streams only
        saved = []
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            open(os.devnull, "w") as null:
        warnings.simplefilter("ignore")
        for fd in (1, 2) if saved else ():
            os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)


@contextlib.contextmanager
def _failure(name: str, what: str) -> Iterator[None]:
    """Any exception from an exporter becomes one line naming the model and the format."""
    try:
        yield
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{name} cannot be exported as {what}: {_reason(e)}") from None


def _reason(e: BaseException, limit: int = 240) -> str:
    """The first informative line of the innermost cause: exporters wrap the real error in
    pages of advice and a graph dump."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[0] if lines else type(e).__name__
    text = re.split(r"(?<=\.)\s+Please\b", text)[0]  # the exporters' standard advice
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text
