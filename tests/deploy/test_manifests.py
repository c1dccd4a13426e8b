"""deploy/k8s: the kustomize base and the example overlay render, validate against the
Kubernetes schemas, and agree with the code: real settings, real metrics, the image's user,
the repository's rules, and the RBAC table of docs/deployment.md."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from responder.engine.recording import _APPROVAL_EVENT
from responder.metrics import Metrics
from responder.models.runs import RunState, SkipReason, StepState
from responder.settings import SETTING_GROUPS, Settings
from responder.web import keys
from responder.web.app import create_app
from responder.web.identities import load_approvers
from tests.support.paths import REPO

DEPLOY = REPO / "deploy" / "k8s"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "example"
KUBERNETES_VERSION = "1.33.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}  # no schema in kubernetes-validate
ENV_FILES = ("store.env", "auth.env")
Doc = dict[str, Any]


# ---------------------------------------------------------------- helpers


def load_docs(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubectl() -> str:
    """kubectl's path; skipped without it, except under CI=true where that is a failure."""
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is required under CI=true to render deploy/k8s")
        pytest.skip("kubectl not installed: kustomize rendering not checked")
    return found


def kustomize(directory: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize DIR`: local only (no kubeconfig, so no server is ever contacted)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    return subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def overlay_with_secrets(tmp_path: Path) -> Path:
    """A copy of deploy/ with the two .env files made from their examples, as the docs say."""
    copy = tmp_path / "deploy"
    shutil.copytree(REPO / "deploy", copy, ignore=shutil.ignore_patterns(*ENV_FILES))
    overlay = copy / "k8s" / "overlays" / "example"
    for name in ENV_FILES:
        shutil.copyfile(overlay / f"{name}.example", overlay / name)
    return overlay


def render(directory: Path, tmp_path: Path) -> list[Doc]:
    result = kustomize(directory, tmp_path)
    assert result.returncode == 0, result.stderr
    return load_docs(result.stdout)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def manifest_files() -> list[Path]:
    """Every object file of deploy/k8s (not kustomizations, rules or the overlay's patch)."""
    skip = {"kustomization.yaml", "deployment-settings.yaml"}
    return sorted(
        p
        for p in DEPLOY.rglob("*.yaml")
        if p.name not in skip and "rules" not in p.relative_to(DEPLOY).parts
    )


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = one(docs, "Deployment", "responder")["spec"]["template"]["spec"]
    return spec


def container(docs: list[Doc]) -> Doc:
    containers = pod_spec(docs)["containers"]
    assert [c["name"] for c in containers] == ["responder"]
    found: Doc = containers[0]
    return found


@pytest.fixture(scope="module")
def base_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    return render(DEPLOY, tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def overlay_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    tmp = tmp_path_factory.mktemp("overlay")
    return render(overlay_with_secrets(tmp), tmp)


@pytest.fixture(scope="module")
def raw_docs() -> list[Doc]:
    return [doc for path in manifest_files() for doc in load_docs(path.read_text())]


# ---------------------------------------------------------------- rendering


def test_base_renders_every_part_and_deploy_k8s_is_the_base(
    base_docs: list[Doc], tmp_path: Path
) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in base_docs)
    assert kinds == sorted(
        [
            "ClusterRole/responder-flagd-configmap",
            "ClusterRole/responder-k8s-deployments",
            "ClusterRole/responder-k8s-diagnostics",
            "ClusterRole/responder-k8s-pod-delete",
            "ConfigMap/" + one(base_docs, "ConfigMap")["metadata"]["name"],
            "Deployment/responder",
            "NetworkPolicy/responder",
            "PodDisruptionBudget/responder",
            "PrometheusRule/responder",
            "Service/responder",
            "ServiceAccount/responder",
            "ServiceMonitor/responder",
        ]
    )
    assert render(BASE, tmp_path) == base_docs
    for doc in base_docs:
        if doc["kind"] != "ClusterRole":
            assert doc["metadata"]["namespace"] == "responder", doc["metadata"]["name"]


def test_overlay_renders_with_the_two_secrets_wired_into_the_deployment(
    overlay_docs: list[Doc],
) -> None:
    secrets = {d["metadata"]["name"]: d for d in overlay_docs if d["kind"] == "Secret"}
    assert sorted(re.sub(r"-[a-z0-9]{10}$", "", n) for n in secrets) == [
        "responder-auth",
        "responder-store",
    ]
    assert one(overlay_docs, "Namespace")["metadata"]["name"] == "responder"
    wanted = {}
    for entry in container(overlay_docs)["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            wanted[entry["name"]] = ref
            assert ref["name"] in secrets, f"{entry['name']} names a Secret the overlay lacks"
            if not ref.get("optional", False):
                assert ref["key"] in secrets[ref["name"]]["data"], entry["name"]
    assert sorted(wanted) == [
        "RESPONDER_APPROVER_TOKENS",
        "RESPONDER_DATABASE_URL",
        "RESPONDER_READER_TOKENS",
        "RESPONDER_REDIS_URL",
        "RESPONDER_SENTRY_CLIENT_SECRET",
        "RESPONDER_WEBHOOK_TOKEN",
    ]
    rules = one(overlay_docs, "ConfigMap")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod_spec(overlay_docs)["volumes"]}
    assert volumes["rules"]["configMap"]["name"] == rules
    image = container(overlay_docs)["image"]
    assert image == "registry.example.com/platform/responder:0.1.0"


def test_overlay_refuses_to_render_without_the_secret_files(tmp_path: Path) -> None:
    overlay = overlay_with_secrets(tmp_path)
    (overlay / "store.env").unlink()
    result = kustomize(overlay, tmp_path)
    assert result.returncode != 0
    assert "store.env" in result.stderr


# ---------------------------------------------------------------- schemas


def validate_crd(doc: Doc) -> None:
    """ServiceMonitor and PrometheusRule: kubernetes-validate has no CRD schemas, so the
    fields responder uses are checked here by structure (the expressions further below)."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    if doc["kind"] == "ServiceMonitor":
        assert set(doc["spec"]) == {"selector", "endpoints"}
        for endpoint in doc["spec"]["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
            for key in ("interval", "scrapeTimeout"):
                assert re.fullmatch(r"\d+[smh]", endpoint[key])
        return
    assert set(doc["spec"]) == {"groups"}
    names: set[str] = set()
    for group in doc["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert re.fullmatch(r"Responder[A-Z][A-Za-z]+", rule["alert"])
            assert rule["alert"] not in names, f"duplicate alert {rule['alert']}"
            names.add(rule["alert"])
            assert isinstance(rule["expr"], str)
            if "for" in rule:
                assert promql_parser.parse_duration(rule["for"]) >= timedelta(minutes=1)
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert set(rule["annotations"]) == {"summary", "description"}


def validate(doc: Doc) -> None:
    if doc["kind"] in CRD_KINDS:
        validate_crd(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_manifest_file_validates_against_the_kubernetes_schemas(
    raw_docs: list[Doc],
) -> None:
    assert [p.relative_to(DEPLOY).as_posix() for p in manifest_files()] == [
        "base/deployment.yaml",
        "base/networkpolicy.yaml",
        "base/poddisruptionbudget.yaml",
        "base/prometheusrule.yaml",
        "base/rbac.yaml",
        "base/service.yaml",
        "base/serviceaccount.yaml",
        "base/servicemonitor.yaml",
        "overlays/example/namespace.yaml",
        "overlays/example/rolebindings.yaml",
    ]
    for doc in raw_docs:
        validate(doc)


def test_rendered_objects_validate_against_the_kubernetes_schemas(
    base_docs: list[Doc], overlay_docs: list[Doc]
) -> None:
    for doc in [*base_docs, *overlay_docs]:
        validate(doc)


def test_the_schema_check_catches_a_misspelt_field(raw_docs: list[Doc]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(one(raw_docs, "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


# ---------------------------------------------------------------- the Deployment


def test_pod_runs_as_the_images_non_root_user_with_a_locked_down_context(
    overlay_docs: list[Doc],
) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert user is not None
    uid, gid = int(user.group(1)), int(user.group(2))
    pod = pod_spec(overlay_docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container(overlay_docs)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == uid
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container(overlay_docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert mounts.keys() == {"/tmp", "/etc/responder/rules"}  # nothing else is writable


def test_probes_replicas_and_ports_fit_together(overlay_docs: list[Doc]) -> None:
    deployment = one(overlay_docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    main = container(overlay_docs)
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]["memory"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    service = one(overlay_docs, "Service")
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(overlay_docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    assert 0 < pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    monitor = one(overlay_docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    policy = one(overlay_docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == labels
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [8080]
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 5432, 6379, 443, 6443} <= egress_ports
    grace = pod_spec(overlay_docs)["terminationGracePeriodSeconds"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert grace > float(env["RESPONDER_DRAIN_SECONDS"]) + 5  # preStop sleep + drain


def test_every_env_name_is_a_setting_and_the_values_load(
    overlay_docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("RESPONDER_"):
            monkeypatch.delenv(name)
    secrets = {
        **env_file(OVERLAY / "store.env.example"),
        **env_file(OVERLAY / "auth.env.example"),
    }
    for entry in container(overlay_docs)["env"]:
        name = entry["name"]
        assert name.startswith("RESPONDER_"), name
        assert name.removeprefix("RESPONDER_").lower() in SETTING_GROUPS, f"{name} is no setting"
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            monkeypatch.setenv(name, entry["value"])
        elif ref["key"] in secrets:
            monkeypatch.setenv(name, secrets[ref["key"]])
        else:
            assert ref.get("optional") is True, f"{name}: no {ref['key']} in the example"
    settings = Settings()
    assert settings.http.host_port == ("0.0.0.0", 8080)
    assert settings.store.database_url is not None
    assert settings.coordination.redis_url is not None
    assert settings.access.webhook_token is not None
    assert settings.store.migrate_on_start is True
    assert settings.rules.rules_dir == Path("/etc/responder/rules")
    assert sorted(a.name for a in load_approvers(settings)) == ["alice", "bob"]
    # What `serve` does first: load the mounted rules (here the ConfigMap's source files)
    # with the catalogue these settings allow; an error would stop the pod (`rules_invalid`).
    app = create_app(Settings(rules_dir=BASE / "rules"))
    assert app[keys.RULEBOOK].current.rules


def test_rolebindings_grant_base_roles_in_the_allowed_namespaces_only(
    overlay_docs: list[Doc],
) -> None:
    roles = {d["metadata"]["name"] for d in overlay_docs if d["kind"] == "ClusterRole"}
    bindings = [d for d in overlay_docs if d["kind"] == "RoleBinding"]
    assert not [d for d in overlay_docs if d["kind"] == "ClusterRoleBinding"]
    unused = {"responder-flagd-configmap"}  # bound where the flag ConfigMap is (rbac.yaml)
    assert {b["roleRef"]["name"] for b in bindings} == roles - unused
    env = {e["name"]: e.get("value") for e in container(overlay_docs)["env"]}
    allowed = set(env["RESPONDER_K8S_ALLOWED_NAMESPACES"].split(","))
    assert {b["metadata"]["namespace"] for b in bindings} == allowed
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "responder", "namespace": "responder"}
        ]


# ---------------------------------------------------------------- RBAC


def rbac_rules(docs: list[Doc]) -> set[tuple[str, str, str, frozenset[str]]]:
    """(role, apiGroup, resource, verbs) with the verbs of one resource merged."""
    merged: dict[tuple[str, str, str], set[str]] = {}
    for doc in docs:
        if doc["kind"] != "ClusterRole":
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    key = (doc["metadata"]["name"], group, resource)
                    merged.setdefault(key, set()).update(rule["verbs"])
    return {(*key, frozenset(verbs)) for key, verbs in merged.items()}


def test_rbac_is_least_privilege_and_each_rule_names_its_action(raw_docs: list[Doc]) -> None:
    for role, group, resource, verbs in rbac_rules(raw_docs):
        assert "*" not in verbs, role
        assert "*" not in resource, role
        assert group != "*", role
        assert not verbs & {"escalate", "bind", "impersonate", "watch", "deletecollection"}
        assert resource != "secrets", role
        if resource == "configmaps":
            assert verbs == {"get", "update"}
    for doc in raw_docs:
        for rule in doc.get("rules", []):
            if rule["apiGroups"] == [""] and "configmaps" in rule["resources"]:
                assert rule["resourceNames"] == ["feature-flags"]
    lines = (BASE / "rbac.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            comment = []
            for above in reversed(lines[:number]):
                if not above.strip().startswith("#"):
                    break
                comment.append(above)
            assert re.search(r"\b(k8s|feature_flag)\.[a-z_]+", " ".join(comment)), (
                f"rbac.yaml:{number + 1}: say which action needs this rule"
            )


def test_the_roles_grant_exactly_the_verbs_the_kubernetes_adapter_uses(
    raw_docs: list[Doc],
) -> None:
    """Every API call of responder/adapters/kubernetes/api.py (its `Op` names the RBAC verb,
    resource and group) is granted by some family, and nothing else is."""
    source = (REPO / "responder" / "adapters" / "kubernetes" / "api.py").read_text()
    used: set[tuple[str, str, str]] = set()
    for verb, resource, rest in re.findall(r'\bOp\("(\w+)", "([\w/]+)"([^)]*)\)', source):
        quoted = re.findall(r'"([\w.]*)"', rest)
        used.add((quoted[-1] if quoted else "", resource, verb))
    assert len(used) >= 10
    granted = {
        (group, resource, verb)
        for _, group, resource, verbs in rbac_rules(raw_docs)
        for verb in verbs
    }
    assert granted == used


def test_the_rbac_table_of_the_deployment_docs_matches_the_manifest(
    raw_docs: list[Doc],
) -> None:
    text = (REPO / "docs" / "deployment.md").read_text()
    section = text.split("## RBAC per action family", 1)[1].split("\n## ", 1)[0]
    documented: set[tuple[str, str, str, frozenset[str]]] = set()
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("responder-"):
            group = "" if cells[1] in ('""', "core") else cells[1]
            resource = cells[2].split()[0].strip("`")
            verbs = frozenset(v.strip() for v in cells[3].split(","))
            documented.add((cells[0], group, resource, verbs))
    assert documented == rbac_rules(raw_docs)


# ---------------------------------------------------------------- rules ConfigMap


def test_the_rules_configmap_is_an_exact_copy_of_the_repository_rules(
    base_docs: list[Doc],
) -> None:
    shipped = {
        p.name: p.read_text() for p in (REPO / "rules").iterdir() if p.suffix in {".yaml", ".yml"}
    }
    copied = {p.name: p.read_text() for p in (BASE / "rules").iterdir()}
    assert copied == shipped, (
        "deploy/k8s/base/rules/ must be a copy of rules/*.yaml: cp rules/*.yaml "
        "deploy/k8s/base/rules/ and list every file under configMapGenerator in "
        "deploy/k8s/base/kustomization.yaml (kustomize reads no file outside its directory)"
    )
    assert one(base_docs, "ConfigMap")["data"] == shipped


# ---------------------------------------------------------------- PrometheusRule


def exposed_metrics() -> dict[str, tuple[str, ...]]:
    """Every sample name responder exposes -> the labels of its metric."""
    metrics = Metrics.create()
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    exposed: dict[str, tuple[str, ...]] = {}
    for field in dataclasses.fields(metrics):
        metric = getattr(metrics, field.name)
        if isinstance(metric, MetricWrapperBase):
            for suffix in suffixes[str(metric._type)]:
                exposed[metric._name + suffix] = tuple(metric._labelnames)
    return exposed


LABEL_VALUES = {
    ("responder_steps_total", "outcome"): {s.value for s in StepState},
    ("responder_steps_total", "reason"): {r.value for r in SkipReason} | {""},
    ("responder_runs_total", "state"): {s.value for s in RunState},
    ("responder_approvals_total", "event"): set(_APPROVAL_EVENT.values()),
    ("responder_approvals_total", "reason"): {"rule", "storm_brake", ""},
    ("responder_webhook_rejected_total", "status"): {"400", "401", "413", "415", "503"},
    ("responder_rules_reloads_total", "outcome"): {"applied", "rejected", "unchanged"},
}


def selectors(expr: str) -> Iterator[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return iter(found)


def alert_rules(docs: list[Doc]) -> list[Doc]:
    rule = one(docs, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_every_alert_expression_parses_and_reads_real_metrics(raw_docs: list[Doc]) -> None:
    exposed = exposed_metrics()
    used: set[str] = set()
    for rule in alert_rules(raw_docs):
        for selector in selectors(rule["expr"]):
            name = selector.name
            assert name is not None, f"{rule['alert']}: select metrics by name"
            used.add(name)
            if name == "up":  # Prometheus's own per-target series
                continue
            assert name in exposed, f"{rule['alert']}: {name} is not in responder/metrics.py"
            for matcher in selector.matchers.matchers:
                assert matcher.name in exposed[name], (
                    f"{rule['alert']}: {name} has no {matcher.name}"
                )
                values = LABEL_VALUES.get((name, matcher.name))
                if values is not None and matcher.op == promql_parser.MatchOp.Equal:
                    assert matcher.value in values, f"{rule['alert']}: {matcher}"
    assert {
        "responder_steps_total",
        "responder_approvals_total",
        "responder_runs_total",
    } <= used


def test_the_alerts_cover_failing_steps_stuck_approvals_and_the_storm_brake(
    raw_docs: list[Doc],
) -> None:
    by_name = {r["alert"]: r["expr"] for r in alert_rules(raw_docs)}
    assert 'outcome="failed"' in by_name["ResponderStepsFailing"]
    assert 'event="expired"' in by_name["ResponderApprovalsExpired"]
    storm = by_name["ResponderStormBrakeEngaged"]
    assert 'reason="storm_brake"' in storm
    assert "responder_approvals_total" in storm
    assert "responder_steps_total" in storm  # both STORM_ACTION modes


def test_the_metric_check_catches_a_misspelt_metric() -> None:
    exposed = exposed_metrics()
    names = [s.name for s in selectors('sum(increase(responder_step_total{outcome="failed"}[5m]))')]
    assert names == ["responder_step_total"]
    assert names[0] not in exposed
    with pytest.raises(ValueError, match=r"."):
        promql_parser.parse("sum(increase(responder_steps_total[5m])")


# ---------------------------------------------------------------- promtool


def debian_tool(name: str, package: str) -> str:
    """A Prometheus tool from Debian; skipped without it, except under CI=true."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI=true (Debian: apt-get install {package})")
        pytest.skip(f"{name} not installed (Debian: apt-get install {package})")
    return found


def run_tool(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def rule_groups(docs: list[Doc], *, annotations: bool = True) -> Doc:
    groups = yaml.safe_load(yaml.safe_dump(one(docs, "PrometheusRule")["spec"]["groups"]))
    if not annotations:
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations")
    return {"groups": groups}


def test_promtool_accepts_the_rules_and_their_annotation_templates(
    raw_docs: list[Doc], tmp_path: Path
) -> None:
    promtool = debian_tool("promtool", "prometheus")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_groups(raw_docs)))
    result = run_tool([promtool, "check", "rules", "rules.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules(raw_docs))} rules found" in result.stdout


def series(name: str, values: str, **labels: str) -> Doc:
    selector = ",".join(f'{k}="{v}"' for k, v in {"namespace": "responder", **labels}.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


RISES = "0 0 0 1 1 1 1 1 1 1 1"  # one increment at minute 3, one sample a minute
FLAT = "0x10"


def alert(name: str, severity: str, **labels: str) -> Doc:
    return {
        "eval_time": "10m",
        "alertname": name,
        "exp_alerts": [{"exp_labels": {"severity": severity, **labels}}],
    }


def quiet(name: str) -> Doc:
    return {"eval_time": "10m", "alertname": name, "exp_alerts": []}


def test_the_alerts_fire_on_the_series_responder_exposes_and_only_then(
    raw_docs: list[Doc], tmp_path: Path
) -> None:
    promtool = debian_tool("promtool", "prometheus")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_groups(raw_docs, annotations=False)))
    steps, approvals = "responder_steps_total", "responder_approvals_total"
    trouble = [
        series(steps, RISES, pod="a", action="k8s.scale", outcome="failed", reason=""),
        series(
            steps,
            RISES,
            pod="a",
            action="k8s.scale",
            outcome="skipped",
            reason="coordination_unavailable",
        ),
        # STORM_ACTION=approval: the skipped series exists but stays flat; approvals rise.
        series(steps, FLAT, pod="a", action="k8s.scale", outcome="skipped", reason="storm_brake"),
        series(approvals, RISES, pod="a", event="requested", reason="storm_brake"),
        series(approvals, RISES, pod="a", event="expired", reason=""),
        series("responder_queue_depth", "900x10", pod="a"),
        series("responder_queue_capacity", "1000x10", pod="a"),
        {"series": 'up{job="responder",instance="a"}', "values": "0x10"},
    ]
    storm_skip_mode = [
        series(steps, RISES, pod="a", action="k8s.scale", outcome="skipped", reason="storm_brake"),
        {"series": 'up{job="responder",instance="a"}', "values": "1x10"},
    ]
    calm = [
        series(steps, FLAT, pod="a", action="k8s.scale", outcome="failed", reason=""),
        series(steps, FLAT, pod="a", action="k8s.scale", outcome="skipped", reason="storm_brake"),
        series(approvals, FLAT, pod="a", event="requested", reason="storm_brake"),
        series(approvals, FLAT, pod="a", event="expired", reason=""),
        series("responder_queue_depth", "10x10", pod="a"),
        series("responder_queue_capacity", "1000x10", pod="a"),
        series("responder_rules_loaded", "3x10", pod="a"),
        {"series": 'up{job="responder",instance="a"}', "values": "1x10"},
    ]
    watched = [
        "ResponderDown",
        "ResponderStepsFailing",
        "ResponderContainmentFailingClosed",
        "ResponderStormBrakeEngaged",
        "ResponderApprovalsExpired",
        "ResponderQueueNearlyFull",
        "ResponderNoRulesLoaded",
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": trouble,
                "alert_rule_test": [
                    alert("ResponderDown", "critical"),
                    alert(
                        "ResponderStepsFailing",
                        "warning",
                        namespace="responder",
                        action="k8s.scale",
                    ),
                    alert("ResponderContainmentFailingClosed", "critical", namespace="responder"),
                    alert("ResponderStormBrakeEngaged", "critical", namespace="responder"),
                    alert("ResponderApprovalsExpired", "warning", namespace="responder"),
                    alert("ResponderQueueNearlyFull", "warning", namespace="responder", pod="a"),
                ],
            },
            {
                "interval": "1m",
                "input_series": storm_skip_mode,
                "alert_rule_test": [
                    alert("ResponderStormBrakeEngaged", "critical", namespace="responder"),
                    quiet("ResponderDown"),
                ],
            },
            {
                "interval": "1m",
                "input_series": calm,
                "alert_rule_test": [quiet(name) for name in watched],
            },
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = run_tool([promtool, "test", "rules", "tests.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- docs


DOCS = [REPO / "docs" / name for name in ("deployment.md", "alertmanager.md", "sentry.md")]
NOT_SETTINGS = {"RESPONDER_CONFIG", "RESPONDER_SERVER", "RESPONDER_TOKEN"}  # CLI and file


def test_the_docs_name_real_settings_paths_and_metrics() -> None:
    routes = set(
        re.findall(r'add_(?:get|post)\("([^"]+)"', (REPO / "responder/web/app.py").read_text())
    )
    exposed = exposed_metrics()
    for doc in DOCS:
        text = doc.read_text()
        for name in set(re.findall(r"\bRESPONDER_[A-Z0-9_]+", text)) - NOT_SETTINGS:
            assert name.removeprefix("RESPONDER_").lower() in SETTING_GROUPS, (
                f"{doc.name}: {name} is no setting"
            )
        for path in set(re.findall(r"(/v1/webhooks/[a-z]+|/healthz|/readyz|/metrics)\b", text)):
            assert path in routes, f"{doc.name}: no route {path}"
        for metric in set(re.findall(r"\bresponder_[a-z_]+", text)):
            assert metric in exposed, f"{doc.name}: no metric {metric}"


def test_the_alertmanager_example_is_valid_and_routes_to_responder_and_people(
    tmp_path: Path,
) -> None:
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    text = (REPO / "docs" / "alertmanager.md").read_text()
    config = re.search(r"```yaml\n(route:.*?)```", text, re.S)
    assert config is not None
    (tmp_path / "alertmanager.yml").write_text(config.group(1))
    checked = run_tool([amtool, "check-config", "alertmanager.yml"], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    parsed = yaml.safe_load(config.group(1))
    webhook = parsed["receivers"][1]["webhook_configs"][0]
    assert webhook["send_resolved"] is True
    assert webhook["max_alerts"] > 0
    assert webhook["url"].endswith("/v1/webhooks/alertmanager")
    assert webhook["http_config"]["authorization"]["credentials_file"]

    def receivers(*labels: str) -> str:
        argv = [amtool, "config", "routes", "test", "--config.file=alertmanager.yml", *labels]
        result = run_tool(argv, tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert receivers("responder=enabled", "alertname=DiskFull") == "responder,people"
    assert receivers("responder=enabled", "alertname=ResponderStepsFailing") == "people"
    assert receivers("alertname=Watchdog") == "people"
