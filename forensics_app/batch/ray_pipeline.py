"""`forensics-app batch` on Ray Data: the analysis of `analyze`, streamed through a pool of actors.

    file paths (the CLI's folder walk)                       driver, Ray Data blocks of a few files
    -> read bytes, SHA-256, skip what the folder answered    intake tasks (CPU)
    -> intake decode (core.evidence)                         the same tasks (Ray fuses the two maps)
    -> Engine.score + Engine.conclude                        actor pool: each actor loads every candidate's
       (methods, calibration, verdict: core.pipeline)        ONNX sessions once; one GPU per actor where
                                                             the cluster has GPUs
    -> findings.jsonl / failures.jsonl                       driver: appended and fsync'ed per block

Scoring and deciding stay in one actor call because Engine.conclude works on what Engine.score returns,
which holds the actor's loaded models; splitting them would mean a second copy of every calibration and
of the results in flight, for no saving on a CPU. Only the JSON line of each image leaves the actor, so
pixels live only between the intake task that decoded them and the actor that analysed them: memory stays
flat however many files there are.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray

from forensics_app.batch.folder import BatchFolder, analysis_identity, failure_line, finding_line
from forensics_app.core.errors import ForensicsError
from forensics_app.core.evidence import IntakeLimits
from forensics_app.core.findings import FailedImage, absolute_path
from forensics_app.core.pipeline import AnalysisSettings

NEW, KNOWN, FAILED, ANALYSED = "new", "known", "failed", "analysed"


# -- intake tasks --------------------------------------------------------------------------------------
def read_block(batch: dict, known: ray.ObjectRef, limits: IntakeLimits) -> dict:
    """Read each file's bytes and SHA-256; a file whose content the folder already answered goes no further."""
    from forensics_app.core.evidence import read_evidence_bytes, sha256_of_bytes

    answered = ray.get(known)  # sorted (N,) 32-byte digests, zero-copy from the object store
    n = len(batch["path"])
    sha256, data, state, error = [""] * n, [b""] * n, [NEW] * n, [""] * n
    for i, raw in enumerate(batch["path"]):
        try:
            content = read_evidence_bytes(Path(os.fsdecode(raw)), limits)
        except ForensicsError as exc:
            state[i], error[i] = FAILED, str(exc)
            continue
        sha256[i] = sha256_of_bytes(content)
        if _contains(answered, bytes.fromhex(sha256[i])):
            state[i] = KNOWN
        else:
            data[i] = content
    return {**batch, "sha256": np.array(sha256, dtype=object), "data": np.array(data, dtype=object),
            "state": np.array(state, dtype=object), "error": np.array(error, dtype=object)}


def decode_block(batch: dict, limits: IntakeLimits) -> dict:
    """The intake's decode of the bytes read (core.evidence, the same as `analyze`): Evidence objects."""
    from forensics_app.core.evidence import evidence_from_file_bytes

    evidence = np.empty(len(batch["path"]), dtype=object)
    state, error = batch["state"].copy(), batch["error"].copy()
    for i, raw in enumerate(batch["path"]):
        if state[i] != NEW:
            continue
        try:
            evidence[i] = evidence_from_file_bytes(Path(os.fsdecode(raw)), batch["data"][i], limits)
        except ForensicsError as exc:
            state[i], error[i] = FAILED, str(exc)
    return {k: v for k, v in batch.items() if k != "data"} | {"evidence": evidence, "state": state, "error": error}


def _contains(sorted_digests: np.ndarray, digest: bytes) -> bool:
    i = int(np.searchsorted(sorted_digests, digest))
    return i < len(sorted_digests) and sorted_digests[i] == digest


# -- the actor pool ------------------------------------------------------------------------------------
class Analyser:
    """One actor: an Engine holding every candidate's onnxruntime sessions for its whole life.

    Its sessions use as many threads as `analyze` would on the same machine (onnxruntime's default, or
    $FORENSICS_APP_THREADS): a convolution's sums are split by thread, so another thread count changes
    the last digits of a score, and the batch must give exactly the scores of `analyze`."""

    def __init__(self, home: str, settings: AnalysisSettings, identity: dict):
        from forensics_app.core.pipeline import Engine
        from forensics_app.core.zoo.store import Zoo

        self.engine = Engine(Zoo(Path(home)), settings)
        if analysis_identity(self.engine) != identity:
            raise ForensicsError(f"On {socket.gethostname()}, the models or calibrations in {home} differ from "
                                 "those of the machine that started the batch; install the same zoo on every node.")

    def __call__(self, batch: dict) -> dict:
        n = len(batch["path"])
        state, error = batch["state"].copy(), batch["error"].copy()
        line, verdict, model = (np.full(n, "", dtype=object) for _ in range(3))
        for i in range(n):
            path, given = Path(os.fsdecode(batch["path"][i])), os.fsdecode(batch["given"][i])
            if state[i] == NEW:
                try:
                    findings = self.engine.analyse_evidence(batch["evidence"][i])
                except ForensicsError as exc:
                    state[i], error[i] = FAILED, str(exc)
                else:
                    findings.path_as_given = given
                    state[i], line[i] = ANALYSED, finding_line(findings)
                    verdict[i], model[i] = findings.verdict.label, findings.verdict.model or ""
            if state[i] == FAILED:
                line[i] = failure_line(FailedImage(path, error[i], given), batch["sha256"][i] or None)
        return {"path": batch["path"], "sha256": batch["sha256"], "state": state, "error": error,
                "line": line, "verdict": verdict, "model": model,
                "provider": np.full(n, ",".join(sorted({m.autoencoder.provider for m in self.engine.models})),
                                    dtype=object)}


