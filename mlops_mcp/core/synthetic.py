"""A seeded generator of NBA games, so that the demo and the tests have data whose truth is known.

Each game has pre-game features (team ratings, rest, back-to-backs, pace, three-point attempt
rates, injuries, the teams) and two labels: ``home_win`` (0/1) and ``point_margin`` (home minus
away points). From ``rule_change_season`` on, the league changes the way the rules change did:
more threes, faster pace, a smaller home advantage and noisier games; the features drift by known
amounts and a model trained before the change loses accuracy by a known mechanism.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_mcp.core.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

TEAMS = (
    "ATL BOS BKN CHA CHI CLE DAL DEN DET GSW HOU IND LAC LAL MEM "
    "MIA MIL MIN NOP NYK OKC ORL PHI PHX POR SAC SAS TOR UTA WAS"
).split()

FEATURES = (
    "home_team",
    "away_team",
    "home_rating",
    "away_rating",
    "home_rest_days",
    "away_rest_days",
    "home_back_to_back",
    "away_back_to_back",
    "pace",
    "home_three_rate",
    "away_three_rate",
    "home_injuries",
    "away_injuries",
)
LABELS = ("home_win", "point_margin")
#: columns a model of ``home_win`` leaves out: identifiers, time, and the other label (it leaks the answer)
EXCLUDE = ("game_id", "season", "game_date", "point_margin")


@dataclass(frozen=True)
class Era:
    """League-wide parameters of a period; the rule change swaps one era for another."""

    pace_mean: float = 99.0
    three_rate_mean: float = 0.36
    home_advantage: float = 2.6
    three_effect: float = 25.0  # points of margin per unit of three-rate difference
    noise_sd: float = 11.5


BEFORE = Era()
AFTER = Era(pace_mean=103.5, three_rate_mean=0.42, home_advantage=1.2, three_effect=55.0, noise_sd=13.5)


def generate_games(
    seasons: int = 4,
    games_per_season: int = 1230,
    first_season: int = 2021,
    rule_change_season: int | None = None,
    seed: int = 7,
) -> "pd.DataFrame":
    """Return one row per game, seasons in order, dates spread over October to April."""
    import numpy as np
    import pandas as pd

    if seasons < 1 or games_per_season < 10:
        raise InvalidInput("need at least 1 season of at least 10 games", argument="seasons")
    rng = np.random.default_rng(seed)
    n_teams = len(TEAMS)
    strength = rng.normal(0, 4.5, n_teams)  # a team's net rating, drifting season to season
    frames = []
    for s in range(seasons):
        season = first_season + s
        era = AFTER if rule_change_season is not None and season >= rule_change_season else BEFORE
        strength = 0.75 * strength + rng.normal(0, 2.2, n_teams)
        n = games_per_season
        home = rng.integers(0, n_teams, n)
        away = (home + rng.integers(1, n_teams, n)) % n_teams  # never the home team
        rest_h = rng.choice([0, 1, 2, 3, 4], n, p=[0.17, 0.48, 0.2, 0.1, 0.05])
        rest_a = rng.choice([0, 1, 2, 3, 4], n, p=[0.2, 0.47, 0.19, 0.09, 0.05])
        inj_h = rng.poisson(0.9, n)
        inj_a = rng.poisson(0.9, n)
        team_three = rng.normal(0, 0.03, n_teams)
        three_h = np.clip(era.three_rate_mean + team_three[home] + rng.normal(0, 0.035, n), 0.15, 0.7)
        three_a = np.clip(era.three_rate_mean + team_three[away] + rng.normal(0, 0.035, n), 0.15, 0.7)
        pace = rng.normal(era.pace_mean, 2.8, n)
        rating_h = strength[home] + rng.normal(0, 1.0, n)  # the published rating is a noisy view
        rating_a = strength[away] + rng.normal(0, 1.0, n)
        margin = (
            strength[home]
            - strength[away]
            + era.home_advantage
            + 0.9 * (np.minimum(rest_h, 3) - np.minimum(rest_a, 3))
            - 2.2 * inj_h
            + 2.2 * inj_a
            + era.three_effect * (three_h - three_a)
            + rng.normal(0, era.noise_sd * np.sqrt(pace / 100.0), n)
        )
        margin = np.where(np.abs(margin) < 0.5, np.sign(margin + 1e-9), margin)  # no ties in basketball
        start = pd.Timestamp(f"{season - 1}-10-20", tz="UTC")
        days = np.sort(rng.integers(0, 175, n))
        frames.append(
            pd.DataFrame(
                {
                    "game_id": np.arange(n) + season * 10_000,
                    "season": season,
                    "game_date": (start + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
                    "home_team": np.asarray(TEAMS)[home],
                    "away_team": np.asarray(TEAMS)[away],
                    "home_rating": rating_h.round(2),
                    "away_rating": rating_a.round(2),
                    "home_rest_days": rest_h,
                    "away_rest_days": rest_a,
                    "home_back_to_back": (rest_h == 0).astype(int),
                    "away_back_to_back": (rest_a == 0).astype(int),
                    "pace": pace.round(1),
                    "home_three_rate": three_h.round(3),
                    "away_three_rate": three_a.round(3),
                    "home_injuries": inj_h,
                    "away_injuries": inj_a,
                    "home_win": (margin > 0).astype(int),
                    "point_margin": np.round(margin).astype(int),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.loc[frame["point_margin"] == 0, "point_margin"] = np.where(
        frame.loc[frame["point_margin"] == 0, "home_win"] == 1, 1, -1
    )
    return frame


def write_nba_dataset(
    folder: Path,
    seasons: int = 4,
    games_per_season: int = 1230,
    first_season: int = 2021,
    rule_change_season: int | None = 2024,
    seed: int = 7,
) -> dict[str, Path]:
    """Write ``games.parquet`` (all), ``train.parquet`` (before the change), ``recent.parquet``
    (from the change on, or the last season) and ``games.csv`` into ``folder``; return the paths."""
    frame = generate_games(seasons, games_per_season, first_season, rule_change_season, seed)
    folder.mkdir(parents=True, exist_ok=True)
    split = rule_change_season if rule_change_season is not None else first_season + seasons - 1
    train = frame[frame["season"] < split]
    recent = frame[frame["season"] >= split]
    if train.empty or recent.empty:
        raise InvalidInput(
            f"{rule_change_season} leaves no season before or after it "
            f"(seasons {first_season}..{first_season + seasons - 1})",
            argument="rule_change_season",
        )
    paths = {
        "games": folder / "games.parquet",
        "games_csv": folder / "games.csv",
        "train": folder / "train.parquet",
        "recent": folder / "recent.parquet",
    }
    frame.to_parquet(paths["games"], index=False)
    frame.to_csv(paths["games_csv"], index=False)
    train.to_parquet(paths["train"], index=False)
    recent.to_parquet(paths["recent"], index=False)
    return paths
