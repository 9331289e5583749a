"""Sweeps on a Ray cluster: ``precond run SPEC --backend ray [--address ADDR]``.

The sweep itself (planning, claims, the store, the progress bar, Ctrl-C) stays in the driver,
the ``precond run`` process; only its tasks (:func:`.sweep.plan`: one run, or a batch of runs)
go to the cluster, each as one Ray task asking for one CPU (:class:`RayExecutor`, an
:class:`.sweep.Executor` like the local process pool). A task returns its records to the
driver, which commits them to its results store as they arrive, so the store needs no shared
file system and resume, claims and spec identity work as with the process pool. Each record's
provenance (:func:`.sweep.environment`: host, versions, device, plus ``ray``'s version) is
taken on the Ray worker that ran it.

A task is shipped as a pickle of its :class:`.sweep.Task` (run configs, and the problem by
name); the worker appends the driver's ``sys.path`` entries that exist on its node before
unpickling it, so problems named ``module:Class`` resolve where the driver's paths are shared.
precond itself (with torch) must be importable on every node: :func:`connect` checks it with
one probe task.

Ray's own semantics apply (https://docs.ray.io/en/latest/ray-core/tasks.html): a task whose
worker dies is retried by Ray (``max_retries``, 3 by default); one that still fails is stored
in ``failures`` (retried by the next sweep), as a run that raises. Stopping (Ctrl-C, SIGTERM)
cancels every task in flight with ``ray.cancel(ref, force=True)``, which kills the workers
running them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import sys
import threading
from concurrent.futures import Future
from typing import Any

from .sweep import Executor, Task, run_task

RAY_VERSION = "2.60.0"  # the version tested here (pyproject's `ray` extra)
CONNECT_TIMEOUT = 5.0  # seconds to open a TCP connection to --address (ray.init itself retries for many minutes)
PROBE_TIMEOUT = 300.0  # seconds for the probe task (a cold worker imports torch)


class RayBackendError(RuntimeError):
    """Ray is missing, the cluster cannot be reached, or its workers cannot run precond (one line)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayBackendError(f"--backend ray needs the ray package, which is not installed ({exc}): "
                              f"pip install 'precond[ray]' (ray=={RAY_VERSION})") from None  # fmt: skip
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1].strip() if lines else ''}"


def _host_port(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port``, ``ray://host:port`` or ``[v6]:port``."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise RayBackendError(f"--address {address}: not a Ray cluster address: give host:port (e.g. 10.0.0.5:6379, "
                              "what `ray start --head` printed), ray://host:10001 or auto")  # fmt: skip
    return host.strip("[]"), int(port)


def _bootstrap(ray: Any, address: str) -> str:
    """The ``host:port`` ``ray.init(address)`` would connect to (``auto``: the cluster running on this
    machine; a local host name: this node's IP), by Ray's own rule where it has one."""
    try:
        from ray._private.services import canonicalize_bootstrap_address  # not public; this is how ray.init resolves
    except ImportError:  # pragma: no cover - another Ray version
        return address
    try:
        return canonicalize_bootstrap_address(address) or address
    except ConnectionError:
        raise RayBackendError(f"--address {address}: no running Ray cluster found on this machine: start one with "
                              "`ray start --head`, or give the address of one") from None  # fmt: skip
    except Exception:  # noqa: BLE001 - let _host_port name what is wrong with it
        return address


