"""Reading data files, confined to the configured data roots.

Every path a client gives goes through :func:`resolve_path`: no ``..`` components, absolute paths
only inside a root, symlinks resolved before the check (so a link cannot lead out of a root), and
only regular files (a FIFO, socket or device would block the reading thread forever, a folder
fails obscurely). Files are then opened with :func:`open_regular`, which checks the opened
descriptor again, so a file swapped for a FIFO after the check cannot block a read either.
"""

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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
                folder = real if real.is_dir() else real.parent
                raise Forbidden(
                    f"'{path}' is outside the data roots, the only folders this server reads. {roots_hint(real_roots)} "
                    f"To read it, copy the file into a root, or add its folder to the roots and restart the server: "
                    f"MLOPS_DATA_ROOTS={os.pathsep.join(str(r) for r in [*real_roots, folder])}",
                    argument=argument,
                )
            continue
        if must_exist and not real.exists():
            continue
        allow_dir = must_exist and "" in suffixes
        if suffixes and real.suffix.lower() not in suffixes and not (allow_dir and real.is_dir()):
            raise InvalidInput(
                f"'{path}' has an unsupported file type; accepted: {', '.join(s for s in suffixes if s)}",
                argument=argument,
            )
        if must_exist:
            _check_kind(real, path, argument, allow_dir, suffixes)
        return real
    found = available_files(real_roots, suffixes)
    raise NotFound(
        f"no file '{path}' in the data roots; files there: {listing(found)}. {roots_hint(real_roots)} "
        "Paths are relative to a root (or absolute inside one); to read files elsewhere, add their folder "
        "to MLOPS_DATA_ROOTS and restart the server",
        argument=argument,
    )


def roots_hint(roots: Sequence[Path]) -> str:
    """Where the server reads now and which setting changes it (for every path error)."""
    return (
        f"The data roots are now {listing(roots)} (setting MLOPS_DATA_ROOTS, folders separated by "
        f"'{os.pathsep}' or ',')."
    )


def _check_kind(real: Path, given: str, argument: str, allow_dir: bool, suffixes: Sequence[str]) -> None:
    """Only regular files (and, where accepted, folders): never a FIFO, socket or device."""
    mode = os.stat(real).st_mode
    if stat.S_ISREG(mode) or (allow_dir and stat.S_ISDIR(mode)):
        return
    if stat.S_ISDIR(mode):
        inside = available_files([real], suffixes, limit=5)
        raise InvalidInput(
            f"'{given}' is a folder, not a file; give one file ({', '.join(s for s in suffixes if s)})"
            + (f", e.g. '{Path(given) / inside[0]}'" if inside else ""),
            argument=argument,
        )
    raise InvalidInput(f"'{given}' is {_kind_name(mode)}, not a regular file; only regular files are read", argument=argument)


