"""Typed results of the registry: training, registering, listing, promoting, history, comparing."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from mlops_mcp.core.models.pipeline import Task
from mlops_mcp.core.results import Result, Scalar

AliasEventKind = Literal["set", "rollback", "delete", "observed"]


def _metrics_text(metrics: dict[str, float], limit: int = 4) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:limit])


class AliasMove(Result):
    model: str
    alias: str
    from_version: int | None = Field(description="where the alias pointed before (null: it did not exist)")
    to_version: int | None
    changed: bool = Field(description="false when nothing was changed (already there, or not confirmed)")
    reason: str | None = Field(default=None, description="why it moved (as recorded in the alias history)")

    def describe(self) -> str:
        if not self.changed:
            return f"'{self.model}@{self.alias}' unchanged (version {self.to_version})."
        was = "nowhere" if self.from_version is None else f"version {self.from_version}"
        return f"'{self.model}@{self.alias}' now points at version {self.to_version} (was {was})."


class TrainResult(Result):
    model: str
    version: int = Field(description="the new version's number")
    task: Task
    estimator: str
    target: str
    metrics: dict[str, float] = Field(description="on the held-out split: accuracy, f1, roc_auc, log_loss | rmse, mae, r2")
    n_train: int
    n_test: int
    features: list[str]
    categorical: list[str]
    dates_left_out: list[str] = Field(
        default_factory=list, description="date columns not used as features (see warnings for how to use them)"
    )
    classes: list[Scalar] | None
    alias: AliasMove | None = Field(description="the alias move made for this version, if any")
    auto_champion: bool = Field(
        default=False,
        description="true: the model had no champion, so this first version was made champion (its plain name serves it)",
    )
    train_seconds: float
    register_seconds: float = Field(description="logging + registering + reference profile, beyond training")
    reference_rows: int = Field(description="training rows kept as the version's reference profile")
    warnings: list[str] = Field(description="data issues worth a look (identifiers used as features, constants, ...)")
    feature_refs: list[str] | None = Field(
        default=None,
        description="trained on a build_training_set file: the 'view:feature' references recorded as lineage "
        "(the version can then be served with predict(entity_keys=...))",
    )

    def describe(self) -> str:
        text = (
            f"Trained '{self.model}' version {self.version} ({self.estimator}, {self.task} of '{self.target}') on "
            f"{self.n_train:,} rows, {len(self.features)} features; held-out ({self.n_test:,} rows): "
            f"{_metrics_text(self.metrics)}. Fit {self.train_seconds:.2f} s, registered in {self.register_seconds:.2f} s."
        )
        if self.alias is not None:
            text += " " + self.alias.describe()
        if self.auto_champion:
            text += " It is the model's first version, so it became champion: the plain name serves it."
        if self.dates_left_out:
            text += f" Date columns left out of the features: {', '.join(self.dates_left_out)}."
        if self.feature_refs:
            text += f" Lineage: {len(self.feature_refs)} feature-store features; serve by key with predict(entity_keys=...)."
        if self.warnings:
            text += " Warnings: " + " | ".join(self.warnings[:5])
        return text


class RegisterResult(Result):
    model: str
    version: int
    source: str
    alias: AliasMove | None
    auto_champion: bool = Field(
        default=False,
        description="true: the model had no champion, so this first version was made champion (its plain name serves it)",
    )
    reference_rows: int | None = Field(description="rows kept as the drift/explanation reference (null: none given)")

    def describe(self) -> str:
        ref = (
            f"reference profile of {self.reference_rows:,} rows kept"
            if self.reference_rows
            else "no reference profile (drift and explanations need reference data: pass reference_dataset)"
        )
        text = f"Registered '{self.model}' version {self.version} from {self.source}; {ref}."
        return text + (" " + self.alias.describe() if self.alias else "")


class ModelSummary(Result):
    model: str
    description: str | None
    versions: int
    latest_version: int | None
    aliases: dict[str, int] = Field(description="alias -> version")
    updated_at: datetime | None


class ModelList(Result):
    models: list[ModelSummary]
    count: int

    def describe(self) -> str:
        if not self.models:
            return "No registered models yet. Train one with train_model or register one with register_model."
        lines = [
            f"- {m.model}: {m.versions} version(s)"
            + (f", aliases {', '.join(f'{a} -> v{v}' for a, v in sorted(m.aliases.items()))}" if m.aliases else ", no aliases")
            for m in self.models[:50]
        ]
        return f"{self.count} model(s):\n" + "\n".join(lines)


class ReferenceSummary(Result):
    rows: int
    source_rows: int
    features: int
    numeric: int
    categorical: int
    target: str | None


class VersionInfo(Result):
    version: int
    aliases: list[str]
    created_at: datetime | None
    description: str | None
    task: str | None
    estimator: str | None
    target: str | None
    metrics: dict[str, float] = Field(description="training metrics logged on the version's MLflow run")
    run_id: str | None
    source: str | None
    tags: dict[str, str]
    reference: ReferenceSummary | None = Field(description="the version's drift/explanation baseline, if it has one")
    feature_refs: list[str] | None = Field(
        default=None, description="trained on a feature-store training set: its 'view:feature' references (lineage)"
    )


class VersionSchema(Result):
    features: list[str] = Field(description="the input columns predict expects, in order")
    kinds: dict[str, str] = Field(description="column -> numeric | categorical")
    classes: list[Scalar] | None


class VersionDetail(VersionInfo):
    model: str
    input_schema: VersionSchema


class ModelDetail(Result):
    model: str
    description: str | None
    aliases: dict[str, int]
    version_count: int
    versions: list[VersionInfo] = Field(description="newest first, at most 50")
    tracking_uri: str | None

    def describe(self) -> str:
        aliases = ", ".join(f"{a} -> v{v}" for a, v in sorted(self.aliases.items())) or "none"
        lines = [f"'{self.model}': {self.version_count} version(s); aliases: {aliases}."]
        for v in self.versions[:10]:
            tag = f" [{', '.join(v.aliases)}]" if v.aliases else ""
            lines.append(f"- v{v.version}{tag}: {v.estimator or v.source or ''} {v.task or ''}; {_metrics_text(v.metrics)}")
        return "\n".join(lines)


class AliasResult(AliasMove):
    confirmed: bool = Field(description="false: this was a dry run; nothing changed")
    message: str

    def describe(self) -> str:
        return self.message


class AliasEventInfo(Result):
    alias: str
    from_version: int | None
    to_version: int | None
    kind: AliasEventKind = Field(description="observed = moved outside this server (e.g. by a notebook), noticed later")
    at: datetime
    actor: str
    reason: str | None


class ModelHistory(Result):
    model: str
    aliases: dict[str, int]
    events: list[AliasEventInfo] = Field(description="newest first")
    versions: list[int] = Field(description="all version numbers, newest first")

    def describe(self) -> str:
        lines = [f"'{self.model}' aliases now: {', '.join(f'{a} -> v{v}' for a, v in sorted(self.aliases.items())) or 'none'}."]
        for e in self.events[:15]:
            def where(v: int | None) -> str:
                return "nowhere" if v is None else f"v{v}"

            lines.append(
                f"- {e.at:%Y-%m-%d %H:%M} UTC {e.alias}: {where(e.from_version)} -> {where(e.to_version)} ({e.kind}, {e.actor})"
                + (f": {e.reason}" if e.reason else "")
            )
        return "\n".join(lines)


class MetricRow(Result):
    metric: str
    a: float | None
    b: float | None
    diff: float | None = Field(description="b - a")


class Comparison(Result):
    model: str
    version_a: int
    version_b: int
    training_metrics: list[MetricRow]
    dataset: str | None
    n_rows: int | None
    dataset_metrics: list[MetricRow] | None = Field(description="both versions evaluated now on `dataset`")

    def describe(self) -> str:
        def rows(items: list[MetricRow]) -> str:
            return "; ".join(f"{r.metric} {r.a if r.a is None else f'{r.a:.4g}'} -> {r.b if r.b is None else f'{r.b:.4g}'}" for r in items)

        text = f"'{self.model}' v{self.version_a} vs v{self.version_b}. Training: {rows(self.training_metrics)}."
        if self.dataset_metrics is not None:
            text += f" On {self.dataset} ({self.n_rows:,} rows): {rows(self.dataset_metrics)}. For significance: run_ab_test."
        return text
