"""The deployment files, read (nothing is run): what the README and the issue promise of them holds.

`make deploy-test` (tests/deploy/checks.py) runs them for real with podman and checks them against the
Kubernetes schemas; these checks take milliseconds and run with the rest of `make test`.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
KUBERNETES = DEPLOY / "kubernetes"
IMAGE_USER_UID = 10001

# What the cluster's copy of nginx.conf has in place of the Compose file's first paragraph and upstream block.
CLUSTER_HEADER = """# The caching proxy in front of the app's Service. The same file as deploy/nginx/nginx.conf (for
# Compose) but for the upstream block; tests/deploy/test_manifests.py keeps the two alike.
"""
CLUSTER_UPSTREAM = """    upstream app {
        # The app's Service: it spreads connections over the ready pods and takes a pod out of
        # them before it stops. (With one server here, nginx has no other to pass a failed request to.)
        server rnn-app:8000;
        # Idle connections to the replicas, closed before the app's own 5 s keep-alive timeout does.
        keepalive 32;
        keepalive_timeout 4s;
    }"""
UPSTREAM_BLOCK = re.compile(r"    upstream app \{.*?\n    \}", flags=re.DOTALL)


def cluster_nginx_conf(compose_conf: str) -> str:
    """deploy/nginx/nginx.conf as the ConfigMap in deploy/kubernetes/cache.yaml must hold it."""
    body = compose_conf.split("\n\n", 1)[1]
    assert len(UPSTREAM_BLOCK.findall(body)) == 1, "deploy/nginx/nginx.conf has not exactly one `upstream app` block"
    return CLUSTER_HEADER + "\n" + UPSTREAM_BLOCK.sub(lambda _: CLUSTER_UPSTREAM, body)


def upstream_servers(conf: str) -> list[str]:
    block = UPSTREAM_BLOCK.search(conf)
    assert block, "no `upstream app` block"
    return re.findall(r"^\s*server\s+(\S+?)(?:\s[^;]*)?;", block[0], flags=re.MULTILINE)


def load_documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict]:
    """Every Kubernetes object the kustomization names, by (kind, name)."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for document in load_documents(KUBERNETES / resource):
            objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def app_services(compose: dict) -> dict[str, dict]:
    return {name: service for name, service in compose["services"].items() if name.startswith("app")}


def test_the_cluster_nginx_conf_is_the_compose_one_but_for_its_upstream(resources: dict) -> None:
    held = resources[("ConfigMap", "rnn-cache")]["data"]["nginx.conf"]
    assert held == cluster_nginx_conf(NGINX_CONF.read_text()), (
        "deploy/kubernetes/cache.yaml's nginx.conf drifted from deploy/nginx/nginx.conf: make the same change in both"
    )


def test_nginx_proxies_to_every_compose_replica_on_the_shared_loopback(compose: dict) -> None:
    replicas = app_services(compose)
    assert len(replicas) == 2
    for name, service in replicas.items():
        assert service["network_mode"] == "service:cache", f"{name} does not share the proxy's network namespace"
        assert service["environment"]["RNN_HOST"] == "127.0.0.1", f"{name} listens beyond the shared loopback interface"
    ports = [service["environment"]["RNN_PORT"] for service in replicas.values()]
    assert len(set(ports)) == len(ports), "two replicas listen on the same port of the shared loopback interface"
    assert sorted(upstream_servers(NGINX_CONF.read_text())) == sorted(f"127.0.0.1:{port}" for port in ports)


def test_nginx_keeps_answers_bounded_and_retries_on_the_other_replica() -> None:
    conf = NGINX_CONF.read_text()
    assert re.search(r"proxy_cache_path \S+ .*max_size=\d+[kmg]", conf), "the cache has no size bound"
    next_upstream = re.search(r"proxy_next_upstream ([^;]*);", conf)
    assert next_upstream and {"error", "timeout", "http_502"} <= set(next_upstream[1].split())
    assert "add_header X-Cache-Status $upstream_cache_status" in conf
    assert "proxy_cache_revalidate on;" in conf and "proxy_cache_lock on;" in conf


def test_compose_replicas_are_read_only_unprivileged_and_sized_to_their_cpus(compose: dict) -> None:
    for name, service in app_services(compose).items():
        assert service["read_only"] is True, name
        assert int(str(service["user"]).split(":")[0]) != 0, name
        assert service["cap_drop"] == ["ALL"], name
        assert int(service["environment"]["RNN_PROCESSES"]) == service["cpus"], f"{name}: RNN_PROCESSES is not the CPUs it is given"
        # Left out, the threads would follow the host's core count, not the replica's CPUs.
        for threads in ("RNN_THREADS", "RNN_SPREAD_THREADS"):
            assert int(service["environment"][threads]) <= service["cpus"], f"{name}: {threads} is above the CPUs it is given"
        assert "/healthz" in " ".join(service["healthcheck"]["test"]), name
    cache = compose["services"]["cache"]
    assert cache["read_only"] is True and int(str(cache["user"]).split(":")[0]) != 0 and cache["cap_drop"] == ["ALL"]
    mounted = [volume.split(":")[0] for volume in cache["volumes"]]
    assert mounted == ["./nginx/nginx.conf"] and (COMPOSE_FILE.parent / mounted[0]).is_file()


def test_kustomization_names_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    manifests = sorted(path.name for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == manifests


def test_the_app_deployment_is_probed_sized_and_locked_down(resources: dict) -> None:
    deployment = resources[("Deployment", "rnn-app")]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == IMAGE_USER_UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys()
    environment = {variable["name"]: variable["value"] for variable in container["env"]}
    assert int(environment["RNN_PROCESSES"]) == int(limits["cpu"]), "RNN_PROCESSES does not match the CPU limit"
    for threads in ("RNN_THREADS", "RNN_SPREAD_THREADS"):
        assert int(environment[threads]) <= int(limits["cpu"]), f"{threads} is above the CPU limit"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]


def test_the_cache_deployment_mounts_its_configmap_and_is_locked_down(resources: dict) -> None:
    pod = resources[("Deployment", "rnn-cache")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    # nginx reads the ConfigMap's nginx.conf where the ConfigMap is mounted.
    config_file = Path(container["command"][container["command"].index("-c") + 1])
    config = next(mount for mount in container["volumeMounts"] if mount["mountPath"] == str(config_file.parent))
    assert volumes[config["name"]]["configMap"]["name"] == "rnn-cache" and config_file.name == "nginx.conf"


def test_services_budget_and_autoscaler_point_at_the_deployments(resources: dict) -> None:
    for name in ("rnn-app", "rnn-cache"):
        pod_labels = resources[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]
        assert resources[("Deployment", name)]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert resources[("Service", name)]["spec"]["selector"].items() <= pod_labels.items(), f"Service {name} selects no pod of its Deployment"
    app_labels = resources[("Deployment", "rnn-app")]["spec"]["template"]["metadata"]["labels"]
    assert resources[("PodDisruptionBudget", "rnn-app")]["spec"]["selector"]["matchLabels"].items() <= app_labels.items()
    target = resources[("HorizontalPodAutoscaler", "rnn-app")]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "rnn-app")
    # nginx's upstream is the app's Service, on its port.
    (server,) = upstream_servers(resources[("ConfigMap", "rnn-cache")]["data"]["nginx.conf"])
    service_port = resources[("Service", "rnn-app")]["spec"]["ports"][0]["port"]
    assert server == f"rnn-app:{service_port}"
