"""The ``mlops-mcp`` command line: ``serve`` (stdio or HTTP), ``demo``, ``db upgrade``, ``deploy``/``undeploy`` (Ray Serve).

Kept light on purpose: argparse and the settings only, so ``serve`` reaches the protocol fast.
"""

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from mlops_mcp import __version__

if TYPE_CHECKING:
    from mlops_mcp.server.stdio import ProtocolPipes

#: the toolsets, named here without importing the tool layer (it imports mcp); a test keeps this
#: equal to ``mlops_mcp.tools.TOOLSETS``
TOOLSET_NAMES = (
    "server", "registry", "serving", "drift", "explain", "feedback", "experiments", "retraining", "monitoring", "features",
    "deploy",
)


def _configure_logging(level: str) -> None:
    # stdout belongs to the protocol in stdio mode: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for noisy in ("alembic", "mlflow", "urllib3", "httpx", "shap", "numba", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range; a port is 1-65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-mcp",
        description="MCP server for the ML model lifecycle: registry, serving, drift, explanations, experiments.",
    )
    parser.add_argument("--version", action="version", version=f"mlops-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default; --http for streamable HTTP)")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP at /mcp instead of stdio")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1; others need MLOPS_AUTH_TOKEN)")
    serve.add_argument("--port", type=_port, help="HTTP port, 1-65535 (default 8765)")
    serve.add_argument("--home", help="home folder (default $MLOPS_HOME or ./.mlops)")
    serve.add_argument("--read-only", action="store_true", help="offer only read-only tools")
    serve.add_argument(
        "--toolsets",
        help=f"comma-separated toolsets to offer (default all; 'server' is always on): {', '.join(TOOLSET_NAMES)}",
    )

    demo = sub.add_parser("demo", help="run the end-to-end demo against a fresh home, printing each call")
    demo.add_argument(
        "--home", help="home folder to run in and keep afterwards (default ./mlops-demo; a later run starts it afresh)"
    )
    demo.add_argument("--quick", action="store_true", help="smaller data, fewer steps (used by the tests)")

    worker = sub.add_parser(
        "worker", help="run retraining jobs from a PostgreSQL store (procrastinate); start as many as you like"
    )
    worker.add_argument("--concurrency", type=int, default=2, help="jobs this process runs at once (default 2)")
    worker.add_argument("--name", help="worker name shown in procrastinate's tables and the logs")
    worker.add_argument("--home", help="home folder (default $MLOPS_HOME or ./.mlops)")

    exporter = sub.add_parser(
        "exporter", help="serve Prometheus metrics from the store at /metrics (for servers that run over stdio only)"
    )
    exporter.add_argument("--host", help="bind address (default 127.0.0.1; others need MLOPS_AUTH_TOKEN)")
    exporter.add_argument("--port", type=_port, default=9464, help="port, 1-65535 (default 9464)")
    exporter.add_argument("--home", help="home folder (default $MLOPS_HOME or ./.mlops)")

    deploy = sub.add_parser(
        "deploy", help="serve a model on Ray Serve with autoscaling (needs mlops-mcp[serve]), or export a KubeRay manifest"
    )
    deploy.add_argument("model", help="registered model name (its champion is served)")
    deploy.add_argument("--min", dest="min_replicas", type=int, default=1, help="min replicas (default 1)")
    deploy.add_argument(
        "--max", dest="max_replicas", type=int, default=None,
        help="max replicas (default 4; 1 on a SQLite store, where more is refused: > 1 needs PostgreSQL)",
    )
    deploy.add_argument("--target-ongoing", dest="target_ongoing_requests", type=float, default=2.0,
                        help="requests in flight per replica the autoscaler aims at (default 2)")
    deploy.add_argument("--upscale-delay", dest="upscale_delay_s", type=float, default=30.0, help="seconds (default 30)")
    deploy.add_argument("--downscale-delay", dest="downscale_delay_s", type=float, default=600.0, help="seconds (default 600)")
    deploy.add_argument("--max-ongoing", dest="max_ongoing_requests", type=int, default=5,
                        help="requests one replica takes at once (default 5)")
    deploy.add_argument("--cpus", dest="cpus_per_replica", type=float, default=1.0, help="CPUs per replica (default 1)")
    deploy.add_argument("--export", choices=["kuberay"], help="write a manifest instead of deploying")
    deploy.add_argument("--image", default="mlops-mcp:latest", help="container image for --export kuberay")
    deploy.add_argument("--output", help="file for --export (default stdout)")
    deploy.add_argument("--home", help="home folder (default $MLOPS_HOME or ./.mlops)")

    undeploy = sub.add_parser("undeploy", help="stop serving a model on Ray Serve (--all: every model, and the local Ray head)")
    undeploy.add_argument("model", nargs="?", help="registered model name")
    undeploy.add_argument("--all", action="store_true", help="undeploy every model and stop the local Ray head")
    undeploy.add_argument("--home", help="home folder (default $MLOPS_HOME or ./.mlops)")

    db = sub.add_parser("db", help="store maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply the store's migrations (done automatically on first use too)")
    db_sub.add_parser("current", help="print the store's schema revision")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    pipes = None
    if args.command == "serve" and not args.http:
        # First, before settings, logging or any library: stdout belongs to the protocol.
        from mlops_mcp.server.stdio import guard_stdio

        try:
            pipes = guard_stdio()
        except OSError as exc:
            print(f"mlops-mcp: stdio mode needs the host's stdin and stdout open ({exc})", file=sys.stderr)
            return 2
    if getattr(args, "home", None):
        os.environ["MLOPS_HOME"] = args.home
    from mlops_mcp.core.config import SettingsError

    try:
        if args.command == "serve":
            return _serve(args, pipes)
        if args.command == "demo":
            from mlops_mcp.server.demo import run_demo

            return run_demo(home=args.home, quick=args.quick)
        if args.command == "db":
            return _db(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "exporter":
            return _exporter(args)
        if args.command in ("deploy", "undeploy"):
            return _deploy(args)
    except SettingsError as exc:
        print(f"mlops-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(args: argparse.Namespace, pipes: "ProtocolPipes | None") -> int:
    from mlops_mcp.core.config import load_settings
    from mlops_mcp.core.errors import MLOpsError

    overrides: dict[str, object] = {}
    if args.read_only:
        overrides["read_only"] = True
    if args.host is not None:
        overrides["http_host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    if args.toolsets:
        overrides["toolsets"] = args.toolsets
    settings = load_settings(**overrides)
    _configure_logging(settings.log_level)
    if args.http:
        from mlops_mcp.server.http import check_bind

        try:
            check_bind(settings)  # before building anything: a bad bind fails fast and clearly
        except MLOpsError as exc:
            print(f"mlops-mcp: {exc}", file=sys.stderr)
            return 2
    from mlops_mcp.server.app import build_server

    try:
        mcp = build_server(settings)
    except MLOpsError as exc:  # configuration fails closed: a bad toolset name stops the start-up
        print(f"mlops-mcp: {exc}", file=sys.stderr)
        return 2
    if args.http:
        from mlops_mcp.server.http import serve_http

        try:
            serve_http(mcp, settings)
        except MLOpsError as exc:
            print(f"mlops-mcp: {exc}", file=sys.stderr)
            return 2
        return 0
    from mlops_mcp.server.stdio import serve_stdio

    assert pipes is not None  # main() guards stdio before anything else runs
    serve_stdio(mcp, pipes)
    return 0


def _deploy(args: argparse.Namespace) -> int:
    """``deploy`` / ``undeploy``: the tools' engine calls, for people who script them."""
    from mlops_mcp.core.config import load_settings
    from mlops_mcp.core.deploy.config import DEFAULT_MAX_REPLICAS, ScalingSpec
    from mlops_mcp.core.engine import MLOps
    from mlops_mcp.core.errors import MLOpsError

    settings = load_settings()
    _configure_logging(settings.log_level)
    ops = MLOps(settings)
    try:
        if args.command == "undeploy":
            if args.all:
                names = ops.deployments.undeploy_all()
                print(f"undeployed: {', '.join(names) or '(none)'}; the local Ray head is stopped")
                return 0
            if not args.model:
                print("mlops-mcp undeploy: give a MODEL, or --all", file=sys.stderr)
                return 2
            print(ops.undeploy_model(args.model).message)
            return 0
        if args.max_replicas is None:  # the manifest targets a cluster (PostgreSQL); a local deploy follows the store
            args.max_replicas = DEFAULT_MAX_REPLICAS if args.export else ops.default_max_replicas()
        spec = ScalingSpec.checked(
            min_replicas=args.min_replicas, max_replicas=args.max_replicas,
            target_ongoing_requests=args.target_ongoing_requests, upscale_delay_s=args.upscale_delay_s,
            downscale_delay_s=args.downscale_delay_s, max_ongoing_requests=args.max_ongoing_requests,
            cpus_per_replica=args.cpus_per_replica,
        )
        if args.export == "kuberay":
            text = ops.export_kuberay(args.model, spec, image=args.image)
            if args.output:
                from pathlib import Path

                Path(args.output).write_text(text)
                print(f"wrote a RayService manifest for '{args.model}' to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(text)
            return 0
        print(ops.deploy_model(args.model, spec).message)
        return 0
    except MLOpsError as exc:
        print(f"mlops-mcp {args.command}: {exc}", file=sys.stderr)
        return 2
    finally:
        ops.close()


def _worker(args: argparse.Namespace) -> int:
    from mlops_mcp.core.config import load_settings
    from mlops_mcp.core.engine import MLOps

    settings = load_settings()
    _configure_logging(settings.log_level)
    ops = MLOps(settings)
    if ops.store.is_sqlite:
        print(
            "mlops-mcp worker runs retraining jobs from a PostgreSQL store (MLOPS_DATABASE_URL=postgresql://...); "
            "on SQLite they run inside `mlops-mcp serve`",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.concurrency <= 64:
        print("mlops-mcp worker: --concurrency must be 1..64", file=sys.stderr)
        return 2
    from mlops_mcp.core.retraining.queue import run_worker

    try:
        run_worker(ops, concurrency=args.concurrency, name=args.name)
    except KeyboardInterrupt:
        pass
    finally:
        ops.close()
    return 0


def _exporter(args: argparse.Namespace) -> int:
    from mlops_mcp.core.config import load_settings
    from mlops_mcp.core.errors import MLOpsError

    overrides: dict[str, object] = {"http_port": args.port}
    if args.host:
        overrides["http_host"] = args.host
    settings = load_settings(**overrides)
    _configure_logging(settings.log_level)
    from mlops_mcp.server.metrics import serve_exporter

    try:
        serve_exporter(settings)
    except MLOpsError as exc:  # a non-loopback bind without a token
        print(f"mlops-mcp: {exc}", file=sys.stderr)
        return 2
    return 0


def _db(args: argparse.Namespace) -> int:
    from mlops_mcp.core.config import load_settings

    settings = load_settings()
    _configure_logging(settings.log_level)
    from mlops_mcp.core.config import mask_url
    from mlops_mcp.core.store import Store

    store = Store(settings.database_url or "")
    if args.db_command == "upgrade":
        store.migrate()
    print(f"{mask_url(store.url)}: revision {store.revision()}")
    return 0
