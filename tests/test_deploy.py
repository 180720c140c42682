"""Deployments (issue 17), the parts that need no running Ray: bad input refused through a real MCP
client before Ray is touched, the dry run starting nothing, the install hint when Ray is missing,
and the KubeRay manifest checked against RayService's schema fields (and its Serve config against
Ray's own schema when the extra is installed)."""

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client

from mlops_mcp.core.config import Settings
from mlops_mcp.core.deploy.config import ScalingSpec
from mlops_mcp.server.app import build_server
from tests.helpers import copy_home, tool_error_text

pytestmark = pytest.mark.anyio


@pytest.fixture
def home(trained_home: Path, tmp_path: Path) -> Path:
    return copy_home(trained_home, tmp_path / "home")


@pytest.fixture
async def deploy_client(home: Path) -> Any:
    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    async with Client(server) as c:
        yield c
    server.ops.close()


async def test_scaling_errors_name_the_argument(deploy_client: Client, home: Path) -> None:
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", "min_replicas": 3, "max_replicas": 2})
    text = tool_error_text(r)
    assert "min_replicas" in text and "max_replicas" in text
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", "max_replicas": 1, "target_ongoing_requests": 8})
    assert "target_ongoing_requests" in tool_error_text(r)
    for bad in ({"min_replicas": 0}, {"cpus_per_replica": 0}, {"upscale_delay_s": -1}, {"max_replicas": 10_000}):
        r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", **bad})
        assert next(iter(bad)) in tool_error_text(r)
    assert not (home / "ray").exists()  # nothing was started


async def test_more_than_one_replica_on_sqlite_is_refused(deploy_client: Client) -> None:
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", "max_replicas": 2, "confirm": True})
    text = tool_error_text(r)
    assert "max_replicas" in text and "SQLite" in text and "PostgreSQL" in text.replace("postgresql", "PostgreSQL")


async def test_unknown_model_and_no_champion(deploy_client: Client, home: Path) -> None:
    r = await deploy_client.call_tool("deploy_model", {"model": "nope", "max_replicas": 1})
    assert "nope" in tool_error_text(r)
    ops = MLOpsFor(home)
    ops.registry.ensure_model("bare")
    ops.close()
    r = await deploy_client.call_tool("deploy_model", {"model": "bare", "max_replicas": 1, "confirm": True})
    text = tool_error_text(r)
    assert "champion" in text and "set_model_alias" in text


async def test_ray_missing_gives_the_install_hint(deploy_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what the import system reports without the extra
    for tool, args in (("deploy_model", {"model": "nba-win", "max_replicas": 1}), ("list_deployments", {}),
                       ("get_deployment", {"model": "nba-win"})):
        r = await deploy_client.call_tool(tool, args)
        assert 'install "mlops-mcp[serve]"' in tool_error_text(r), tool


async def test_dry_run_and_reads_start_nothing(deploy_client: Client, home: Path) -> None:
    pytest.importorskip("ray.serve", reason='needs the serve extra: pip install "mlops-mcp[serve]"')
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", "max_replicas": 1})
    assert not r.is_error, r.content
    out = r.structured_content
    assert out["action"] == "dry_run" and out["confirmed"] is False
    assert "Nothing changed" in out["message"] and "new local Ray head" in out["message"]
    # without max_replicas, the embedded SQLite store gets what it can serve (1), not a refusal of the default
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win"})
    assert not r.is_error, r.content
    assert r.structured_content["planned"]["max_replicas"] == 1 and r.structured_content["action"] == "dry_run"
    r = await deploy_client.call_tool("list_deployments", {})
    assert r.structured_content["deployments"] == [] and r.structured_content["ray_address"] is None
    r = await deploy_client.call_tool("get_deployment", {"model": "nba-win"})
    assert "not deployed" in tool_error_text(r)
    r = await deploy_client.call_tool("undeploy_model", {"model": "nba-win", "confirm": True})
    assert "not deployed" in tool_error_text(r)
    assert not (home / "ray").exists()


# -- KubeRay ------------------------------------------------------------------------------------
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
POD_TEMPLATE = {
    "type": "object",
    "required": ["spec"],
    "properties": {"spec": {"type": "object", "required": ["containers"], "properties": {"containers": {
        "type": "array", "minItems": 1,
        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "image": {"type": "string"}}},
    }}}},
}
#: the RayService (ray.io/v1) fields the manifest uses, with their types and required keys as in
#: KubeRay's CRD (ray-operator/config/crd/bases/ray.io_rayservices.yaml); unknown keys are refused
RAYSERVICE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "metadata": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}, "labels": STRING_MAP,
        }},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "serveConfigV2": {"type": "string"},
                "rayClusterConfig": {
                    "type": "object",
                    "required": ["headGroupSpec"],
                    "additionalProperties": False,
                    "properties": {
                        "rayVersion": {"type": "string"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "headGroupSpec": {
                            "type": "object", "required": ["template"], "additionalProperties": False,
                            "properties": {"rayStartParams": STRING_MAP, "template": POD_TEMPLATE},
                        },
                        "workerGroupSpecs": {"type": "array", "items": {
                            "type": "object", "required": ["groupName", "template"], "additionalProperties": False,
                            "properties": {
                                "groupName": {"type": "string"},
                                "replicas": {"type": "integer", "minimum": 0},
                                "minReplicas": {"type": "integer", "minimum": 0},
                                "maxReplicas": {"type": "integer", "minimum": 0},
                                "rayStartParams": STRING_MAP,
                                "template": POD_TEMPLATE,
                            },
                        }},
                    },
                },
            },
        },
    },
}


