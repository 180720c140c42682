"""The base of every typed result the engine returns, and the server-level results.

A result is a pydantic model: a library user, a tool and a resource all see the same shape, and
the tools publish its JSON schema as their output schema. ``describe()`` is the short text a person
(or a host that shows only text) reads: what happened, how much, what to do next.

``defer_build``: the ~70 result classes are defined at import, but their validators and schemas
are built on first use, so importing them costs the server's start-up almost nothing.
"""

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mlops_mcp.core.values import Scalar

__all__ = ["DemoData", "Result", "Scalar", "ServerInfo"]


class Result(BaseModel):
    """Base of the engine's results."""

    model_config = ConfigDict(defer_build=True)

    #: a PNG chart drawn for this result (``plot=true``): not part of the data, sent beside it
    _chart: bytes | None = PrivateAttr(default=None)

    def describe(self) -> str:
        """A short plain-text account of the result (overridden per result)."""
        return ""

    @property
    def chart(self) -> bytes | None:
        return self._chart

    def with_chart(self, png: bytes | None) -> "Result":
        self._chart = png
        return self


class ServerInfo(Result):
    version: str = Field(description="mlops-mcp version")
    python: str
    store_backend: str = Field(description="sqlite or postgresql")
    store_reachable: bool
    schema_revision: str | None = Field(description="Alembic revision the store is at")
    database_url: str = Field(description="store URL, password masked")
    tracking_uri: str = Field(description="MLflow tracking/registry URI (open `mlflow ui` on it to see everything)")
    home: str
    data_roots: list[str] = Field(description="folders `dataset` paths may point into (MLOPS_DATA_ROOTS)")
    data_roots_help: str = Field(description="how to let the server read other folders")
    read_only: bool = Field(description="true: mutating tools are not offered")
    auth_required: bool
    toolsets: list[str] = Field(description="toolsets offered (MLOPS_TOOLSETS)")
    tools: list[str] = Field(description="tools offered by this server")
    libraries: dict[str, str | None]

    def describe(self) -> str:
        store = f"{self.store_backend} store {'reachable' if self.store_reachable else 'NOT reachable'}"
        return (
            f"mlops-mcp {self.version}; {store}; MLflow at {self.tracking_uri}; home {self.home}.\n"
            f"Data roots (datasets are read only from these): {', '.join(self.data_roots)}. {self.data_roots_help}\n"
            f"{len(self.tools)} tools in toolsets {', '.join(self.toolsets)}"
            + ("; read-only mode" if self.read_only else "")
            + "."
        )


class DemoData(Result):
    folder: str = Field(description="where the files were written (inside a data root)")
    files: dict[str, str] = Field(description="role -> dataset path to pass as `dataset`")
    rows: int
    seasons: list[int]
    rule_change_season: int | None
    features: list[str]
    labels: list[str] = Field(description="home_win (classification), point_margin (regression)")
    exclude: list[str] = Field(description="columns that are not features: ids, dates, the other label")

    def describe(self) -> str:
        files = ", ".join(f"{role}: {path}" for role, path in self.files.items())
        return (
            f"Wrote {self.rows:,} synthetic games ({self.seasons[0]}-{self.seasons[-1]}"
            + (f", rule change in {self.rule_change_season}" if self.rule_change_season else "")
            + f") to {self.folder}. Files: {files}. Next: train_model(model='nba-win', "
            f"dataset='{self.files.get('train', 'nba/train.parquet')}', target='home_win', exclude={self.exclude})."
        )
