"""Training-row hashes kept with the reference profile (issue 11: run_ab_test on training rows).

Checked against an independent pure-Python implementation of the documented algorithm (so a stored
hash means the same thing whatever numpy or pandas version made it), across file types (CSV and
Parquet spell the same values differently), and for lookups against Python sets.
"""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_mcp.core.models.profile import (
    ROW_HASH_ALGORITHM,
    RowHashes,
    hash_rows,
    read_row_hashes,
    write_profile,
)

M64 = (1 << 64) - 1


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _reference_hash(values: list[object], kinds: list[str]) -> int:
    """The algorithm as documented, one row, in plain Python integers."""
    import struct

    h = 0x6A09E667F3BCC908
    for i, (value, kind) in enumerate(zip(values, kinds, strict=True)):
        if kind == "numeric":
            x = float("nan") if value is None else float(value) + 0.0  # type: ignore[arg-type]
            bits = 0x7FF8000000000000 if math.isnan(x) else struct.unpack("<Q", struct.pack("<d", x))[0]
            col = _mix(bits)
        else:
            if value is None:
                text = "\x00NA"
            elif isinstance(value, float) and value.is_integer():
                text = str(int(value))
            else:
                text = str(value)
            col = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        salt = (0x9E3779B97F4A7C15 * (i + 1)) & M64
        h = _mix(h ^ ((col + salt) & M64))
    return h


def test_hashes_equal_an_independent_implementation() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, -0.0, None, 3.0, 1e300],
            "team": ["BOS", "LAL", None, "BOS", "né"],
            "y": [1, 0, 1, 1, 0],
        }
    )
    kinds = {"x": "numeric", "team": "categorical", "y": "categorical"}
    got = hash_rows(frame, ["x", "team", "y"], kinds)
    assert got.dtype == np.uint64
    for i, row in enumerate(frame.astype(object).where(frame.notna(), None).itertuples(index=False)):
        assert int(got[i]) == _reference_hash(list(row), ["numeric", "categorical", "categorical"]), i
    # -0.0 and 0.0 are one number; column order matters; every distinct row gets its own hash
    zero = hash_rows(pd.DataFrame({"x": [0.0, -0.0]}), ["x"], {"x": "numeric"})
    assert zero[0] == zero[1]
    swapped = hash_rows(frame, ["team", "x", "y"], kinds)
    assert not np.any(swapped == got)
    assert len(set(got.tolist())) == len(frame)


def test_hashes_do_not_depend_on_the_file_type(tmp_path: Path) -> None:
    """The same rows read back from CSV (ints become floats where a value is missing, categories of
    digits become numbers) and from Parquet hash the same."""
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "rating": rng.integers(0, 100, n).astype(float),
            "rest_days": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "venue": rng.choice(["home", "away", "neutral"], n),
            "code": rng.integers(1, 5, n),  # a categorical column of digits
            "won": rng.integers(0, 2, n).astype(bool),
        }
    )
    frame.loc[::7, "rest_days"] = pd.NA
    frame.loc[::11, "venue"] = None
    kinds = {"rating": "numeric", "rest_days": "numeric", "venue": "categorical", "code": "categorical",
             "won": "categorical"}
    cols = list(kinds)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    from_csv, from_parquet = pd.read_csv(tmp_path / "d.csv"), pd.read_parquet(tmp_path / "d.parquet")
    assert str(from_csv["rest_days"].dtype) != str(from_parquet["rest_days"].dtype)  # really spelled differently
    assert np.array_equal(hash_rows(from_csv, cols, kinds), hash_rows(from_parquet, cols, kinds))
    assert np.array_equal(hash_rows(frame, cols, kinds), hash_rows(from_parquet, cols, kinds))


def test_counts_match_python_sets_and_survive_the_profile(tmp_path: Path) -> None:
    from mlops_mcp.core.models.pipeline import infer_schema

    rng = np.random.default_rng(1)
    train = pd.DataFrame({"a": rng.normal(size=2000).round(1), "b": rng.choice(list("xyz"), 2000), "y": rng.integers(0, 2, 2000)})
    evaluated = pd.concat([train.sample(300, random_state=2), train.assign(a=train["a"] + 100).head(200)])
    schema = infer_schema(train, "y")
    kinds = {**schema.kinds, "y": "categorical"}
    hashes = RowHashes.of(train, ["a", "b", "y"], kinds, "y")
    assert hashes.rows == 2000 and len(hashes.hashes) == len(train.drop_duplicates())  # duplicates kept once
    assert np.all(np.diff(hashes.hashes.astype(object)) > 0)  # sorted for lookups
    seen = set(map(tuple, train[["a", "b", "y"]].itertuples(index=False)))
    expected = sum(tuple(r) in seen for r in evaluated[["a", "b", "y"]].itertuples(index=False))
    assert hashes.count_in(hash_rows(evaluated, ["a", "b", "y"], kinds)) == expected == 300

    folder = write_profile(tmp_path / "ref", train[["a", "b"]].head(100), schema, len(train), hashes)
    back = read_row_hashes(folder)
    assert back is not None and np.array_equal(back.hashes, hashes.hashes)
    assert (back.columns, back.target, back.rows) == (["a", "b", "y"], "y", 2000)
    meta = json.loads((folder / "schema.json").read_text())["row_hashes"]
    assert meta["algorithm"] == ROW_HASH_ALGORITHM and meta["distinct"] == len(hashes.hashes)
    # a profile without hashes (older, or registered without data), or made another way: unknown
    plain = write_profile(tmp_path / "plain", train[["a", "b"]].head(100), schema, len(train))
    assert read_row_hashes(plain) is None and read_row_hashes(None) is None
    meta_all = json.loads((folder / "schema.json").read_text())
    meta_all["row_hashes"]["algorithm"] = "something-else"
    (folder / "schema.json").write_text(json.dumps(meta_all))
    assert read_row_hashes(folder) is None


@pytest.mark.parametrize("value,text", [(3, "3"), (3.0, "3"), ("3", "3"), (2.5, "2.5"), (True, "True"), (None, "\x00NA")])
def test_categorical_spellings(value: object, text: str) -> None:
    got = hash_rows(pd.DataFrame({"c": pd.Series([value], dtype=object)}), ["c"], {"c": "categorical"})
    assert int(got[0]) == _reference_hash([text if value is not None else None], ["categorical"])
