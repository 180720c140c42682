"""A version's reference profile: a capped sample of its training data and its feature schema.

Kept as MLflow artifacts of the version's run (folder ``mlops_reference/``, visible in ``mlflow ui``)
and cached under ``<home>/cache``. Drift checks default to it and explanations draw their
background from it, so ``check_drift(model=...)`` needs no reference argument.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_mcp.core.models.pipeline import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT_DIR = "mlops_reference"
SAMPLE_FILE = "sample.parquet"
SCHEMA_FILE = "schema.json"
PREPARED_FILE = "prepared.npz"  # the drift engine's sorted/binned form of the sample
PREDICTION_COLUMN = "__prediction__"


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


def write_profile(folder: Path, sample: "pd.DataFrame", schema: FeatureSchema, n_source_rows: int) -> Path:
    """Write the profile files into ``folder`` (to be logged as artifacts); return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(folder / SAMPLE_FILE, index=False)
    prepare_for_drift(sample, schema).save(folder / PREPARED_FILE)
    meta = {"schema": schema.to_dict(), "n_source_rows": n_source_rows, "rows": len(sample)}
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
