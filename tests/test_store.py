"""The store on SQLite and, when reachable, PostgreSQL: migrations, transactions, concurrency."""

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlops_mcp.core import audit
from mlops_mcp.core.store import Store, normalize_url
from mlops_mcp.core.store.tables import AuditEntry, utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = Store(url)
    yield s
    s.dispose()


def test_migrates_to_head_and_is_idempotent(store: Store) -> None:
    store.migrate()
    first = store.revision()
    assert first is not None
    again = Store(store.url)
    again.migrate()
    assert again.revision() == first
    again.dispose()


def test_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.write() as session:
            session.add(AuditEntry(at=utcnow(), actor="a", tool="t", arguments={}, outcome="ok", error=None, duration_ms=1))
            session.flush()
            raise RuntimeError("fail after the insert")
    assert audit.log(store).entries == []


def test_concurrent_writers_lose_nothing(store: Store) -> None:
    """8 threads x 50 transactions each: every row arrives (SQLite: BEGIN IMMEDIATE + busy timeout)."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                audit.record(store, actor=f"w{n}", tool="t", arguments={"i": i}, outcome="ok", error=None, duration_ms=0.1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 400
        per_actor = dict(session.execute(select(AuditEntry.actor, func.count()).group_by(AuditEntry.actor)).all())
    assert per_actor == {f"w{n}": 50 for n in range(8)}


def test_times_come_back_as_utc(store: Store) -> None:
    audit.record(store, actor="a", tool="t", arguments={"x": [1, 2]}, outcome="ok", error=None, duration_ms=2.5)
    (entry,) = audit.log(store).entries
    assert entry.at.utcoffset() is not None and entry.at.utcoffset().total_seconds() == 0
    assert entry.arguments == {"x": [1, 2]}


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'w.db'}")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    s.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_large_arguments_are_summarised_in_the_audit() -> None:
    rows = [{"a": i, "b": "x" * 10} for i in range(1000)]
    out = audit.summarize_arguments({"rows": rows, "model": "m"})
    assert out["model"] == "m" and out["rows"]["truncated"] is True and out["rows"]["items"] == 1000