def check_reachable(ray: Any, address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Open (and close) a TCP connection to the cluster at ``address``, so that an unreachable one fails
    in seconds with :class:`RayBackendError` (``ray.init`` retries a dead address for many minutes)."""
    target = address if "://" in address else _bootstrap(ray, address)
    host, port = _host_port(target)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        shown = address if target == address else f"{address} ({host}:{port})"
        raise RayBackendError(f"--address {shown}: no Ray cluster answers there ({_first_line(exc)}): start one with "
                              "`ray start --head` on that machine, or give the address it printed") from None  # fmt: skip


def _on_worker(payload: bytes, paths: list[str]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any] | None, str | None]]]:
    """A Ray task: make the driver's paths importable, then :func:`.sweep.run_task` the pickled task."""
    import ray
    import torch

    for p in paths:
        if p not in sys.path and os.path.isdir(p):
            sys.path.append(p)
    torch.set_num_threads(1)
    env, outs = run_task(pickle.loads(payload))
    env["ray"] = ray.__version__
    return env, outs


def _probe() -> dict[str, Any]:
    """A Ray task: this worker's versions (it fails where precond or torch cannot be imported)."""
    import torch

    import precond

    return {"precond": getattr(precond, "__version__", "?"), "torch": torch.__version__, "host": socket.gethostname()}


class RayExecutor(Executor):
    """Runs a sweep's tasks as Ray tasks (one CPU each) on the cluster this process is connected to
    (``ray.init`` done, e.g. by :func:`connect`), with at most ``slots`` in flight (default: the
    cluster's CPUs). A task that fails in Ray (its worker died, ...) resolves to one failure per run.
    As a context manager it disconnects (``ray.shutdown``) on exit when it made the connection."""

    def __init__(self, slots: int | None = None, *, owns_connection: bool = False) -> None:
        ray = self._ray = _import_ray()
        if not ray.is_initialized():
            raise RayBackendError("Ray is not initialised in this process: call precond.experiments.ray_backend.connect() (or ray.init()) first")
        self.slots = slots or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.owns_connection = owns_connection
        self._remote = ray.remote(num_cpus=1)(_on_worker)
        self._paths = [p for p in sys.path if p and os.path.isdir(p)]
        self._in_flight: dict[Any, Task] = {}
        self._lock = threading.Lock()

    def submit(self, task: Task) -> Future:
        ref = self._remote.remote(pickle.dumps(task), self._paths)
        out: Future = Future()
        with self._lock:
            self._in_flight[ref] = task

        def finished(f: Future) -> None:
            with self._lock:
                self._in_flight.pop(ref, None)
            try:
                out.set_result(f.result())
            except BaseException as exc:  # noqa: BLE001 - the task failed in Ray, not in a run
                err = f"the Ray task failed: {_first_line(exc)}\n{exc}"
                out.set_result(({}, [(c.key, None, err) for c in task.configs]))

        ref.future().add_done_callback(finished)
        return out

    def stop(self) -> None:
        with self._lock:
            refs = list(self._in_flight)
            self._in_flight.clear()
        for ref in refs:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)

    def close(self) -> None:
        with self._lock:
            self._in_flight.clear()

    def shutdown(self) -> None:
        """Disconnect from the cluster (and stop a local instance) if this executor connected."""
        if self.owns_connection and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def connect(address: str | None = None, *, workers: int | None = None) -> RayExecutor:
    """A :class:`RayExecutor` on the cluster at ``address`` (``host:port``, ``ray://host:port``, ``auto``;
    default ``$RAY_ADDRESS``, else a new local Ray instance with ``workers`` CPUs, default all), at most
    ``workers`` tasks in flight (default: the cluster's CPUs). Reuses this process's connection when
    Ray is initialised already. Raises :class:`RayBackendError` (one line) when ray is not installed,
    the address does not answer, or the cluster's workers cannot import precond."""
    ray = _import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address not in (None, "local"):
        check_reachable(ray, address)
    owns = not ray.is_initialized()
    if owns:
        local = address in (None, "local")
        kwargs: dict[str, Any] = {"num_cpus": workers, "include_dashboard": False} if local else {}
        try:
            ray.init(address="local" if local else address, logging_level=logging.WARNING, **kwargs)
        except Exception as exc:  # noqa: BLE001 - whatever Ray says, in one line
            where = "cannot start a local Ray instance" if local else f"--address {address}: cannot connect to the Ray cluster"
            hint = "" if local or os.environ.get("RAY_AUTH_MODE") else (
                "; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token here, "
                "and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN")  # ray.init sends it for an explicit address only then
            raise RayBackendError(f"{where}: {_first_line(exc)}{hint}") from None
    try:
        ray.get(ray.remote(num_cpus=0)(_probe).remote(), timeout=PROBE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        if owns:
            ray.shutdown()
        raise RayBackendError(f"the Ray cluster's workers cannot run precond ({_first_line(exc)}): install precond "
                              "(the version of this driver) and torch on every node, in the Python the cluster runs") from None  # fmt: skip
    try:
        return RayExecutor(workers, owns_connection=owns)
    except Exception:
        if owns:
            ray.shutdown()
        raise
