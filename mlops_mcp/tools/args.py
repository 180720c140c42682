"""Argument types shared by the tools: one name, one meaning and one description for each concept.

Numbers a caller sends are bounded here, in the schema, so that nothing unbounded reaches the
engine (versions and ids fit a 32-bit integer; row counts and sizes have stated caps).
"""

from typing import Annotated, Any

from pydantic import Field

from mlops_mcp.core.limits import MAX_ID, MAX_INLINE_ROWS

MODEL_REF_HELP = (
    "'name' (the model; where one version is needed, the one its 'champion' alias points at), "
    "'name@alias' (the version that alias points at) or 'name/version' (that version), "
    "e.g. 'nba-win', 'nba-win@challenger', 'nba-win/3'"
)

#: ``name``, ``name@alias`` or ``name/version`` (see :class:`mlops_mcp.core.models.refs.ModelRef`)
ModelRefArg = Annotated[str, Field(description=MODEL_REF_HELP, min_length=1, max_length=200)]
#: a plain registered model name
ModelNameArg = Annotated[
    str, Field(description="registered model name, e.g. 'nba-win'", min_length=1, max_length=128)
]
AliasArg = Annotated[
    str, Field(description="alias, e.g. 'champion', 'challenger', 'shadow'", min_length=1, max_length=64)
]
VersionArg = Annotated[int, Field(ge=1, le=MAX_ID, description="version number, e.g. 3")]
#: a path inside the data roots, or the rows themselves for small data
DatasetArg = Annotated[
    Annotated[str, Field(min_length=1, max_length=1024)]
    | Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_INLINE_ROWS)],
    Field(
        description="a CSV or Parquet path relative to a data root (see get_server_info), e.g. 'nba/train.parquet'; "
        f"or, for small data, the rows inline: a list of up to {MAX_INLINE_ROWS:,} objects (column: value)"
    ),
]
#: a path inside the data roots only (tools that keep the file itself: ingest, retraining data)
DataPathArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="a CSV or Parquet path relative to a data root (see get_server_info), e.g. 'nba/train.parquet'",
    ),
]
ReasonArg = Annotated[str | None, Field(max_length=1000, description="why; kept in the history")]
ConfirmArg = Annotated[bool, Field(description="true to go ahead on clients that cannot ask the user (elicitation)")]
PlotArg = Annotated[bool, Field(description="also return a PNG chart")]
AlphaArg = Annotated[float, Field(gt=0, lt=0.5, description="significance level (two-sided), e.g. 0.05")]
TimeArg = Annotated[
    str | None,
    Field(max_length=64, description="ISO 8601 time, e.g. '2024-03-01' or '2024-03-01T18:30:00Z' (no zone = UTC)"),
]
ExperimentIdArg = Annotated[
    int, Field(ge=1, le=MAX_ID, description="the experiment_id start_ab_test or start_shadow returned")
]

#: one entity key value: text keys as strings, integer keys as integers
KeyValueArg = Annotated[str, Field(max_length=1024)] | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
EntityKeysArg = Annotated[
    list[KeyValueArg | Annotated[dict[str, KeyValueArg], Field(max_length=4)]],
    Field(
        min_length=1,
        max_length=1000,
        description="up to 1,000 keys: plain values when the views have one key column (['BOS', 'LAL'], [4412]), "
        "else objects ([{'team': 'BOS', 'season': 2024}]); text keys as strings, integer keys as integers",
    ),
]
