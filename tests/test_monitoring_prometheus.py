"""deploy/ against a real Prometheus: promtool checks the scrape config and the rules and runs the
rules' unit tests; Prometheus (on loopback) scrapes an HTTP server this test drives through the
MCP client and the REST route; then every PromQL expression of the Grafana dashboard must return
data, and the drift alert must fire after a drifted check. Grafana cannot run here: the
dashboard's structure is checked, and that its queries are exactly those executed.

Needs Debian's ``prometheus`` package (``prometheus`` and ``promtool``); ``.ci/run`` installs it.
"""

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import anyio
import httpx
import pandas as pd
import pytest
from mcp import Client

from mlops_mcp.core.monitoring.alerts import RULES, rules_yaml
from mlops_mcp.core.monitoring.exposition import METRICS
from tests.helpers import EXCLUDE, HttpServer, copy_home, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mlops-mcp.json"
PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    not (PROMETHEUS and PROMTOOL),
    reason="needs Debian's 'prometheus' package (the prometheus and promtool commands): apt-get install prometheus",
)
MODEL = "nba-win"
#: what the test gives Grafana's variables and intervals when it runs the dashboard's queries
VARIABLES = {"$model": MODEL, "$version": "1", "$alias": "challenger", "$__rate_interval": "30s", "$__interval": "5m", "$__range": "5m"}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(dash: dict[str, Any]) -> list[str]:
    """Every PromQL expression Grafana would run: panel targets and annotations."""
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
    return exprs


def substitute(expr: str) -> str:
    for key in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(key, VARIABLES[key])
    return expr


def test_rules_file_is_generated_from_the_code() -> None:
    """deploy/prometheus/rules.yml is the code's rules (get_model_health checks the same conditions)."""
    assert (DEPLOY / "prometheus" / "rules.yml").read_text() == rules_yaml()
    for rule in RULES:
        assert re.search(r"get_\w+|check_drift|rollback_model|predict", rule.runbook), f"{rule.name}: the runbook names a tool"


def test_dashboard_structure() -> None:
    dash = dashboard()
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"] and dash["__inputs"][0]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"DS_PROMETHEUS", "model", "version", "alias"} <= set(variables)
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    for topic in ("Traffic", "Latency", "Errors", "quality", "Labels", "Drift", "Aliases", "A/B", "Retraining"):
        assert any(topic in r for r in rows), f"no row for {topic}"
    assert any("alias" in a["name"].lower() for a in dash["annotations"]["list"] if "expr" in a)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    known = {m.name for m in METRICS}
    histograms = {m.name for m in METRICS if m.kind == "histogram"}
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}" and p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
            for name in re.findall(r"\b(mlops_[a-z_]+)", t["expr"]):
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                assert name in known or (base in histograms and name != base), f"{p['title']}: unknown metric {name}"
    for q in (0.5, 0.95, 0.99):  # latency percentiles come from the 1 ms .. 2.5 s histogram
        assert any(f"histogram_quantile({q}, sum by (le) (rate(mlops_prediction_latency_seconds_bucket" in e for e in dashboard_queries(dash))


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@needs_prometheus
def test_promtool_checks_the_shipped_files() -> None:
    assert "SUCCESS" in run(PROMTOOL, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))  # type: ignore[arg-type]
    assert "SUCCESS: 5 rules found" in run(PROMTOOL, "check", "rules", str(DEPLOY / "prometheus" / "rules.yml"))  # type: ignore[arg-type]
    assert "SUCCESS" in run(PROMTOOL, "test", "rules", "rules.test.yml", cwd=DEPLOY / "prometheus")  # type: ignore[arg-type]


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {DEPLOY / 'prometheus' / 'rules.yml'}\n"
            "scrape_configs:\n  - job_name: mlops-mcp\n    metrics_path: /metrics\n    scrape_timeout: 1s\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        run(PROMTOOL, "check", "config", str(self.config))  # type: ignore[arg-type]
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={workdir / 'data'}",  # type: ignore[list-item]
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        r.raise_for_status()
        return r.json()["data"]

    def wait_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                targets = self.api("targets")["activeTargets"]
                if targets and targets[0]["health"] == "up":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"Prometheus never scraped the server: {self.api('targets')}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def feature_rows(home: Path, start: int, n: int) -> tuple[list[dict[str, Any]], list[int]]:
    recent = pd.read_parquet(home / "data" / "nba" / "recent.parquet")
    features = [c for c in recent.columns if c not in [*EXCLUDE, "home_win"]]
    part = recent.iloc[start : start + n]
    return part[features].to_dict("records"), part["home_win"].astype(int).tolist()


