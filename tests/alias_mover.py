"""A separate process that moves one alias many times (run by test_alias_processes.py).

Usage: python -m tests.alias_mover HOME DATABASE_URL MODEL MOVES START_AT WORKER
Prints one JSON line: {"moves": n, "errors": [...]}."""

import json
import os
import sys
import time


def main() -> None:
    home, url, model, moves, start_at, worker = sys.argv[1:7]
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import logging

    logging.disable(logging.CRITICAL)
    from mlops_mcp.core.config import Settings
    from mlops_mcp.core.engine import MLOps

    ops = MLOps(Settings(home=home, database_url=url or None, _env_file=None))  # type: ignore[call-arg]
    reg = ops.registry
    reg.aliases(model)  # warm up MLflow and the store before the start line
    ops.store.migrate()
    while time.time() < float(start_at):
        time.sleep(0.005)
    errors: list[str] = []
    done = 0
    for i in range(int(moves)):
        version = 1 + (i + int(worker)) % 3
        try:
            reg.set_alias(model, "champion", version, f"worker{worker}", None)
            done += 1
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    print(json.dumps({"moves": done, "errors": errors}), flush=True)
    ops.close()


if __name__ == "__main__":
    main()
