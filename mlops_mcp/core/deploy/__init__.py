"""Scaling serving out on Ray Serve (issue 17): scaling checks, the Serve application, the Ray
connection, status and undeploy, and the KubeRay export. Ray itself is an optional extra
(``mlops-mcp[serve]``) imported only when a deployment tool is used."""

from mlops_mcp.core.deploy.config import ScalingSpec

__all__ = ["ScalingSpec"]
