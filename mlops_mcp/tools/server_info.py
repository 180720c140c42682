"""Server-level tools: what this server is and where it keeps things; demo data to try it on."""

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from mlops_mcp.core.results import DemoData, ServerInfo
from mlops_mcp.tools.context import engine, runtime


def get_server_info(ctx: Context) -> ServerInfo:
    """Report this server's version, store (backend, reachable, schema revision), MLflow tracking
    URI, home folder, data roots (the only folders `dataset` paths are read from, and how to add
    one), read-only mode, toolsets and tools.

    Call it first when a file or model is not where you expect it. Takes no arguments.
    """
    rt = runtime(ctx)
    return engine(ctx).server_info(tools=rt.tools, toolsets=rt.toolsets)


def generate_demo_data(
    ctx: Context,
    seasons: Annotated[int, Field(ge=2, le=20, description="number of seasons, 2-20")] = 4,
    games_per_season: Annotated[int, Field(ge=50, le=20_000, description="games per season (NBA: 1230)")] = 1230,
    first_season: Annotated[int, Field(ge=1950, le=2100)] = 2021,
    rule_change_season: Annotated[
        int | None,
        Field(ge=1950, le=2120, description="from this season on: more threes, faster pace, noisier games (null: no change)"),
    ] = 2024,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="random seed; the same seed gives the same files")] = 7,
    folder: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="sub-folder of the first data root to write into")
    ] = "nba",
) -> DemoData:
    """Write a synthetic, seeded NBA games dataset into the server's data folder, to try training,
    drift, explanations and feedback on data whose truth is known.

    Files (Parquet and CSV): `<folder>/games.parquet` (all seasons), `<folder>/train.parquet`
    (seasons before the rule change), `<folder>/recent.parquet` (from the rule change on),
    `<folder>/games.csv`. Labels: `home_win` (0/1) and `point_margin` (home minus away points).
    From `rule_change_season` on, pace and three-point rates drift upward and games get noisier,
    so a model trained before it decays. The result lists the columns to `exclude` when training.
    Example: generate_demo_data() then train_model(model="nba-win", dataset="nba/train.parquet",
    target="home_win", exclude=["game_id", "season", "game_date", "point_margin"]).
    """
    return engine(ctx).generate_demo_data(seasons, games_per_season, first_season, rule_change_season, seed, folder)
