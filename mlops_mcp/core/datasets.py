"""Reading data files, confined to the configured data roots.

Every path a client gives goes through :func:`resolve_path`: no ``..`` components, absolute paths
only inside a root, symlinks resolved before the check (so a link cannot lead out of a root).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_mcp.core.errors import Forbidden, InvalidInput, NotFound, listing

if TYPE_CHECKING:
    import pandas as pd

DATA_SUFFIXES = (".csv", ".parquet", ".pq")


def resolve_path(
    path: str,
    roots: Sequence[Path],
    *,
    argument: str = "dataset",
    suffixes: Sequence[str] = DATA_SUFFIXES,
    must_exist: bool = True,
) -> Path:
    """Return the real path of ``path`` if, and only if, it lies inside one of ``roots``."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput("give a file path relative to a data root, e.g. 'nba/games.parquet'", argument=argument)
    if "\x00" in path:
        raise InvalidInput("the path contains a NUL byte", argument=argument)
    raw = Path(path.strip()).expanduser()
    if ".." in raw.parts:
        raise Forbidden(f"'{path}' contains '..'; paths must stay inside the data roots", argument=argument)
    real_roots = [Path(r).resolve() for r in roots]
    candidates = [raw] if raw.is_absolute() else [root / raw for root in real_roots]
    for candidate in candidates:
        real = candidate.resolve()
        inside = any(real == root or real.is_relative_to(root) for root in real_roots)
        if not inside:
            if raw.is_absolute() or candidate.exists():
                raise Forbidden(
                    f"'{path}' is outside the data roots ({listing(real_roots)}); "
                    "copy the file into a root or add its folder to MLOPS_DATA_ROOTS",
                    argument=argument,
                )
            continue
        if must_exist and not real.exists():
            continue
        if suffixes and real.suffix.lower() not in suffixes and not (must_exist and real.is_dir() and "" in suffixes):
            raise InvalidInput(
                f"'{path}' has an unsupported file type; accepted: {', '.join(s for s in suffixes if s)}",
                argument=argument,
            )
        return real
    found = available_files(real_roots, suffixes)
    raise NotFound(
        f"no file '{path}' in the data roots ({listing(real_roots)}); files there: {listing(found)}",
        argument=argument,
    )


def available_files(roots: Sequence[Path], suffixes: Sequence[str] = DATA_SUFFIXES, limit: int = 30) -> list[str]:
    """Data files directly in a root or one or two folders down (a bounded look, for error messages)."""
    found: list[str] = []
    for root in roots:
        for depth in ("*", "*/*", "*/*/*"):
            for p in sorted(root.glob(depth)):
                if p.is_file() and p.suffix.lower() in suffixes:
                    found.append(str(p.relative_to(root)))
                if len(found) >= limit:
                    return found
    return found


def read_frame(path: Path, columns: Sequence[str] | None = None, argument: str = "dataset") -> "pd.DataFrame":
    """Read a CSV or Parquet file into a DataFrame; an empty file is an error, not an empty result."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path, columns=list(columns) if columns else None)
        elif suffix == ".csv":
            frame = pd.read_csv(path, usecols=list(columns) if columns else None)
        else:
            raise InvalidInput(f"unsupported file type '{suffix}'; accepted: .csv, .parquet", argument=argument)
    except InvalidInput:
        raise
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"'{path.name}' is empty", argument=argument) from exc
    except (ValueError, KeyError, OSError) as exc:
        raise InvalidInput(f"cannot read '{path.name}': {exc}", argument=argument) from exc
    if frame.empty:
        raise InvalidInput(f"'{path.name}' has no rows", argument=argument)
    return frame
