"""A version's reference profile: a capped sample of its training data and its feature schema.

Kept as MLflow artifacts of the version's run (folder ``mlops_reference/``, visible in ``mlflow ui``)
and cached under ``<home>/cache``. Drift checks default to it and explanations draw their
background from it, so ``check_drift(model=...)`` needs no reference argument.

Beside the sample it keeps a 64-bit hash of *every* training row (features + target; 8 bytes a row,
sorted, ``row_hashes.npy``), so that an evaluation on the model's own training rows can be told
apart from a real held-out test (``run_ab_test`` counts the overlap) without storing the data.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.models.pipeline import FeatureSchema

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ARTIFACT_DIR = "mlops_reference"
SAMPLE_FILE = "sample.parquet"
SCHEMA_FILE = "schema.json"
PREPARED_FILE = "prepared.npz"  # the drift engine's sorted/binned form of the sample
PREDICTION_COLUMN = "__prediction__"
ROW_HASHES_FILE = "row_hashes.npy"
#: Named so that a later change of the canonical form or the hash is never compared with this one.
ROW_HASH_ALGORITHM = "mlops-rowhash-v1 (canonical values, blake2b-64 strings, splitmix64 numbers and rows)"


@dataclass
class ReferenceProfile:
    schema: FeatureSchema
    sample: "pd.DataFrame"  # features (+ target, + the model's prediction score when known)
    n_source_rows: int
    folder: Path

    def summary(self) -> dict[str, Any]:
        return {
            "rows": len(self.sample),
            "source_rows": self.n_source_rows,
            "features": len(self.schema.features),
            "numeric": len(self.schema.numeric),
            "categorical": len(self.schema.categorical),
            "target": self.schema.target,
        }


def write_profile(
    folder: Path,
    sample: "pd.DataFrame",
    schema: FeatureSchema,
    n_source_rows: int,
    row_hashes: "RowHashes | None" = None,
) -> Path:
    """Write the profile files into ``folder`` (to be logged as artifacts); return the folder."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(folder / SAMPLE_FILE, index=False)
    prepare_for_drift(sample, schema).save(folder / PREPARED_FILE)
    meta: dict[str, Any] = {"schema": schema.to_dict(), "n_source_rows": n_source_rows, "rows": len(sample)}
    if row_hashes is not None:
        np.save(folder / ROW_HASHES_FILE, row_hashes.hashes, allow_pickle=False)
        meta["row_hashes"] = row_hashes.meta()
    (folder / SCHEMA_FILE).write_text(json.dumps(meta, default=str))
    return folder


def read_profile(folder: Path) -> ReferenceProfile:
    import pandas as pd

    meta = json.loads((folder / SCHEMA_FILE).read_text())
    sample = pd.read_parquet(folder / SAMPLE_FILE)
    return ReferenceProfile(FeatureSchema.from_dict(meta["schema"]), sample, meta["n_source_rows"], folder)


def prepare_for_drift(sample: "pd.DataFrame", schema: FeatureSchema) -> Any:
    """Sort / bin / dictionary-encode the sample once, so drift checks pay only for current data.
    Features and the model's prediction score are prepared (the target is not a model input)."""
    from mlops_mcp.core.drift import prepare_reference

    columns = [c for c in schema.features if c in sample.columns]
    if PREDICTION_COLUMN in sample.columns:
        columns.append(PREDICTION_COLUMN)
    return prepare_reference(sample[columns])


def prepared_reference(folder: Path) -> Any:
    """The prepared form stored with the profile (made and cached here for older profiles, and
    made again from the sample when it was written in an older format: e.g. format 1 left dates out)."""
    from mlops_mcp.core.drift import PreparedReference
    from mlops_mcp.core.drift.prepared import FORMAT_VERSION

    path = folder / PREPARED_FILE
    if path.exists():
        prepared = PreparedReference.load(path)
        if prepared.format == FORMAT_VERSION or not (folder / SAMPLE_FILE).exists():
            return prepared
    profile = read_profile(folder)
    prepared = prepare_for_drift(profile.sample, profile.schema)
    prepared.save(path)
    return prepared


def read_schema(folder: Path) -> FeatureSchema:
    meta = json.loads((folder / SCHEMA_FILE).read_text())
    return FeatureSchema.from_dict(meta["schema"])


def sample_rows(frame: "pd.DataFrame", cap: int, seed: int = 0) -> "pd.DataFrame":
    """A uniform random sample of at most ``cap`` rows (all rows when fewer), order kept."""
    if len(frame) <= cap:
        return frame.reset_index(drop=True)
    return frame.sample(n=cap, random_state=seed).sort_index().reset_index(drop=True)


