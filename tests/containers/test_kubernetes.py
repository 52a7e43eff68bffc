"""deploy/kubernetes/ and deploy/teleport/: the pod layout, security context and configuration they promise."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
TELEPORT = ROOT / "deploy" / "teleport"


def documents(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(kind: str, directory: Path = KUBE) -> dict[str, Any]:
    [found] = [d for d in documents(directory) if d.get("kind") == kind]
    return found


@pytest.fixture
def pod() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in pod.get("containers", []) + pod.get("initContainers", []) if c["name"] == name
    ]
    [only] = found
    return only


def mount(c: dict[str, Any], volume: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [m for m in c["volumeMounts"] if m["name"] == volume]
    [only] = found
    return only


def volume(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [v for v in pod["volumes"] if v["name"] == name]
    [only] = found
    return only


def configmap_data() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap")["data"]
    return data


def test_kustomization_lists_every_manifest() -> None:
    listed = set(one("Kustomization")["resources"])
    present = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_tbot_is_a_native_sidecar_writing_to_a_memory_emptydir_shared_with_the_plugin(pod: dict[str, Any]) -> None:
    tbot = container(pod, "tbot")
    assert tbot in pod["initContainers"] and tbot["restartPolicy"] == "Always"
    assert volume(pod, "identity")["emptyDir"]["medium"] == "Memory"
    plugin = container(pod, "teleport-mattermost")
    tbot_mount, plugin_mount = mount(tbot, "identity"), mount(plugin, "identity")
    assert not tbot_mount.get("readOnly") and plugin_mount["readOnly"] is True
    assert "subPath" not in plugin_mount  # a subPath mount would never see tbot's renewals
    # tbot writes exactly where the plugin reads, and the plugin re-reads it.
    tbot_config = yaml.safe_load(configmap_data()["tbot.yaml"])
    [output] = tbot_config["outputs"]
    assert output["type"] == "identity"
    assert output["destination"] == {"type": "directory", "path": tbot_mount["mountPath"]}
    toml = tomllib.loads(configmap_data()["teleport-mattermost.toml"])
    assert toml["teleport"]["identity"] == plugin_mount["mountPath"] + "/identity"
    assert toml["teleport"]["refresh_identity"] is True


def test_tbot_joins_with_a_projected_service_account_token(pod: dict[str, Any]) -> None:
    tbot = container(pod, "tbot")
    tbot_config = yaml.safe_load(configmap_data()["tbot.yaml"])
    assert tbot_config["onboarding"]["join_method"] == "kubernetes"
    assert tbot_config["storage"] == {"type": "memory"}
    [source] = volume(pod, "join-sa-token")["projected"]["sources"]
    token = source["serviceAccountToken"]
    env = {e["name"]: e["value"] for e in tbot["env"]}
    assert env["KUBERNETES_TOKEN_PATH"] == mount(tbot, "join-sa-token")["mountPath"] + "/" + token["path"]
    assert token["expirationSeconds"] <= 3600
    bot_token = one("token", TELEPORT)
    assert bot_token["metadata"]["name"] == tbot_config["onboarding"]["token"]
    sa = one("ServiceAccount")["metadata"]["name"]
    assert pod["serviceAccountName"] == sa
    namespace = one("Kustomization")["namespace"]
    assert bot_token["spec"]["kubernetes"]["allow"] == [{"service_account": f"{namespace}:{sa}"}]


def test_config_from_the_configmap_and_token_from_a_secret_file(pod: dict[str, Any]) -> None:
    plugin = container(pod, "teleport-mattermost")
    config_mount = mount(plugin, "config")
    assert config_mount["mountPath"] == "/etc/teleport-mattermost.toml"  # the image's default path
    assert volume(pod, "config")["configMap"]["name"] == one("ConfigMap")["metadata"]["name"]
    secret = volume(pod, "mattermost-token")["secret"]
    # Secret files belong to root with group fsGroup: the non-root user reads them through the group.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert secret["defaultMode"] & 0o040 and not secret["defaultMode"] & 0o007
    [item] = secret["items"]
    token_path = mount(plugin, "mattermost-token")["mountPath"] + "/" + item["path"]
    toml = tomllib.loads(configmap_data()["teleport-mattermost.toml"])
    assert toml["mattermost"]["token"] == token_path  # a "/" value is read from the file


def test_the_configmap_toml_is_a_valid_sidecar_config(tmp_path: Path) -> None:
    config = _configmap_config(tmp_path)
    assert config.warnings == ()
    assert config.teleport.refresh_identity is True


def test_restricted_security_context(pod: dict[str, Any]) -> None:
    dockerfile_uid = re.search(r"ARG APP_UID=(\d+)", (ROOT / "Dockerfile").read_text())
    assert dockerfile_uid is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(dockerfile_uid.group(1))
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert "add" not in sc["capabilities"], c["name"]
        assert mount(c, "tmp" if c["name"] == "teleport-mattermost" else "tbot-tmp")["mountPath"] == "/tmp"
    assert pod["automountServiceAccountToken"] is False


def test_probes_point_at_the_plugins_health_listener(pod: dict[str, Any], tmp_path: Path) -> None:
    plugin = container(pod, "teleport-mattermost")
    [port] = [p for p in plugin["ports"] if p["name"] == "health"]
    assert plugin["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert plugin["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # Liveness must outlast a blip: at least a minute of failures before a restart.
    liveness = plugin["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    assert "no health endpoints" not in (KUBE / "deployment.yaml").read_text()
    # The listener the ConfigMap turns on is the probed port, on every interface (the kubelet is not loopback).
    config = _configmap_config(tmp_path)
    assert config.health.enabled
    assert (config.health.host, config.health.port) == ("0.0.0.0", port["containerPort"])
    # The image declares that port, and Prometheus discovery finds /metrics there.
    assert re.search(rf"^EXPOSE {port['containerPort']}$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"
    # tbot has its own: /livez and /readyz on its diagnostics port.
    tbot = container(pod, "tbot")
    assert tbot["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert tbot["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--diag-addr=0.0.0.0:3001" in tbot["args"]


def _configmap_config(tmp_path: Path) -> Config:
    path = tmp_path / "teleport-mattermost.toml"
    path.write_text(configmap_data()["teleport-mattermost.toml"])
    token_file = tmp_path / "token"
    token_file.write_text("bot-token\n")
    return load_config(path, env={"TELEPORT_MATTERMOST_TOKEN": str(token_file)})


def test_single_replica_recreated_not_rolled() -> None:
    spec = one("Deployment")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"


def test_access_plugin_role_matches_the_fake_auths_default_seed() -> None:
    seed = tomllib.loads((ROOT / "fakes" / "teleport_auth" / "default_seed.toml").read_text())
    expected = seed["roles"]["access-plugin"]["rules"]
    role = one("role", TELEPORT)
    assert role["metadata"]["name"] == "access-plugin"
    assert role["spec"]["allow"]["rules"] == expected
    assert one("token", TELEPORT)["spec"]["roles"] == ["Bot"]
