"""Server-level tools: what this server is and where it keeps things; demo data to try it on."""

from typing import Annotated

from pydantic import BaseModel, Field

from mlops_mcp.tools.base import Registrar


class ServerInfo(BaseModel):
    version: str = Field(description="mlops-mcp version")
    python: str
    store_backend: str = Field(description="sqlite or postgresql")
    store_reachable: bool
    schema_revision: str | None = Field(description="Alembic revision the store is at")
    database_url: str = Field(description="store URL, password masked")
    tracking_uri: str = Field(description="MLflow tracking/registry URI (open `mlflow ui` on it to see everything)")
    home: str
    data_roots: list[str] = Field(description="folders `dataset` paths may point into")
    read_only: bool = Field(description="true: mutating tools are not registered")
    auth_required: bool
    tools: list[str] = Field(description="tools registered on this server")
    libraries: dict[str, str | None]


class DemoData(BaseModel):
    folder: str = Field(description="where the files were written (inside a data root)")
    files: dict[str, str] = Field(description="role -> dataset path to pass as `dataset`")
    rows: int
    seasons: list[int]
    rule_change_season: int | None
    features: list[str]
    labels: list[str] = Field(description="home_win (classification), point_margin (regression)")


def register(r: Registrar) -> None:
    @r.tool(title="Server info", read_only=True)
    def get_server_info() -> ServerInfo:
        """Report this server's version, store (backend, reachable, schema revision), MLflow tracking
        URI, home folder, data roots, read-only mode and registered tools.

        Use it first when something is not where you expect it, or to learn which folders
        `dataset` arguments may point into. Takes no arguments.
        """
        return ServerInfo(**r.ops.server_info(), tools=sorted(r.registered))

    @r.tool(title="Generate demo data (NBA games)", read_only=False, idempotent=True)
    def generate_demo_data(
        seasons: Annotated[int, Field(ge=2, le=20, description="number of seasons, 2-20")] = 4,
        games_per_season: Annotated[int, Field(ge=50, le=20_000, description="games per season (NBA: 1230)")] = 1230,
        first_season: Annotated[int, Field(ge=1950, le=2100)] = 2021,
        rule_change_season: Annotated[
            int | None,
            Field(description="from this season on: more threes, faster pace, noisier games (null: no change)"),
        ] = 2024,
        seed: Annotated[int, Field(description="random seed; the same seed gives the same files")] = 7,
        folder: Annotated[
            str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="sub-folder of <home>/data to write into")
        ] = "nba",
    ) -> DemoData:
        """Write a synthetic, seeded NBA games dataset into the server's data folder, to try training,
        drift, explanations and feedback on data whose truth is known.

        Files (Parquet and CSV): `<folder>/games.parquet` (all seasons), `<folder>/train.parquet`
        (seasons before the rule change), `<folder>/recent.parquet` (from the rule change on),
        `<folder>/games.csv`. Labels: `home_win` (0/1) and `point_margin` (home minus away points).
        From `rule_change_season` on, pace and three-point rates drift upward and games get
        noisier, so a model trained before it decays. Example: `generate_demo_data()` then
        `train_model(model="nba-win", dataset="nba/train.parquet", target="home_win")`.
        """
        return DemoData(
            **r.ops.generate_demo_data(seasons, games_per_season, first_season, rule_change_season, seed, folder)
        )
