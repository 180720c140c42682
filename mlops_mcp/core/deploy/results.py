"""Typed results of the deployment tools (Ray Serve): small, a summary first."""

from typing import Literal

from pydantic import Field

from mlops_mcp.core.deploy.config import ScalingSpec
from mlops_mcp.core.results import Result


class TrafficStats(Result):
    """Recent traffic of a model, from the shared prediction log (every replica writes there; the
    built-in route's requests for the same model count too)."""

    window_s: float = Field(description="how far back, in seconds")
    requests: int = Field(description="requests answered in the window")
    predictions: int = Field(description="rows predicted in the window")
    requests_per_s: float
    latency_p50_ms: float | None = Field(description="median request latency inside the engine, in ms")
    latency_p99_ms: float | None


class DeploymentInfo(Result):
    model: str
    application: str = Field(description="the Ray Serve application name")
    status: str = Field(description="Ray Serve's application status: DEPLOYING, RUNNING, DEPLOY_FAILED, UNHEALTHY, DELETING")
    url: str | None = Field(description="where applications POST predictions")
    replicas_running: int
    replicas_target: int | None = Field(description="what the autoscaler currently wants")
    scaling: ScalingSpec
    champion_version: int | None = Field(description="the version the 'champion' alias points at now (served on the next request)")
    traffic: TrafficStats | None = None
    ray_address: str
    message: str = ""

    def describe(self) -> str:
        target = "?" if self.replicas_target is None else self.replicas_target
        text = (
            f"'{self.model}' on Ray Serve: {self.status}, replicas {self.replicas_running} running / {target} target "
            f"(min {self.scaling.min_replicas}, max {self.scaling.max_replicas}); POST {self.url}."
        )
        if self.traffic is not None and self.traffic.requests:
            text += f" Last {self.traffic.window_s:g} s: {self.traffic.requests_per_s:.3g} req/s, p50 {self.traffic.latency_p50_ms} ms."
        return text + (f" {self.message}" if self.message else "")


class DeploymentList(Result):
    ray_address: str | None = Field(description="the Ray cluster asked (null: none is running, so nothing is deployed)")
    deployments: list[DeploymentInfo]

    def describe(self) -> str:
        if not self.deployments:
            return "No model is deployed on Ray Serve." if self.ray_address else "No Ray cluster is running: nothing is deployed."
        return f"{len(self.deployments)} deployment(s): " + "; ".join(
            f"{d.model} ({d.status}, {d.replicas_running} replica(s))" for d in self.deployments
        )


class DeployResult(Result):
    model: str
    action: Literal["deployed", "updated", "unchanged", "dry_run"]
    confirmed: bool
    previous: ScalingSpec | None = Field(default=None, description="the scaling before an update")
    planned: ScalingSpec | None = Field(default=None, description="on a dry run, the scaling confirming would apply")
    deployment: DeploymentInfo | None = None
    message: str

    def describe(self) -> str:
        return self.message


class UndeployResult(Result):
    model: str
    undeployed: bool
    confirmed: bool
    ray_stopped: bool = Field(default=False, description="the local Ray head was stopped (it served nothing else)")
    message: str

    def describe(self) -> str:
        return self.message
