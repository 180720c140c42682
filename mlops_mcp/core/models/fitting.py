"""Fitting an estimator in a child process, so that a training can be stopped at any moment.

Why a child process: no in-process mechanism stops every estimator. scikit-learn's fits run in
compiled code with no callback (HistGradientBoosting, lbfgs in LogisticRegression, the trees of a
random forest); only GradientBoosting has a ``monitor`` hook, and a Python thread cannot be
killed. A child process can: when the request is cancelled or the time limit
(``MLOPS_MAX_TRAIN_SECONDS``) passes, it is killed, its threads and memory go with it, and the
caller gets a clear error; nothing was logged or registered, because that happens afterwards.

Cost: the children are forked from a ``forkserver`` that has scikit-learn and pandas imported
already (started once per server process, in the background when the first training begins: it
imports the libraries in ~1-2 s, while the training reads its data), so each fit pays a
fork and the pickling of the training rows there and of the fitted model back (tens of
milliseconds for the demo data; ``benchmarks/registry.py`` measures it next to an in-process fit).
Where ``forkserver`` does not exist (Windows) ``spawn`` is used, which imports the libraries per fit.

The child writes nothing to the parent's stdout (in stdio mode that is the protocol channel):
its stdout is pointed at stderr before anything runs. It also watches the parent: if the server
dies, or the time limit passes, the child exits on its own.
"""

import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from mlops_mcp.core.errors import Cancelled, InvalidInput, MLOpsError

log = logging.getLogger(__name__)

#: imported once in the fork server, so each child starts with them loaded
PRELOAD = [
    "mlops_mcp.core.models.fitting",
    "numpy",
    "pandas",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.preprocessing",
]
POLL_SECONDS = 0.05
MAX_WARNINGS = 5

_context_lock = threading.Lock()
_context: Any = None
_running: set[int] = set()  # pids of the fits in progress (see running_fits)


@dataclass
class FitOutcome:
    fitted: Any
    fit_seconds: float  # inside the child
    wall_seconds: float  # what the caller waited: fork, transfer both ways, fit
    warnings: list[str] = field(default_factory=list)


def context() -> Any:
    """The multiprocessing context for fits (``forkserver`` with the libraries preloaded)."""
    global _context
    with _context_lock:
        if _context is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            ctx = multiprocessing.get_context(method)
            if method == "forkserver":
                ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


def warm_up() -> None:
    """Start the fork server in the background (it imports scikit-learn and pandas, ~1-2 s), so a
    training's first fit does not wait for it: called when a training begins reading its data."""
    ctx = context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="mlops-forkserver-start", daemon=True).start()


def running_fits() -> list[int]:
    """Process ids of the fits running now (for health reports and tests)."""
    with _context_lock:
        return sorted(_running)


def fit_in_child(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    timeout: float,
    cancel: threading.Event | None = None,
    name: str = "the model",
) -> FitOutcome:
    """Fit ``estimator`` on (X, y) in a child process and return the fitted copy.

    Raises :class:`Cancelled` as soon as ``cancel`` is set, :class:`InvalidInput` (argument
    ``params``) for hyper-parameters the estimator refuses and when ``timeout`` seconds pass;
    the child is killed in every case but success."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("training was cancelled before it started; nothing was registered")
    ctx = context()
    started = time.perf_counter()
    receive, send = ctx.Pipe(duplex=False)
    alive_r, alive_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, alive_r, timeout, estimator, X, y), name="mlops-fit")
    try:
        proc.start()
    except Exception:
        for conn in (receive, send, alive_r, alive_w):
            conn.close()
        raise
    send.close()
    alive_r.close()
    pid = proc.pid
    with _context_lock:
        _running.add(pid)
    deadline = time.monotonic() + timeout
    try:
        while not receive.poll(POLL_SECONDS):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"training of {name} was cancelled; the fit was stopped and nothing was registered")
            if time.monotonic() > deadline:
                raise InvalidInput(
                    f"training of {name} took longer than {timeout:g} s, the server's limit (MLOPS_MAX_TRAIN_SECONDS); "
                    "it was stopped and nothing was registered. Use fewer trees or iterations, fewer rows, or ask "
                    "the operator to raise the limit",
                    argument="params",
                )
            if not proc.is_alive() and not receive.poll(0):
                raise MLOpsError(
                    f"the training process of {name} ended without a result (exit code {proc.exitcode}"
                    f"{'; out of memory?' if proc.exitcode == -9 else ''}); nothing was registered"
                )
        try:
            status, *rest = pickle.loads(receive.recv_bytes())
        except EOFError:
            raise MLOpsError(f"the training process of {name} ended without a result (exit code {proc.exitcode})") from None
    finally:
        receive.close()
        alive_w.close()  # the child's watchdog exits the child once this end is closed
        if proc.is_alive():
            proc.kill()
        proc.join(10)
        if proc.is_alive():  # pragma: no cover - a child that survives SIGKILL
            log.warning("training process %s did not exit", pid)
        else:
            proc.close()
        with _context_lock:
            _running.discard(pid)
    if status == "error":
        kind, message, is_value_error = rest
        if is_value_error:  # sklearn's InvalidParameterError is a ValueError: bad hyper-parameters
            raise InvalidInput(f"{name} refused to train: {message}", argument="params")
        raise MLOpsError(f"training of {name} failed: {kind}: {message}")
    fitted, fit_seconds, caught = rest
    return FitOutcome(fitted, fit_seconds, time.perf_counter() - started, caught)


def _child(send: Any, alive: Any, timeout: float, estimator: Any, X: Any, y: Any) -> None:
    """Runs in the child: fit, send back the fitted estimator (or the error), exit."""
    os.dup2(2, 1)  # anything printed (verbose=1, native code) goes to stderr, never the protocol
    sys.stdout = sys.stderr
    threading.Thread(target=_watch, args=(alive, timeout), daemon=True).start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            started = time.perf_counter()
            estimator.fit(X, y)
            seconds = time.perf_counter() - started
        messages: list[str] = []
        for w in caught:
            text = f"{w.category.__name__}: {str(w.message).splitlines()[0][:300]}"
            if text not in messages and len(messages) < MAX_WARNINGS:
                messages.append(text)
        payload = pickle.dumps(("ok", estimator, seconds, messages), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # reported to the parent, which raises a typed error
        payload = pickle.dumps(("error", type(exc).__name__, str(exc)[:2000], isinstance(exc, ValueError)))
    send.send_bytes(payload)
    send.close()


def _watch(alive: Any, timeout: float) -> None:
    """Exit the child when the parent closes its end (done, cancelled, or the server died) or the
    time limit passes with a margin: an orphaned fit never runs on."""
    try:
        alive.poll(timeout + 30)
    except (EOFError, OSError):
        pass
    os._exit(0)