@needs_prometheus
@pytest.mark.anyio
async def test_dashboard_queries_and_drift_alert_on_a_real_prometheus(trained_home: Path, tmp_path: Path) -> None:
    home = copy_home(trained_home, tmp_path / "home")
    server = HttpServer(home)
    prom = None
    try:
        server.wait_ready()
        prom = Prometheus(tmp_path, f"127.0.0.1:{server.port}")
        prom.wait_up()
        async with Client(f"{server.url}/mcp") as c, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            first = await c.call_tool("check_drift", {"model": MODEL, "dataset": "nba/train.parquet"})
            assert not first.is_error and first.structured_content["drift_detected"] is False
            for call, args in (("start_shadow", {"model": MODEL, "variant": "challenger"}),
                               ("start_ab_test", {"model": MODEL, "traffic_split": 0.5})):
                r = await c.call_tool(call, args)
                assert not r.is_error, r.content
            ids: list[str] = []
            truth: list[int] = []
            for i in range(6):  # demo traffic over a few seconds, so that rates have samples
                rows, ys = feature_rows(home, 40 * i, 40)
                r = await http.post(f"/v1/models/{MODEL}/predict", json={"rows": rows, "request_keys": [f"k{40 * i + j}" for j in range(40)]})
                assert r.status_code == 200, r.text
                ids += [p["prediction_id"] for p in r.json()["predictions"]]
                truth += ys
                await anyio.sleep(0.4)
            bad = await http.post(f"/v1/models/{MODEL}/predict", json={"rows": [{"pace": 1.0}]})
            assert bad.status_code == 422
            r = await c.call_tool("predict", {"model": MODEL, "rows": feature_rows(home, 0, 5)[0]})
            assert not r.is_error
            r = await c.call_tool("log_feedback", {"items": [{"prediction_id": p, "actual": y} for p, y in zip(ids, truth)]})
            assert not r.is_error and r.structured_content["logged"] == len(ids)
            r = await c.call_tool("set_model_alias", {"model": MODEL, "alias": "challenger", "version": 1, "confirm": True})
            assert not r.is_error, r.content
            r = await c.call_tool("start_retraining", {"model": MODEL, "reason": "dashboard test", "dataset": "nba/train.parquet",
                                                       "use_feedback": False, "estimator": "logistic_regression"})
            assert not r.is_error, r.content
            r = await c.call_tool("check_drift", {"model": MODEL, "dataset": "nba/recent.parquet", "drift_share": 0.2})
            assert not r.is_error and r.structured_content["drift_detected"] is True
            for _ in range(3):
                await c.call_tool("get_model_health", {"model": MODEL})
                await anyio.sleep(0.5)

        metrics = httpx.get(f"{server.url}/metrics", timeout=10)
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        lint = subprocess.run([PROMTOOL, "check", "metrics"], check=False, input=metrics.text, capture_output=True, text=True, timeout=30)  # type: ignore[list-item]
        assert lint.returncode == 0, f"promtool check metrics: {lint.stdout}{lint.stderr}"

        # the drift alert fires (evaluated every second; `for: 0m`)
        deadline = time.monotonic() + 30
        firing: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            firing = [a for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == "MLOpsDriftDetected" and a["state"] == "firing"]
            if firing:
                break
            await anyio.sleep(0.5)
        assert firing, f"MLOpsDriftDetected never fired: {prom.api('alerts')}"
        assert firing[0]["labels"]["model"] == MODEL and firing[0]["labels"]["severity"] == "warning"
        assert "check_drift(model='nba-win'" in firing[0]["annotations"]["runbook"]

        # every query of the dashboard returns data
        dash = dashboard()
        pending = {e: substitute(e) for e in dashboard_queries(dash)}
        exempt: set[str] = set()
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            for expr, query in list(pending.items()):
                if expr not in exempt and prom.api("query", query=query)["result"]:
                    del pending[expr]
            if set(pending) <= exempt:
                break
            await anyio.sleep(1)
        assert set(pending) <= exempt, "dashboard queries without data:\n" + "\n".join(sorted(set(pending) - exempt))
        for var in ("model", "version", "alias"):
            definition = next(v for v in dash["templating"]["list"] if v["name"] == var)["definition"]
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", definition).groups()  # type: ignore[union-attr]
            values = prom.api(f"label/{label}/values", **{"match[]": substitute(metric)})
            assert values, f"variable {var} has no values"
        assert MODEL in prom.api("label/model/values", **{"match[]": "mlops_model_info"})
    finally:
        if prom is not None:
            prom.stop()
        server.stop()


def test_queries_are_parsed_as_urls() -> None:
    """The substituted queries are plain PromQL (no Grafana variable left)."""
    for expr in dashboard_queries(dashboard()):
        query = substitute(expr)
        assert "$" not in query, query
        assert urllib.parse.quote(query)