def _kind_name(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def open_regular(path: Path, argument: str = "dataset") -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file, without ever blocking: the open is
    non-blocking (a FIFO without a writer would otherwise wait forever) and the type is checked on
    the opened descriptor, so a file replaced after :func:`resolve_path` checked it is still caught."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotFound(f"'{path.name}' no longer exists", argument=argument) from None
    except OSError as exc:
        raise InvalidInput(f"cannot open '{path.name}': {exc.strerror or exc}", argument=argument) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else _kind_name(mode)
            raise InvalidInput(f"'{path.name}' is {what}, not a regular file; only regular files are read", argument=argument)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def available_files(roots: Sequence[Path], suffixes: Sequence[str] = DATA_SUFFIXES, limit: int = 30) -> list[str]:
    """Readable data files directly in a root or one or two folders down (a bounded look, for
    error messages): regular files only, and never a link that leads out of the roots."""
    found: list[str] = []
    real_roots = [Path(r).resolve() for r in roots]
    for root in real_roots:
        for depth in ("*", "*/*", "*/*/*"):
            for p in sorted(root.glob(depth)):
                if p.suffix.lower() in suffixes and _readable_inside(p, real_roots):
                    found.append(str(p.relative_to(root)))
                if len(found) >= limit:
                    return found
    return found


def _readable_inside(p: Path, real_roots: Sequence[Path]) -> bool:
    try:
        real = p.resolve()
        return real.is_file() and any(real == r or real.is_relative_to(r) for r in real_roots)
    except OSError:
        return False


def read_frame(path: Path, columns: Sequence[str] | None = None, argument: str = "dataset") -> "pd.DataFrame":
    """Read a CSV or Parquet file into a DataFrame; an empty file is an error, not an empty result."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise InvalidInput(f"unsupported file type '{suffix}'; accepted: .csv, .parquet", argument=argument)
    try:
        with open_regular(path, argument) as fh:
            if suffix in (".parquet", ".pq"):
                frame = pd.read_parquet(fh, columns=list(columns) if columns else None)
            else:
                frame = pd.read_csv(fh, usecols=list(columns) if columns else None)
    except (InvalidInput, NotFound):
        raise
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"'{path.name}' is empty", argument=argument) from exc
    except (ValueError, KeyError, OSError) as exc:
        raise InvalidInput(f"cannot read '{path.name}': {exc}", argument=argument) from exc
    if frame.empty:
        raise InvalidInput(f"'{path.name}' has no rows", argument=argument)
    return frame


#: what a ``dataset`` argument may be: a CSV/Parquet path inside the data roots, or inline rows
DataSource = str | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Dataset:
    """A dataset read for a tool: its frame and the name messages and lineage use for it."""

    frame: "pd.DataFrame"
    name: str
    path: Path | None = None


def load_dataset(
    source: DataSource,
    roots: Sequence[Path],
    *,
    argument: str = "dataset",
    columns: Sequence[str] | None = None,
) -> Dataset:
    """Read ``source``: a path inside the data roots (checked as :func:`resolve_path` does), or up to
    ``MAX_INLINE_ROWS`` inline rows (objects of column: value), for data too small for a file."""
    if isinstance(source, str):
        path = resolve_path(source, roots, argument=argument)
        return Dataset(read_frame(path, columns, argument=argument), source, path)
    import pandas as pd

    from mlops_mcp.core.limits import MAX_INLINE_ROWS

    if not isinstance(source, Sequence) or not source:
        raise InvalidInput(
            "give a CSV/Parquet path inside a data root, or inline rows: a non-empty list of objects", argument=argument
        )
    if len(source) > MAX_INLINE_ROWS:
        raise InvalidInput(
            f"{len(source):,} inline rows is more than {MAX_INLINE_ROWS:,}; put larger data in a file inside a data root",
            argument=argument,
        )
    bad = next((i for i, row in enumerate(source) if not isinstance(row, Mapping)), None)
    if bad is not None:
        raise InvalidInput(f"inline row {bad} is not an object of column: value", argument=argument)
    frame = pd.DataFrame.from_records([dict(r) for r in source])
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInput(f"inline rows lack the columns {listing(missing)}", argument=argument)
        frame = frame[list(columns)]
    return Dataset(frame, f"{len(frame):,} inline rows")


def keep_inline(data: Dataset, roots: Sequence[Path], owner: str) -> Dataset:
    """Inline rows written to ``<first root>/inline/<owner>/<content hash>.parquet`` (the same rows
    give the same file), so that what was trained on can be read again by path: a version's
    lineage tag names that file, and retraining starts from it."""
    import hashlib

    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(data.frame, index=False).values.tobytes())
    digest.update(",".join(map(str, data.frame.columns)).encode())
    stem = Path("inline") / owner / digest.hexdigest()[:16]
    for suffix in (".parquet", ".csv"):  # CSV when a column mixes types Parquet cannot hold
        target = Path(roots[0]) / stem.with_suffix(suffix)
        if target.exists():
            return Dataset(data.frame, str(stem.with_suffix(suffix)), target)
    target = Path(roots[0]) / stem.with_suffix(".parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        data.frame.to_parquet(tmp, index=False)
    except (ValueError, TypeError, ImportError, OSError):
        target = target.with_suffix(".csv")
        data.frame.to_csv(tmp, index=False)
    os.replace(tmp, target)
    return Dataset(data.frame, str(target.relative_to(Path(roots[0]))), target)
