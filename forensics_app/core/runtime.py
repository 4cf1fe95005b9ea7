"""The one place that creates onnxruntime sessions.

CUDA is used only when it really works: probed once with a tiny model, quietly, so CPU-only
machines (and onnxruntime-gpu wheels without CUDA libraries) produce no error spew.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_CHOICES = ("auto", "cpu", "cuda")
# TF32 convolutions (onnxruntime's CUDA default on Ampere and later) keep 10 mantissa bits: scores
# would then differ from the CPU's, on which the calibrations were made and most users analyse.
# cuDNN's exhaustive algorithm search would time every convolution again for each new image size.
CUDA_OPTIONS = {"use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"}

_QUIET = 3  # onnxruntime severity: 3 = errors only; provider-probe failures are expected, not errors


def _ort():
    import onnxruntime as ort

    ort.set_default_logger_severity(_QUIET)
    return ort


@contextmanager
def _silenced_native_output():
    """Mute C-level stdout/stderr: a failed CUDA probe is expected on CPU machines, not news."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


_probe_lock = threading.Lock()


def cuda_usable() -> bool:
    """True when a CUDA session can actually be created and run (probed once per process).

    Locked: two threads probing at once (the GUI's worker and thumbnailer) would interleave their
    redirections of stdout/stderr, letting the probe's messages through or leaving output muted.
    """
    with _probe_lock:
        return _cuda_usable()


@lru_cache(maxsize=1)
def _cuda_usable() -> bool:
    ort = _ort()
    if CUDA not in ort.get_available_providers():
        return False
    ort.set_default_logger_severity(4)
    try:
        with _silenced_native_output():
            return _probe_cuda(ort)
    finally:
        ort.set_default_logger_severity(_QUIET)


def _probe_cuda(ort) -> bool:
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:  # CUDA/cuDNN libraries shipped with a CUDA build of torch, when present
            preload(directory="")
        except Exception:
            pass
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(_probe_model(), options, providers=[CUDA, CPU])
        if session.get_providers()[0] != CUDA:
            return False
        import numpy as np

        session.run(None, {"x": np.ones((1, 4), np.float32)})
        return True
    except Exception:
        return False


def _probe_model() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def resolve_providers(preference: str = "auto") -> list[str]:
    """Execution providers for a preference: 'auto' (CUDA when usable), 'cpu', or 'cuda'."""
    if preference not in PROVIDER_CHOICES:
        raise ValueError(f"provider must be one of {PROVIDER_CHOICES}, not {preference!r}")
    if preference == "cpu":
        return [CPU]
    if cuda_usable():
        return [CUDA, CPU]
    if preference == "cuda":
        from forensics_app.core.errors import ForensicsError

        raise ForensicsError("CUDA was requested but is not usable on this machine (no GPU or no CUDA "
                             "libraries); use provider 'auto' or 'cpu'.")
    return [CPU]


@dataclass(frozen=True)
class RuntimeSettings:
    provider: str = "auto"
    intra_op_threads: int = 0  # 0 lets onnxruntime pick (one per physical core)


class SessionCache:
    """Caches sessions by (file, provider preference); safe to share between threads."""

    def __init__(self, settings: RuntimeSettings = RuntimeSettings()):
        self.settings = settings
        self._sessions: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def get(self, path: Path):
        return self._cached(str(Path(path).resolve()), lambda: str(path))

    def get_verified(self, model: bytes, sha256: str):
        """A session made from these bytes, which the caller has hashed: the model that runs is the one
        whose hash is recorded (a file read twice could change in between). Cached by that hash."""
        return self._cached(f"sha256:{sha256}", lambda: model)

    def _cached(self, name: str, source):
        key = (name, self.settings.provider)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._create(source())
                self._sessions[key] = session
            return session

    def _create(self, model: str | bytes):
        ort = _ort()
        options = ort.SessionOptions()
        options.log_severity_level = _QUIET
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Measured on TAEF2 at 1024x1024 (benchmarks/attribution.py): the CPU memory arena and
        # memory patterns tripled peak memory (3.9 GB vs 1.2 GB) for little speed, and spinning
        # worker threads slowed every pass by 30-40% whenever other processes shared the cores.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        threads = self.settings.intra_op_threads or int(os.environ.get("FORENSICS_APP_THREADS", 0))
        if threads:
            options.intra_op_num_threads = threads
        return ort.InferenceSession(model, options, providers=with_options(resolve_providers(self.settings.provider)))


def with_options(providers: list[str]) -> list:
    """Providers as onnxruntime takes them, with the CUDA provider's options."""
    return [(name, CUDA_OPTIONS) if name == CUDA else name for name in providers]


def session_provider(session) -> str:
    return session.get_providers()[0]


_default_cache: SessionCache | None = None


def default_session_cache() -> SessionCache:
    global _default_cache
    if _default_cache is None:
        _default_cache = SessionCache()
    return _default_cache
