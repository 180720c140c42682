"""Typed results of the retraining capability (tools and resources return these as they are)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops_mcp.core.results import Result

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "rejected_by_gate"]


class TaskView(BaseModel):
    """The job as an MCP task (2025-11-25 ``Task``) would carry it, ready for the SDK's tasks runtime:
    queued/running -> working, succeeded/rejected_by_gate -> completed, failed, cancelled."""

    model_config = ConfigDict(defer_build=True)

    task_id: str
    status: Literal["working", "input_required", "completed", "failed", "cancelled"]
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl: int | None = None
    poll_interval: int | None = Field(default=None, description="ms to wait between polls while working")


class GateCheck(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    check: str = Field(description="floor | min_absolute_change | min_relative_change | significantly_better | non_inferior | guardrail")
    metric: str
    passed: bool
    challenger: float | None = None
    champion: float | None = None
    threshold: float | None = Field(default=None, description="the bound, margin, tolerance or alpha the check used")
    detail: str
    p_value: float | None = None
    test: str | None = None
    diff: float | None = Field(default=None, description="challenger - champion")
    ci_low: float | None = None
    ci_high: float | None = None


class GateVerdict(BaseModel):
    model_config = ConfigDict(defer_build=True)

    passed: bool
    verdict: Literal["passed", "rejected"]
    summary: str
    metric: str = Field(description="the primary metric")
    checks: list[GateCheck]
    test: dict[str, Any] | None = Field(default=None, description="run_ab_test's paired comparison on the holdout (b = challenger)")
    challenger_metrics: dict[str, float] = Field(description="the challenger's own metrics on the holdout")
    holdout: dict[str, Any]
    training_overlap: dict[str, Any] | None = Field(default=None, description="held-out rows found among each version's training rows")
    gate: dict[str, Any] = Field(description="the gate configuration used")
    note: str | None = None


class RetrainingJob(Result):
    job_id: int
    model: str
    status: JobStatus
    stage: str = Field(description="queued, starting, assembling_data, training, registering, gating, after_gate, done")
    percent: float
    message: str | None = None
    trigger: Literal["manual", "drift", "decay", "schedule"]
    reason: str | None = None
    requested_by: str
    triggers: int = Field(description="triggers folded into this job (a storm of triggers makes one job)")
    champion_version: int | None = Field(description="the champion the job compared with (pinned at start)")
    new_version: int | None = None
    options: dict[str, Any] = Field(description="dataset, use_feedback, since, estimator, params, gate, after_gate, ...")
    data: dict[str, Any] | None = Field(default=None, description="data window and row counts")
    gate: GateVerdict | None = None
    after_gate: dict[str, Any] | None = Field(default=None, description="what happened after the gate")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    error: str | None = None
    cancel_requested: bool = False
    worker: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    task: TaskView

    def describe(self) -> str:
        text = f"Retraining job {self.job_id} ({self.model}, {self.trigger}): {self.status}"
        if self.status in ("queued", "running"):
            text += f", stage {self.stage} {self.percent:.0f}%"
        if self.message:
            text += f". {self.message}"
        if self.error and self.error not in (self.message or ""):
            text += f" Error: {self.error}"
        if self.status in ("queued", "running"):
            text += f" Follow with get_retraining_job(job_id={self.job_id})."
        return text


class RetrainingJobSummary(BaseModel):
    model_config = ConfigDict(defer_build=True)

    job_id: int
    model: str
    status: JobStatus
    stage: str
    percent: float
    trigger: str
    reason: str | None = None
    new_version: int | None = None
    champion_version: int | None = None
    verdict: str | None = None
    message: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class RetrainingJobList(Result):
    jobs: list[RetrainingJobSummary]
    count: int

    def describe(self) -> str:
        if not self.jobs:
            return "No retraining jobs."
        lines = [f"{self.count} retraining job(s), newest first:"]
        for j in self.jobs[:20]:
            version = f" -> v{j.new_version}" if j.new_version else ""
            lines.append(f"- {j.job_id} {j.model} [{j.trigger}] {j.status}{version}" + (f" ({j.verdict})" if j.verdict else ""))
        return "\n".join(lines)


class RetrainingStarted(Result):
    job_id: int
    status: JobStatus
    model: str
    message: str
    job: RetrainingJob

    def describe(self) -> str:
        return self.message


class RetrainingPolicy(Result):
    model: str
    enabled: bool
    task: str | None = None
    on_drift: bool
    drift_share: float | None = None
    on_decay: bool
    metric: str | None = None
    max_drop: float | None = None
    schedule: str | None = None
    next_run: datetime | None = Field(default=None, description="next scheduled retraining (UTC)")
    min_new_labels: int
    cooldown: str
    cooldown_seconds: float
    gate: dict[str, Any]
    after_gate: str
    auto_promote: bool
    updated_at: datetime
    updated_by: str
    last_trigger: dict[str, Any] | None = Field(default=None, description="the last time the policy fired, and what came of it")

    def describe(self) -> str:
        fires = [w for w, on in (("drift", self.on_drift), ("decay", self.on_decay)) if on]
        if self.schedule:
            fires.append(f"schedule '{self.schedule}' (next {self.next_run:%Y-%m-%d %H:%M} UTC)" if self.next_run else f"schedule '{self.schedule}'")
        state = "enabled" if self.enabled else "DISABLED"
        return (
            f"Retraining policy of '{self.model}' ({state}): fires on {', '.join(fires) or 'manual calls only'}; "
            f"cooldown {self.cooldown}; gate requires {self.gate.get('require', 'better')} on "
            f"{self.gate.get('metric') or 'the default metric'} at alpha {self.gate.get('alpha')}; after the gate: "
            f"{self.after_gate}" + (" (auto_promote)" if self.auto_promote else "") + "."
        )


class CancelResult(Result):
    job_id: int
    model: str
    status: JobStatus
    confirmed: bool
    cancelled: bool = Field(description="true when the job is cancelled (or its cancel is under way)")
    message: str

    def describe(self) -> str:
        return self.message


class ModelRetraining(Result):
    model: str
    policy: RetrainingPolicy | None
    active_job_id: int | None
    jobs: list[RetrainingJobSummary]

    def describe(self) -> str:
        policy = self.policy.describe() if self.policy else f"'{self.model}' has no retraining policy."
        return f"{policy} {len(self.jobs)} recent job(s)" + (f"; job {self.active_job_id} active" if self.active_job_id else "") + "."


class PolicyEvaluation(Result):
    evaluated: int
    fired: list[dict[str, Any]]
    seconds: float

    def describe(self) -> str:
        return f"Evaluated {self.evaluated} retraining policies in {self.seconds:.3f} s; {len(self.fired)} fired."