def test_kuberay_export_matches_rayservice_fields(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema

    from mlops_mcp.server.cli import main

    monkeypatch.setenv("MLOPS_HOME", str(home))
    out = tmp_path / "rayservice.yaml"
    assert main(["deploy", "nba-win", "--export", "kuberay", "--output", str(out), "--min", "2", "--max", "6",
                 "--cpus", "0.5", "--upscale-delay", "10", "--max-ongoing", "8", "--target-ongoing", "3"]) == 0
    doc = yaml.safe_load(out.read_text())
    jsonschema.validate(doc, RAYSERVICE_SCHEMA)
    serve = yaml.safe_load(doc["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    assert app["route_prefix"] == "/v1/models/nba-win" and app["args"] == {"model": "nba-win"}
    (deployment,) = app["deployments"]
    assert deployment["max_ongoing_requests"] == 8 and deployment["ray_actor_options"] == {"num_cpus": 0.5}
    expected = ScalingSpec(min_replicas=2, max_replicas=6, cpus_per_replica=0.5, upscale_delay_s=10,
                           max_ongoing_requests=8, target_ongoing_requests=3).autoscaling_config()
    assert deployment["autoscaling_config"] == expected
    workers = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert workers["minReplicas"] <= workers["replicas"] <= workers["maxReplicas"]
    assert workers["maxReplicas"] * 2 >= 6 * 0.5  # room for max_replicas at cpus_per_replica
    assert "MLOPS_DATABASE_URL" not in doc["spec"]["serveConfigV2"]  # secrets come from a Secret, not the manifest
    schema = pytest.importorskip("ray.serve.schema", reason='Serve config check needs "mlops-mcp[serve]"')
    schema.ServeDeploySchema.model_validate(serve)  # Ray's own schema for serveConfigV2


def test_kuberay_export_refuses_bad_scaling(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_mcp.server.cli import main

    monkeypatch.setenv("MLOPS_HOME", str(home))
    assert main(["deploy", "nba-win", "--export", "kuberay", "--min", "5", "--max", "2"]) == 2
    assert "min_replicas" in capsys.readouterr().err
    assert main(["deploy", "ghost", "--export", "kuberay", "--max", "1"]) == 2
    assert "ghost" in capsys.readouterr().err


def MLOpsFor(home: Path) -> Any:
    from mlops_mcp.core.engine import MLOps

    return MLOps(Settings(home=home, _env_file=None))  # type: ignore[call-arg]


async def test_ray_that_cannot_be_reached_is_a_clear_error(deploy_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray.serve", reason='needs the serve extra: pip install "mlops-mcp[serve]"')
    from tests.helpers import free_port

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")  # nothing listens there
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", "max_replicas": 1, "confirm": True})
    text = tool_error_text(r)
    assert "cannot reach the Ray cluster" in text and "RAY_ADDRESS" in text and "refused" in text.lower()
    r = await deploy_client.call_tool("get_model", {"model": "nba-win"})  # the server keeps serving
    assert not r.is_error


async def test_elicitation_names_what_would_be_deployed(home: Path) -> None:
    pytest.importorskip("ray.serve", reason='needs the serve extra: pip install "mlops-mcp[serve]"')
    from mcp.types import ElicitResult

    asked: list[str] = []

    async def decline(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="decline")

    server = build_server(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    try:
        async with Client(server, elicitation_callback=decline, mode="legacy") as c:
            r = await c.call_tool("deploy_model", {"model": "nba-win", "max_replicas": 1, "cpus_per_replica": 0.5})
            assert not r.is_error, r.content
            assert r.structured_content["action"] == "dry_run" and "decline" in r.structured_content["message"]
            # a refused request is reported by the tool, not by the question
            r = await c.call_tool("deploy_model", {"model": "ghost", "max_replicas": 1})
            assert "ghost" in tool_error_text(r)
    finally:
        server.ops.close()
    assert len(asked) == 1 and "nba-win" in asked[0] and "0.5 CPU" in asked[0] and asked[0].endswith("?")
    assert not (home / "ray").exists()


async def test_ray_that_fails_to_start_gives_its_reason(deploy_client: Client, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray.serve", reason='needs the serve extra: pip install "mlops-mcp[serve]"')
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", "/proc/no-such-folder")  # Ray cannot make its session folder there
    r = await deploy_client.call_tool("deploy_model", {"model": "nba-win", "max_replicas": 1, "cpus_per_replica": 0.5, "confirm": True})
    text = tool_error_text(r)
    assert "Ray did not start" in text and "/proc/no-such-folder" in text, text
    assert not (home / "ray" / "head.json").exists()
    r = await deploy_client.call_tool("list_deployments", {})  # the server keeps serving
    assert not r.is_error and r.structured_content["deployments"] == []