# -- row hashes ---------------------------------------------------------------------------------------
@dataclass
class RowHashes:
    """Sorted unique 64-bit hashes of a version's training rows, and how they were made.

    ``columns`` are hashed in that order, each by its ``kinds`` entry (``numeric`` or
    ``categorical``); ``target`` names the label column among them (None when only features were
    hashed: a model registered with reference data but no known target). ``rows`` counts the rows
    hashed (duplicates included); ``hashes`` holds each distinct row once.
    """

    hashes: "np.ndarray"
    columns: list[str]
    kinds: dict[str, str]
    target: str | None
    rows: int
    algorithm: str = ROW_HASH_ALGORITHM

    def meta(self) -> dict[str, Any]:
        return {"columns": self.columns, "kinds": self.kinds, "target": self.target, "rows": self.rows,
                "distinct": len(self.hashes), "algorithm": self.algorithm, "file": ROW_HASHES_FILE}

    @classmethod
    def of(cls, frame: "pd.DataFrame", columns: list[str], kinds: dict[str, str], target: str | None) -> "RowHashes":
        """Hash every row of ``frame[columns]``."""
        import numpy as np

        hashed = hash_rows(frame, columns, kinds)
        return cls(np.unique(hashed), list(columns), {c: kinds[c] for c in columns}, target, len(frame))

    def count_in(self, hashes: "np.ndarray") -> int:
        """How many of ``hashes`` (one per evaluated row) are hashes of training rows."""
        import numpy as np

        if len(self.hashes) == 0 or len(hashes) == 0:
            return 0
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return int(np.count_nonzero(self.hashes[at] == hashes))


def read_row_hashes(folder: Path | None) -> RowHashes | None:
    """The version's training-row hashes, or None when its profile has none (older or registered
    without data) or they were made by another algorithm."""
    import numpy as np

    if folder is None or not (folder / SCHEMA_FILE).is_file():
        return None
    meta = json.loads((folder / SCHEMA_FILE).read_text()).get("row_hashes")
    path = folder / ROW_HASHES_FILE
    if not meta or meta.get("algorithm") != ROW_HASH_ALGORITHM or not path.is_file():
        return None
    hashes = np.load(path, allow_pickle=False)
    if hashes.dtype != np.uint64 or hashes.ndim != 1:
        return None
    return RowHashes(hashes, list(meta["columns"]), dict(meta["kinds"]), meta.get("target"), int(meta["rows"]))


_MASK64 = (1 << 64) - 1


def _splitmix64(z: "np.ndarray") -> "np.ndarray":
    """SplitMix64's finaliser: a bijective mix of 64-bit integers (wrapping uint64 arithmetic)."""
    import numpy as np

    z = z.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def _canonical_text(value: Any) -> str:
    """One spelling per categorical value, whatever the file type read it as: 3, 3.0 and '3' differ
    only when they were written differently (3 and 3.0 are the same number: '3')."""
    import math

    if value is None:
        return "\x00NA"
    if isinstance(value, bool):
        return "True" if value else "False"
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "\x00NA"
        return str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    return str(value)


def _column_hashes(series: "pd.Series", kind: str) -> "np.ndarray":
    import hashlib

    import numpy as np
    import pandas as pd

    if kind == "numeric":
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            values = series.astype("float64").to_numpy(dtype=float, na_value=np.nan)
        else:
            values = pd.to_numeric(series, errors="coerce").astype("float64").to_numpy(dtype=float, na_value=np.nan)
        values = values + 0.0  # -0.0 -> 0.0
        values[np.isnan(values)] = np.nan  # one NaN bit pattern
        return _splitmix64(values.view(np.uint64))
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # hash each distinct value once
    texts = [_canonical_text(v) for v in uniques.tolist()] + ["\x00NA"]
    digests = np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
         for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )
    return digests[codes]  # code -1 (missing) picks the last entry


def hash_rows(frame: "pd.DataFrame", columns: list[str], kinds: dict[str, str]) -> "np.ndarray":
    """A 64-bit hash per row of the values in ``columns`` (in that order), independent of file type.

    Numbers (``kinds[c] == 'numeric'``) are compared as float64 (so 3 and 3.0 agree, -0.0 is 0.0,
    every missing value is one NaN); categoricals by a canonical text (:func:`_canonical_text`).
    Built only from hashlib and numpy integer arithmetic, so hashes stored by one version of the
    libraries compare with hashes made by another. Two different rows share a hash with probability
    about 2^-64: with a million training and a million evaluated rows, 5e-8 expected false matches.
    """
    import numpy as np

    h = np.full(len(frame), 0x6A09E667F3BCC908, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i, col in enumerate(columns):
            salt = np.uint64((0x9E3779B97F4A7C15 * (i + 1)) & _MASK64)
            h = _splitmix64(h ^ (_column_hashes(frame[col], kinds.get(col, "categorical")) + salt))
    return h
