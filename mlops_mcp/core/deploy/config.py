"""A deployment's scaling, checked before Ray sees it, and turned into Ray Serve's options.

The same :class:`ScalingSpec` feeds the live deployment (``app.py``), the status answers and the
KubeRay manifest (``kuberay.py``), so what a user asked for is what every place shows.
"""

from typing import Any

from pydantic import BaseModel, Field, model_validator

from mlops_mcp.core.errors import InvalidInput

#: bounds on what one deployment may ask for (a typo of 4000 replicas must not reach a cluster)
MAX_REPLICAS = 512
MAX_ONGOING = 10_000
MAX_DELAY_S = 86_400.0
MAX_CPUS = 64.0
#: Ray Serve's default averaging window; shorter when the upscale delay is shorter (see ``look_back_period_s``)
RAY_LOOK_BACK_S = 30.0
#: max_replicas when none is given (on a PostgreSQL store; MLOps.default_max_replicas gives 1 on SQLite)
DEFAULT_MAX_REPLICAS = 4
#: Ray requires the window to exceed its (deprecated, fixed) 10 s metrics interval
MIN_LOOK_BACK_S = 11.0


class ScalingSpec(BaseModel):
    """Replicas and autoscaling of one deployment (the arguments of ``deploy_model``)."""

    min_replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS, description="replicas kept running even when idle")
    max_replicas: int = Field(default=DEFAULT_MAX_REPLICAS, ge=1, le=MAX_REPLICAS, description="most replicas the autoscaler may start")
    target_ongoing_requests: float = Field(
        default=2.0, gt=0, le=MAX_ONGOING, description="requests in flight per replica the autoscaler aims at"
    )
    upscale_delay_s: float = Field(default=30.0, ge=0, le=MAX_DELAY_S, description="load must last this long before adding replicas")
    downscale_delay_s: float = Field(
        default=600.0, ge=0, le=MAX_DELAY_S, description="load must stay low this long before removing replicas"
    )
    max_ongoing_requests: int = Field(default=5, ge=1, le=MAX_ONGOING, description="requests one replica takes at once; more wait")
    cpus_per_replica: float = Field(default=1.0, gt=0, le=MAX_CPUS, description="CPUs Ray reserves for each replica")

    @model_validator(mode="after")
    def _consistent(self) -> "ScalingSpec":
        if self.min_replicas > self.max_replicas:
            raise InvalidInput(
                f"min_replicas ({self.min_replicas}) is more than max_replicas ({self.max_replicas}); "
                "give min_replicas <= max_replicas",
                argument="min_replicas",
            )
        if self.target_ongoing_requests > self.max_ongoing_requests:
            raise InvalidInput(
                f"target_ongoing_requests ({self.target_ongoing_requests:g}) is more than max_ongoing_requests "
                f"({self.max_ongoing_requests}): a replica could never be that busy, so the autoscaler would never "
                "add one; give target_ongoing_requests <= max_ongoing_requests",
                argument="target_ongoing_requests",
            )
        return self

    @classmethod
    def checked(cls, **values: Any) -> "ScalingSpec":
        """Validated like the tool's schema, with pydantic's errors turned into ``InvalidInput``
        naming the argument (for library and CLI callers, which have no schema in front)."""
        from pydantic import ValidationError

        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            ctx = first.get("ctx") or {}
            if isinstance(ctx.get("error"), InvalidInput):
                raise ctx["error"] from None
            argument = str(first["loc"][0]) if first["loc"] else None
            given = f" (given {first['input']!r})" if "input" in first else ""
            raise InvalidInput(f"{first['msg']}{given}", argument=argument) from None

    @property
    def look_back_period_s(self) -> float:
        """Window over which Ray averages the load: Ray's 30 s, but no longer than the upscale delay
        (a 5 s delay averaged over 30 s would react late), and above the 11 s floor Ray accepts."""
        return max(MIN_LOOK_BACK_S, min(RAY_LOOK_BACK_S, self.upscale_delay_s))

    def autoscaling_config(self) -> dict[str, Any]:
        """Ray Serve's ``autoscaling_config`` (the same keys in a RayService manifest)."""
        return {
            "min_replicas": self.min_replicas,
            "initial_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
            "look_back_period_s": self.look_back_period_s,
        }

    def deployment_options(self) -> dict[str, Any]:
        """``Deployment.options(...)`` keywords: autoscaling, concurrency and CPUs."""
        return {
            "autoscaling_config": self.autoscaling_config(),
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.cpus_per_replica},
        }
