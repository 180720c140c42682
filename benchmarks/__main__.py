"""Run benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks startup drift``.

Each entry is a module ``benchmarks/<name>.py`` with ``main() -> None`` that prints a table and,
where there is one, the figure of the tool a user would otherwise pick.
"""

import importlib
import sys

ENTRIES = ("startup", "registry", "training", "explain", "drift", "feedback", "retraining", "monitoring", "features", "serving", "deploy")


def main(argv: list[str]) -> int:
    names = argv or list(ENTRIES)
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(ENTRIES)}", file=sys.stderr)
        return 2
    for name in names:
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


raise SystemExit(main(sys.argv[1:]))
