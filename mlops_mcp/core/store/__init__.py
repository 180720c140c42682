"""The relational store (SQLite by default, PostgreSQL to scale out), schema managed by Alembic.

Imported lazily: SQLAlchemy and Alembic cost ~0.5 s to import, which must not delay the server's
``initialize``. Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so that concurrent
writers queue on the busy timeout instead of failing with 'database is locked' on lock upgrade.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "mlops_write"
#: alembic's ``op`` and ``context`` are process-wide proxies: two upgrades at once in one process
#: (two engines, e.g. a background thread and a request) must take turns
_ALEMBIC_LOCK = threading.Lock()


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver we ship with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Store:
    """Engine, transactions and migrations for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._migrated = False
        self._lock = threading.Lock()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction for one mutation: committed whole or rolled back whole."""
        self.migrate()
        with Session(self.engine, expire_on_commit=False) as session:
            session.connection(execution_options={_WRITE: True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def hold(self, session: Session, *names: str) -> None:
        """Serialise a critical section across processes until ``session``'s transaction ends.

        ``session`` must come from :meth:`write`. On PostgreSQL each name takes a transaction-scoped
        advisory lock (in a fixed order, so two holders of several names cannot deadlock); on SQLite
        the write transaction itself already holds the database's single write lock
        (``BEGIN IMMEDIATE``), which serialises every writer of the file, in any process."""
        if self.is_sqlite:
            return
        for key in sorted({lock_key(n) for n in names}):
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    @contextmanager
    def read(self) -> Iterator[Session]:
        self.migrate()
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    # -- schema -------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest revision (once per process; cheap when already there)."""
        if self._migrated:
            return
        with self._lock:
            if self._migrated:
                return
            upgrade(self.engine)
            self._migrated = True

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                return None

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # reported, not raised: /health must answer
            log.warning("store unreachable: %s", exc)
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks (the same in every process,
    unlike Python's salted ``hash``)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (see the 'begin' hook).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(engine: Engine | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``, holding one connection (and its lock) throughout."""
    from contextlib import nullcontext

    from alembic import command

    from mlops_mcp.core.locks import interprocess_lock, sqlite_path

    cfg = alembic_config(engine)
    db_file = sqlite_path(engine.url.render_as_string(hide_password=False))
    between_processes = interprocess_lock(db_file.with_name(db_file.name + ".migrate.lock")) if db_file else nullcontext()
    with _ALEMBIC_LOCK, between_processes, engine.connect() as conn:
        if engine.dialect.name == "postgresql":  # servers on other machines: the database's own lock
            conn.execute(text("SELECT pg_advisory_lock(7219004417)"))
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(7219004417)"))
                conn.commit()
