"""Data-root confinement, configuration parsing, and the synthetic data's known properties."""

import os
from pathlib import Path
from typing import Any

import pytest

from mlops_mcp.core.config import Settings, mask_url
from mlops_mcp.core.datasets import available_files, read_frame, resolve_path
from mlops_mcp.core.errors import Forbidden, InvalidInput, NotFound
from mlops_mcp.core.synthetic import generate_games


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "sub" / "a.csv").write_text("x,y\n1,2\n")
    (r / "b.parquet").write_bytes(b"")
    return r


def test_relative_path_inside_root(root: Path) -> None:
    assert resolve_path("sub/a.csv", [root]) == (root / "sub" / "a.csv").resolve()


@pytest.mark.parametrize("bad", ["../../etc/passwd", "sub/../../x.csv", "../root/sub/a.csv"])
def test_dotdot_is_refused(root: Path, bad: str) -> None:
    with pytest.raises(Forbidden, match="dataset.*'\\.\\.'"):
        resolve_path(bad, [root])


def test_absolute_path_outside_roots_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("x\n1\n")
    with pytest.raises(Forbidden, match="outside the data roots"):
        resolve_path(str(outside), [root])
    with pytest.raises(Forbidden):
        resolve_path("/etc/passwd", [root])
    assert resolve_path(str(root / "sub" / "a.csv"), [root]) == (root / "sub" / "a.csv").resolve()


def test_symlink_escaping_a_root_is_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("x\n1\n")
    (root / "link.csv").symlink_to(secret)
    (root / "linkdir").symlink_to(tmp_path)
    with pytest.raises(Forbidden, match="outside"):
        resolve_path("link.csv", [root])
    with pytest.raises(Forbidden, match="outside"):
        resolve_path("linkdir/secret.csv", [root])


def test_missing_file_lists_what_exists(root: Path) -> None:
    with pytest.raises(NotFound) as err:
        resolve_path("nope.csv", [root])
    assert "sub/a.csv" in str(err.value) and "dataset" in str(err.value)


def test_wrong_suffix_and_empty_input(root: Path) -> None:
    (root / "notes.txt").write_text("hi")
    with pytest.raises(InvalidInput, match="accepted: .csv"):
        resolve_path("notes.txt", [root])
    with pytest.raises(InvalidInput):
        resolve_path("  ", [root])


def test_empty_and_broken_files_are_clear_errors(root: Path) -> None:
    (root / "empty.csv").write_text("")
    with pytest.raises(InvalidInput, match="empty"):
        read_frame(root / "empty.csv")
    (root / "header.csv").write_text("a,b\n")
    with pytest.raises(InvalidInput, match="no rows"):
        read_frame(root / "header.csv")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_frame(root / "b.parquet")


def test_settings_defaults_derive_from_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = Settings(home=tmp_path / "h", _env_file=None)  # type: ignore[call-arg]
    assert s.database_url == f"sqlite:///{tmp_path / 'h' / 'mlops.db'}"
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'h' / 'mlflow.db'}"
    assert s.data_roots == [tmp_path / "h" / "data", Path.cwd().resolve()]


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setenv("MLOPS_DATA_ROOTS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'},{tmp_path / 'c'}")
    monkeypatch.setenv("MLOPS_READ_ONLY", "true")
    monkeypatch.setenv("MLOPS_LOG_LEVEL", "debug")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.data_roots == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert s.read_only is True and s.log_level == "DEBUG"
    assert s.tracking_uri == "http://mlflow.internal:5000"
    monkeypatch.setenv("MLOPS_TRACKING_URI", "sqlite:///x.db")
    assert Settings(_env_file=None).tracking_uri == "sqlite:///x.db"  # type: ignore[call-arg]


def test_mask_url_hides_passwords() -> None:
    assert mask_url("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask_url("sqlite:///a.db") == "sqlite:///a.db"


def test_synthetic_data_is_seeded_and_drifts_by_design() -> None:
    a = generate_games(seasons=4, games_per_season=400, rule_change_season=2024, seed=3)
    b = generate_games(seasons=4, games_per_season=400, rule_change_season=2024, seed=3)
    assert a.equals(b)
    before, after = a[a.season < 2024], a[a.season == 2024]
    assert after.pace.mean() - before.pace.mean() > 3.5  # era pace 99.0 -> 103.5
    assert after.home_three_rate.mean() - before.home_three_rate.mean() > 0.04
    assert (a.home_team != a.away_team).all()
    assert ((a.point_margin > 0) == (a.home_win == 1)).all() and (a.point_margin != 0).all()
    assert (a.home_back_to_back == (a.home_rest_days == 0)).all()


@pytest.mark.parametrize("where", ["root", "home"])
def test_working_directory_is_no_default_root_when_it_is_slash_or_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    target = Path("/") if where == "root" else Path.home()
    monkeypatch.chdir(target)
    s = Settings(home=tmp_path / "h", _env_file=None)  # type: ignore[call-arg]
    assert s.data_roots == [tmp_path / "h" / "data"]


# -- non-regular files and what path errors say (issue 12 points 4 and 10, issue 11) -------------
def _within(seconds: float, fn: Any) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_a_fifo_is_refused_before_it_is_opened(root: Path) -> None:
    os.mkfifo(root / "pipe.csv")
    with pytest.raises(InvalidInput, match=r"pipe\.csv' is a FIFO \(named pipe\), not a regular file"):
        _within(5, lambda: resolve_path("pipe.csv", [root]))
    # a file swapped for a FIFO after the check: the open itself refuses it without blocking
    with pytest.raises(InvalidInput, match="FIFO"):
        _within(5, lambda: read_frame(root / "pipe.csv"))
    from mlops_mcp.core.feedback.labels import iter_dataset

    with pytest.raises(InvalidInput, match="FIFO"):
        _within(5, lambda: list(iter_dataset(root / "pipe.csv")))
    assert "pipe.csv" not in available_files([root])


def test_a_folder_named_like_a_file_is_a_clear_error(root: Path) -> None:
    (root / "dir.csv").mkdir()
    (root / "dir.csv" / "part-0.csv").write_text("x\n1\n")
    with pytest.raises(InvalidInput, match=r"'dir.csv' is a folder, not a file.*e\.g\. 'dir.csv/part-0.csv'"):
        resolve_path("dir.csv", [root])


def test_not_found_lists_only_files_that_could_be_read(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("x\n1\n")
    (root / "leak.csv").symlink_to(secret)
    (root / "inside.csv").symlink_to(root / "sub" / "a.csv")
    (root / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(NotFound) as err:
        resolve_path("nope.csv", [root])
    message = str(err.value)
    assert "sub/a.csv" in message and "inside.csv" in message
    assert "leak.csv" not in message and "dangling.csv" not in message


def test_path_errors_name_the_setting_and_the_roots(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "sales"
    elsewhere.mkdir()
    (elsewhere / "q1.csv").write_text("x\n1\n")
    with pytest.raises(Forbidden) as err:
        resolve_path(str(elsewhere / "q1.csv"), [root])
    message = str(err.value)
    assert f"The data roots are now {root.resolve()}" in message
    assert f"MLOPS_DATA_ROOTS={root.resolve()}{os.pathsep}{elsewhere.resolve()}" in message
    with pytest.raises(NotFound) as err:
        resolve_path("q1.csv", [root])
    assert "MLOPS_DATA_ROOTS" in str(err.value) and str(root.resolve()) in str(err.value)
