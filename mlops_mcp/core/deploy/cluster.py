"""Reaching Ray: an existing cluster (``RAY_ADDRESS``) or a local head this package starts.

Lifetime. A stdio MCP server lives as long as its host keeps it (hosts restart servers often, and
kill them when a chat closes); a Ray cluster started *inside* it with ``ray.init()`` would die with
it, taking every deployment down. So the local head is its own process: ``ray start --head
--block`` in a new session (not in the server's process group, so signals sent to the server do not
reach it), bound to 127.0.0.1, usage stats off, no dashboard unless ``MLOPS_RAY_DASHBOARD=true``.
Its address and process group are kept in ``<home>/ray/head.json``; the next server (or the CLI)
finds it there and reconnects. It is stopped when the last deployment is undeployed, or by
``mlops-mcp undeploy --all``. With ``RAY_ADDRESS`` nothing is started or stopped: the cluster is the
operator's.
"""

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlops_mcp.core.config import Settings
from mlops_mcp.core.errors import Unavailable

log = logging.getLogger(__name__)

INSTALL_HINT = 'Ray Serve is not installed: install "mlops-mcp[serve]" (pip install "mlops-mcp[serve]")'
#: how often replicas and handles report load to Serve's autoscaler, on a local head (Ray's default
#: is 10 s, sized for big clusters; on one machine 1 s costs nothing and lets short delays mean what they say)
LOCAL_METRICS_PUSH_S = 1.0
START_TIMEOUT_S = 60.0
PORT_FLAGS = (
    "ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
    "runtime-env-agent-port", "metrics-export-port",
)
NAMESPACE = "mlops-mcp"

_lock = threading.RLock()


def require_ray() -> None:
    """Refuse clearly when the ``serve`` extra is missing."""
    try:
        found = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.serve") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise Unavailable(INSTALL_HINT)


def head_file(settings: Settings) -> Path:
    return settings.home / "ray" / "head.json"


def read_head(settings: Settings) -> dict[str, Any] | None:
    """The local head this home started, if its record exists and its process group is alive."""
    path = head_file(settings)
    try:
        info = json.loads(path.read_text())
        os.killpg(int(info["pgid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_local_head(settings: Settings) -> dict[str, Any]:
    """Start a detached local Ray head (see the module docstring) and record it."""
    folder = head_file(settings).parent
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    command = [
        str(ray_cli) if ray_cli.exists() else "ray",
        "start", "--head", "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--include-dashboard={'true' if settings.ray_dashboard else 'false'}",
        "--disable-usage-stats",
    ]
    # Ray's fixed default ports (client server 10001, dashboard 8265, agent 52365, ...) would make a
    # second head on this machine (another home, a test run) fail: every port is picked free.
    for flag in PORT_FLAGS:
        command.append(f"--{flag}={_free_port()}")
    if settings.ray_dashboard:
        command.append("--dashboard-host=127.0.0.1")
    if settings.ray_num_cpus is not None:
        command.append(f"--num-cpus={settings.ray_num_cpus}")
    env = {
        **os.environ,
        # Ray turns 127.0.0.1 into the machine's LAN address for a head (ready to take other nodes);
        # its single-machine mode keeps every Ray port on loopback, which is what a local head wants.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": str(LOCAL_METRICS_PUSH_S),
        "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": str(LOCAL_METRICS_PUSH_S),
    }
    env.pop("RAY_ADDRESS", None)
    logfile = folder / "head.log"
    with open(logfile, "wb") as out:
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        except OSError as exc:
            raise Unavailable(f"Ray did not start: {exc}") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            reason = _tail(logfile)
            if proc.poll() is None:
                _kill_group(proc.pid)
            raise Unavailable(f"Ray did not start (log: {logfile}): {reason}")
        time.sleep(0.2)
    info = {"address": f"127.0.0.1:{port}", "pgid": proc.pid, "started_at": time.time()}
    head_file(settings).write_text(json.dumps(info))
    log.info("started a local Ray head at %s (process group %d)", info["address"], proc.pid)
    return info


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    useful = [t for t in text if t.strip()]
    return " | ".join(useful[-lines:])[-1500:] or "no output"


def connect(settings: Settings) -> str:
    """Connect this process to Ray (once): ``RAY_ADDRESS`` if set, else this home's local head,
    started when missing. Returns the address. ``Unavailable`` with Ray's reason on failure."""
    require_ray()
    if not os.environ.get("RAY_ADDRESS"):
        _single_machine()
    import ray

    with _lock:
        if ray.is_initialized():
            return str(os.environ.get("RAY_ADDRESS") or (read_head(settings) or {}).get("address", "local"))
        address = os.environ.get("RAY_ADDRESS")
        if address:
            _reachable(address)
        else:
            info = read_head(settings) or start_local_head(settings)
            address = str(info["address"])
        local = {} if os.environ.get("RAY_ADDRESS") else {"_node_ip_address": "127.0.0.1"}
        try:
            ray.init(
                address=address, namespace=NAMESPACE, logging_level=logging.WARNING, log_to_driver=False,
                configure_logging=False, **local,
            )
        except Exception as exc:
            raise Unavailable(f"cannot connect to Ray at {address}: {type(exc).__name__}: {exc}") from None
        return address


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse at once a ``host:port`` RAY_ADDRESS nothing listens on: Ray itself would retry for
    minutes, and the tool call with it. (``auto`` and ``ray://`` addresses are left to Ray.)"""
    if "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except ValueError:
        raise Unavailable(f"RAY_ADDRESS '{address}' is not host:port (e.g. 10.0.0.5:6379) or ray://host:10001") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise Unavailable(
            f"cannot reach the Ray cluster at RAY_ADDRESS={address}: {reason}; start it (ray start --head) or "
            "unset RAY_ADDRESS to let this server start a local Ray"
        ) from None


def _single_machine() -> None:
    """Keep Ray on loopback in this process too. Ray rewrites 127.0.0.1 into the machine's LAN
    address when it connects (ready for other nodes) unless its single-machine mode is on, which is
    read from the environment when Ray is imported; set on the loaded module when Ray already is."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def disconnect() -> None:
    if importlib.util.find_spec("ray") is None:
        return
    import ray

    with _lock:
        if ray.is_initialized():
            ray.shutdown()


def stop_local_head(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop the head this home started (no-op with ``RAY_ADDRESS``, or when none runs): disconnect,
    then terminate its process group (the head, raylet, GCS and every worker), killing what is left
    after ``timeout`` seconds. True when one was stopped."""
    if os.environ.get("RAY_ADDRESS"):
        return False
    info = read_head(settings)
    if info is not None and sys.modules.get("ray") is not None:
        import ray

        if ray.is_initialized():
            try:  # replicas finish their requests and close their engines first
                from ray import serve

                serve.shutdown()
            except Exception:
                log.exception("Serve did not shut down cleanly; stopping the head anyway")
    disconnect()
    head_file(settings).unlink(missing_ok=True)
    if info is None:
        return False
    _kill_group(int(info["pgid"]), timeout)
    log.info("stopped the local Ray head (process group %s)", info["pgid"])
    return True


def _kill_group(pgid: int, timeout: float = 15.0) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        try:  # reap the head if it is our child
            os.waitpid(pgid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