def bound_analyser(home: str, settings: AnalysisSettings, identity: dict) -> type:
    """Analyser with its arguments bound in: the class travels to the actors by value, so no constructor
    arguments wait in the object store (Ray warns that an actor restarted after they are gone would fail)."""

    class BoundAnalyser(Analyser):
        def __init__(self):
            super().__init__(home, settings, identity)

    return BoundAnalyser


# -- the run -----------------------------------------------------------------------------------------
@dataclass
class BatchProgress:
    total: int  # files given to Ray (the walk's, less the refused ones)
    done: int = 0
    analysed: int = 0
    known: int = 0  # already answered in the folder (same SHA-256)
    duplicates: int = 0  # the same bytes met again in this run
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    providers: set[str] = field(default_factory=set)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def images_per_second(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Cluster:
    """Where the batch runs: address None = a local Ray on this machine, with all its CPUs."""

    address: str | None = None
    actors: int | None = None  # None: one per GPU where the cluster has GPUs, else one per CPU
    files_per_block: int = 8


def connect(cluster: Cluster) -> bool:
    """Start or join Ray; True when this call started it (and so must shut it down). A Ray already
    initialised in this process (tests, notebooks) is used as it is."""
    if ray.is_initialized():
        return False
    import logging

    ray.init(address=cluster.address or "local", include_dashboard=False, configure_logging=True, logging_level=logging.WARNING, log_to_driver=False)
    return True


INTAKE_CPUS = 0.25  # Ray CPUs of one intake task: reading and decoding is ~1% of an image's time
INTAKE_RESERVE = 2 * INTAKE_CPUS  # kept free of actors, so intake tasks always run and the pool is fed


def pool_shape(cluster: Cluster, provider: str) -> tuple[int, dict]:
    """(actors, the Ray resources of each) for the cluster as it is now."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if provider == "cuda" and not gpus:
        raise ForensicsError("--provider cuda: the Ray cluster has no GPUs; use --provider auto or cpu.")
    if gpus and provider != "cpu":
        actors = cluster.actors or gpus
        return actors, {"num_gpus": 1, "num_cpus": min(1.0, (cpus - INTAKE_RESERVE) / actors)}
    actors = cluster.actors or cpus
    return actors, {"num_cpus": min(1.0, (cpus - INTAKE_RESERVE) / actors)}


def run_batch(files: list[Path], folder: BatchFolder, home: Path, settings: AnalysisSettings, identity: dict,
              cluster: Cluster = Cluster(), on_progress: Callable[[BatchProgress], None] = lambda p: None
              ) -> BatchProgress:
    """Analyse `files` (as the walk gave them) into `folder`; each block's lines are written as soon as
    it comes back. Images the folder already answered are read and hashed but not analysed."""
    from ray.data import DataContext

    progress = BatchProgress(total=len(files))
    if not files:
        return progress
    context = DataContext.get_current()
    context.enable_progress_bars = False  # the command prints its own progress with throughput
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    actors, resources = pool_shape(cluster, settings.runtime.provider)
    known = ray.put(folder.known_digests())
    limits = settings.intake
    items = [{"path": os.fsencode(absolute_path(p)), "given": os.fsencode(p)} for p in files]
    blocks = max(1, math.ceil(len(items) / cluster.files_per_block))
    ds = (ray.data.from_items(items, override_num_blocks=blocks)
          .map_batches(read_block, batch_size=None, fn_kwargs={"known": known, "limits": limits}, num_cpus=INTAKE_CPUS)
          .map_batches(decode_block, batch_size=None, fn_kwargs={"limits": limits}, num_cpus=INTAKE_CPUS)
          .map_batches(bound_analyser(str(home), settings, identity), batch_size=None,
                       compute=ray.data.ActorPoolStrategy(size=actors), **resources))
    del items
    _quiet_ray_data_console()
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
            _write_block(batch, folder, progress)
            on_progress(progress)
    except Exception as exc:
        cause = _forensics_cause(exc)  # an actor refusing to start (another zoo on a node) is the user's to fix
        if cause is None:
            raise
        raise ForensicsError(str(cause)) from None
    return progress


def _write_block(batch: dict, folder: BatchFolder, progress: BatchProgress) -> None:
    findings, failures = [], []
    for i, state in enumerate(batch["state"]):
        if state == ANALYSED:
            findings.append((batch["sha256"][i], batch["line"][i], (batch["verdict"][i], batch["model"][i] or None)))
            progress.providers.update(p for p in batch["provider"][i].split(",") if p)
        elif state == FAILED:
            failures.append((batch["sha256"][i] or None, os.fsdecode(batch["path"][i]), batch["error"][i],
                             batch["line"][i]))
        else:
            progress.known += 1
    written, _, duplicates = folder.append(findings, failures)
    progress.analysed += written
    progress.failed += len(failures)
    progress.duplicates += duplicates
    progress.done += len(batch["state"])


_RAISED_IN_ACTOR = re.compile(r"^forensics_app\.core\.errors\.\w+: (.+)$", re.MULTILINE)


def _forensics_cause(exc: BaseException) -> ForensicsError | None:
    """The ForensicsError inside what Ray raises for a failed task or actor, if that is what it is. An
    actor that failed in its constructor comes back as ActorDiedError, which keeps only the traceback's
    text: the message is read from its last line."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ForensicsError):
            return exc
        found = _RAISED_IN_ACTOR.findall(getattr(exc, "error_msg", "") or "")
        if found:
            return ForensicsError(found[-1])
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


def _quiet_ray_data_console() -> None:
    """Ray Data logs each execution's start and end on the console at INFO; this command prints its own
    progress and summary, so its console keeps only errors (Ray's log files keep everything)."""
    import logging

    from ray._private.log import PlainRayHandler

    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, PlainRayHandler):
            handler.setLevel(logging.ERROR)
