"""deploy/compose.yaml and deploy/kubernetes/ run for real with podman, on the image `make image-test` built.

Run by `make deploy-test` (and by CI after `make image-test`); not collected by a plain `pytest`, since
the file name does not start with `test_`. What it does:

1. podman as the image check has it (tests/image/checks.py: installed as root on Debian when missing,
   run with tests/image/containers.conf). The app image is the one that check built and kept
   (KEPT_IMAGE); the nginx image the deployment names is a stand-in built from Debian's nginx package
   the way that check builds its base images, kept for the next run like those.
2. Compose (podman-compose, pinned in constraints.txt): the proxy and two replicas come up; through
   the proxy the article and every answer it asks for load; a versioned API URL is a cache MISS, then
   a HIT; both replicas answer with the same X-Answers-Version; bench/load.py loads the proxy with
   readers while one replica is killed (SIGKILL) and restarted, and no request fails.
3. New checkpoints (an image with a changed checkpoint, the replicas recreated one at a time): the
   answer version changes, and no request is answered with an answer of the other version's models,
   during the replacement or after it; the page names the new version.
4. Kubernetes: every manifest is valid against the Kubernetes schemas (kubernetes-validate, offline);
   `podman kube play` runs the app Deployment and the nginx Deployment with its ConfigMap: the app pod
   becomes ready through its probes, runs as its security context says, and serves the article
   through the nginx pod. (podman plays Deployments and ConfigMaps only: the nginx pod reaches the app
   pod under the Service's name through a host alias, where a cluster's DNS would name the Service.)

It prints what it measured at the end: time to ready, the load's rate carried and errors, and the
share of requests the cache answered.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from image.checks import (
    APP_DIR,
    KEPT_IMAGE,
    STAND_IN_LABEL,
    StandIn,
    build_stand_ins,
    free_port,
    podman,
    podman_env,
    podman_ready,  # noqa: F401 (a fixture: podman installed and able to run)
)
from safetensors import safe_open
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from readers import DEMO_PREFIX, EXAMPLE_TEXT, get_path  # noqa: E402

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
CHECKPOINTS = ROOT / "models" / "checkpoints"
NGINX_IMAGE = re.search(r"\$\{NGINX_IMAGE:-([^}]+)\}", COMPOSE_FILE.read_text())[1]  # type: ignore[index]
# The official image's PATH, port, stop signal and command, over Debian 12's nginx (1.22).
NGINX_STAND_IN = StandIn(
    packages=("nginx",),
    hooks=(),
    changes=("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "EXPOSE 80", "STOPSIGNAL SIGQUIT", 'CMD ["nginx", "-g", "daemon off;"]'),
)
REPLICAS = ("app-1", "app-2")
READY_LIMIT_S = 240.0
# The load: reader-shaped page views through the proxy, one replica killed after KILL_AFTER_S and
# started again RESTART_AFTER_S later (if its restart policy has not done so already).
LOAD_RATE = 2.0
LOAD_DURATION_S = 40.0
KILL_AFTER_S = 15.0
RESTART_AFTER_S = 3.0
# Asked through the proxy and of each replica: the article's own connectivity question for the model whose checkpoint is replaced.
REPLACED_MODEL = "gru"
QUESTION = {"text": EXAMPLE_TEXT, "model": REPLACED_MODEL, "positions": "all", "method": "gradient"}

pytestmark = pytest.mark.usefixtures("podman_ready")


# ---------------------------------------------------------------------------------------------------
# Plumbing


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lowercase names
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def get(url: str, timeout: float = 60) -> Response:
    """GET without Accept-Encoding (the identity variant), redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as answer:
            return Response(answer.status, {name.lower(): value for name, value in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {name.lower(): value for name, value in error.headers.items()}, error.read())


def post(url: str, body: dict, timeout: float = 60) -> Response:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return Response(answer.status, {name.lower(): value for name, value in answer.headers.items()}, answer.read())


# Run inside an app container: GET a path of the replica there, print status, headers and body as JSON.
REPLICA_GET = """
import base64, json, os, sys, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen('http://127.0.0.1:%s%s' % (os.environ['RNN_PORT'], sys.argv[1]), timeout=60)
except urllib.error.HTTPError as error:
    answer = error
print(json.dumps({'status': answer.status, 'headers': dict(answer.headers), 'body': base64.b64encode(answer.read()).decode()}))
"""


def replica_get(container: str, path: str) -> Response:
    """GET `path` of the replica in `container` itself, past the proxy; status 0 when it cannot be reached (yet)."""
    result = podman("exec", container, "python", "-c", REPLICA_GET, path, check=False, timeout=120)
    if result.returncode != 0:
        return Response(0, {}, (result.stdout + result.stderr).encode())
    answer = json.loads(result.stdout)
    return Response(answer["status"], {name.lower(): value for name, value in answer["headers"].items()}, base64.b64decode(answer["body"]))


def wait_until(condition, timeout: float, what: str, interval: float = 0.5) -> float:
    """Seconds until `condition()` is true; fails the test after `timeout`."""
    start = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - start
        except (OSError, urllib.error.URLError, subprocess.SubprocessError, json.JSONDecodeError):
            pass
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:.0f} s", pytrace=False)
        time.sleep(interval)


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# Images


@pytest.fixture(scope="session")
def app_image() -> str:
    """The image `make image-test` built from the Dockerfile and kept."""
    if podman("image", "exists", KEPT_IMAGE, check=False).returncode != 0:
        pytest.fail(f"{KEPT_IMAGE} is not there: run `make image-test` first, which builds the image from the Dockerfile and keeps it", pytrace=False)
    return KEPT_IMAGE


@pytest.fixture(scope="session")
def nginx_image(figures: dict) -> str:
    """NGINX_IMAGE as it is when present (an official image, or a stand-in of this recipe), else a stand-in from Debian's nginx."""
    if podman("image", "exists", NGINX_IMAGE, check=False).returncode == 0:
        label = podman("image", "inspect", "--format", f'{{{{index .Labels "{STAND_IN_LABEL}"}}}}', NGINX_IMAGE).stdout.strip()
        if label in ("", "<no value>", NGINX_STAND_IN.recipe_hash()):
            return NGINX_IMAGE
        podman("rmi", NGINX_IMAGE, check=False)
    start = time.monotonic()
    build_stand_ins([NGINX_IMAGE], {NGINX_IMAGE: NGINX_STAND_IN})
    figures["nginx stand-in built"] = f"{NGINX_IMAGE} from Debian's nginx package in {time.monotonic() - start:.0f} s"
    return NGINX_IMAGE


def changed_checkpoint(source: Path, destination: Path) -> None:
    """`source` with its embedding scaled by 1.05: the same model's file, as new training would leave it, with other answers."""
    with safe_open(str(source), framework="numpy") as checkpoint:
        metadata = checkpoint.metadata()
        tensors = {name: checkpoint.get_tensor(name) for name in checkpoint.keys()}
    tensors["embedding.weight"] = (tensors["embedding.weight"] * np.float32(1.05)).astype(tensors["embedding.weight"].dtype)
    save_file(tensors, str(destination), metadata=metadata)
    destination.chmod(0o644)  # readable by the image's unprivileged user once copied in


@pytest.fixture(scope="session")
def next_image(app_image: str) -> Iterator[str]:
    """The app image with new checkpoints: REPLACED_MODEL's file changed."""
    tag = f"localhost/rnn-connectivity:deploy-test-next-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="rnn-deploy-next-") as scratch:
        changed_checkpoint(CHECKPOINTS / f"{REPLACED_MODEL}.safetensors", Path(scratch) / f"{REPLACED_MODEL}.safetensors")
        (Path(scratch) / "Containerfile").write_text(
            f"FROM {app_image}\nCOPY {REPLACED_MODEL}.safetensors {APP_DIR}/models/checkpoints/{REPLACED_MODEL}.safetensors\n"
        )
        podman("build", "--format=docker", "--pull=never", "-t", tag, scratch, timeout=600)
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag, check=False)


# ---------------------------------------------------------------------------------------------------
# Compose


@dataclass
class Compose:
    project: str
    url: str
    environment: dict[str, str]
    ready_s: float = 0.0
    versions: list[str] = field(default_factory=list)

    def run(self, *args: str, image: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        environment = {**self.environment, **({"RNN_IMAGE": image} if image else {})}
        command = [sys.executable, "-m", "podman_compose", "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            pytest.fail(f"podman-compose {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
        return result

    def container(self, service: str) -> str:
        names = podman(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=io.podman.compose.project={self.project}", "--filter", f"label=com.docker.compose.service={service}",
        ).stdout.split()
        assert len(names) == 1, f"service {service}: containers {names}"
        return names[0]

    def cache_log_lines(self) -> list[str]:
        """The proxy's access log (log_format `cache` in nginx.conf)."""
        result = podman("logs", self.container("cache"), check=False)
        return [line for line in (result.stdout + result.stderr).splitlines() if " cache=" in line]

    def cache_errors(self, last: int = 10) -> str:
        """The proxy's last failed requests and error log lines, to show beside a failure."""
        result = podman("logs", self.container("cache"), check=False)
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "[error]" in line or "[warn]" in line or '" 50' in line]
        return "\n".join(lines[-last:])


def replica_healthy(compose: Compose, service: str) -> bool:
    return replica_get(compose.container(service), "/healthz").status == 200


@pytest.fixture(scope="class")
def compose(app_image: str, nginx_image: str, figures: dict) -> Iterator[Compose]:
    """The Compose file up under a project of its own, its proxy on a loopback port; taken down afterwards."""
    port = free_port()
    deployment = Compose(
        project=f"rnn-deploy-test-{os.getpid()}",
        url=f"http://127.0.0.1:{port}",
        environment={**podman_env(), "RNN_IMAGE": app_image, "NGINX_IMAGE": nginx_image, "RNN_LISTEN": f"127.0.0.1:{port}"},
    )
    start = time.monotonic()
    try:
        deployment.run("up", "--detach", "--no-build")
        for service in REPLICAS:
            wait_until(lambda service=service: replica_healthy(deployment, service), READY_LIMIT_S, f"{service} answering /healthz")
        wait_until(lambda: get(deployment.url + "/healthz").status == 200, 30, "/healthz through the proxy")
        deployment.ready_s = time.monotonic() - start
        load = Path("/proc/loadavg").read_text().split()[:3]
        figures["compose: time to ready"] = (
            f"{deployment.ready_s:.1f} s from `podman-compose up` until both replicas and the proxy answer /healthz "
            f"(load average then {' '.join(load)} on {os.cpu_count()} cores)"
        )
        yield deployment
    except BaseException:
        names = podman("ps", "--all", "--format", "{{.Names}}", "--filter", f"label=io.podman.compose.project={deployment.project}", check=False)
        for name in names.stdout.split():
            result = podman("logs", "--tail", "30", name, check=False)
            print(f"--- {name}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        raise
    finally:
        subprocess.run(
            [sys.executable, "-m", "podman_compose", "-p", deployment.project, "-f", str(COMPOSE_FILE), "down", "--timeout", "5"],
            env=deployment.environment, capture_output=True, timeout=300,
        )


class TestCompose:
    def test_the_article_and_every_answer_it_asks_for_load_through_the_proxy(self, compose: Compose) -> None:
        page = get(compose.url + "/")
        assert page.status == 200 and b"Visualizing memorization in RNNs" in page.body, f"/ answered {page.status}"
        assets = sorted(set(re.findall(r'(?:src|href)="(/(?:static|vendor)/[^"#?]+)"', page.body.decode())))
        failing = [(asset, status) for asset in assets if (status := get(compose.url + asset).status) != 200]
        assert assets and not failing, f"the article's scripts and styles do not all load: {failing}"
        models = get(compose.url + "/api/models")
        assert models.status == 200
        version, model_ids = models.headers["x-answers-version"], [model["id"] for model in models.json()]  # type: ignore[attr-defined]
        questions = [get_path("/api/autocomplete", {"text": EXAMPLE_TEXT, "top_k": 3, "positions": "all", "models": model_ids}, version)]
        questions += [get_path("/api/connectivity", {**QUESTION, "model": model}, version) for model in model_ids]
        for path in questions:
            answer = get(compose.url + path)
            assert answer.status == 200 and answer.headers["x-answers-version"] == version, f"{path}: {answer.status}"
        keystroke = post(compose.url + "/api/autocomplete", {"text": DEMO_PREFIX, "top_k": 3, "positions": "last", "models": model_ids})
        assert keystroke.status == 200 and keystroke.headers["x-answers-version"] == version

    def test_a_versioned_answer_is_a_miss_then_a_hit(self, compose: Compose) -> None:
        version = get(compose.url + "/api/models").headers["x-answers-version"]
        # A question no one asked yet: a text of its own.
        path = get_path("/api/autocomplete", {"text": f"cache check {os.getpid()} of the deployment", "top_k": 3}, version)
        first, second = get(compose.url + path), get(compose.url + path)
        assert (first.status, first.headers.get("x-cache-status")) == (200, "MISS")
        assert (second.status, second.headers.get("x-cache-status")) == (200, "HIT")
        assert second.body == first.body and "immutable" in second.headers["cache-control"]

    def test_both_replicas_answer_with_the_same_answer_version(self, compose: Compose) -> None:
        through_proxy = get(compose.url + "/api/models").headers["x-answers-version"]
        path = get_path("/api/connectivity", QUESTION, through_proxy)
        answers = {service: replica_get(compose.container(service), path) for service in REPLICAS}
        for service, answer in answers.items():
            assert answer.status == 200 and answer.headers["x-answers-version"] == through_proxy, f"{service}: {answer.status} {answer.headers}"
        assert answers["app-1"].body == answers["app-2"].body, "the replicas give different answers to the same question"
        compose.versions.append(through_proxy)

    def test_a_load_through_the_proxy_loses_nothing_while_a_replica_is_killed_and_restarted(self, compose: Compose, figures: dict) -> None:
        logged_before = len(compose.cache_log_lines())
        with tempfile.TemporaryDirectory(prefix="rnn-deploy-load-") as scratch:
            results_file, output_file = Path(scratch) / "load.json", Path(scratch) / "load.txt"
            command = [
                sys.executable, str(ROOT / "bench" / "load.py"), "--url", compose.url, "--rates", f"{LOAD_RATE:g}",
                "--duration", f"{LOAD_DURATION_S:g}", "--min-rate", "0", "--json", str(results_file),
            ]
            with output_file.open("w") as output:
                load = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
                try:
                    time.sleep(KILL_AFTER_S)
                    victim = compose.container("app-1")
                    podman("kill", victim)
                    time.sleep(RESTART_AFTER_S)
                    if podman("inspect", "--format", "{{.State.Running}}", victim).stdout.strip() != "true":
                        podman("start", victim)
                    healthy_s = RESTART_AFTER_S + wait_until(lambda: replica_healthy(compose, "app-1"), READY_LIMIT_S, "app-1 healthy again")
                    load.wait(timeout=LOAD_DURATION_S + 600)
                finally:
                    if load.poll() is None:
                        load.kill()
            output = output_file.read_text()
            assert results_file.is_file(), f"bench/load.py wrote no results (exit {load.returncode}):\n{output[-3000:]}"
            (result,) = json.loads(results_file.read_text())["rates"]
        logged = compose.cache_log_lines()[logged_before:]
        statuses = [match[1] for line in logged if (match := re.search(r" cache=(\S*)", line))]
        hits = statuses.count("HIT")
        upstreams = {match[1] for line in logged if (match := re.search(r" upstream=(\S+)", line))}
        keystroke = result["latency"].get("keystroke", {})
        figures["compose: load through the proxy"] = (
            f"{LOAD_RATE:g} page views/s offered for {LOAD_DURATION_S:g} s: {result['page_views_finished']} of {result['arrivals']} page views "
            f"finished ({result['requests']} requests), the last {result['elapsed_s'] - LOAD_DURATION_S:.1f} s after the arrivals ended; "
            f"{result['carried_page_views_per_s']:.2f} page views/s carried by the pair, {result['error_count']} errors; "
            f"keystroke p99 {keystroke.get('p99_ms', float('nan')):.0f} ms; "
            f"app-1 killed after {KILL_AFTER_S:g} s and healthy again {healthy_s:.1f} s later"
        )
        figures["compose: cache under the load"] = (
            f"{hits} of {len(statuses)} requests answered by the cache ({hits / max(len(statuses), 1):.0%}); "
            + ", ".join(f"{status or 'not cacheable'} {statuses.count(status)}" for status in sorted(set(statuses)))
        )
        assert result["error_count"] == 0, f"requests failed through the proxy while a replica was killed: {result['errors']}\n{output[-3000:]}"
        assert result["page_views_finished"] == result["arrivals"], "not every reader finished"
        assert {"127.0.0.1:8001", "127.0.0.1:8002"} <= upstreams, f"the proxy passed requests to {upstreams} only"

    def test_new_checkpoints_change_the_version_and_no_old_answer_is_served(self, compose: Compose, next_image: str, figures: dict) -> None:
        old_version = get(compose.url + "/api/models").headers["x-answers-version"]
        unversioned = compose.url + get_path("/api/connectivity", QUESTION, "").removesuffix("&v=")
        old_answer = get(compose.url + get_path("/api/connectivity", QUESTION, old_version))
        assert old_answer.status == 200
        seen: list[tuple[int, str, str]] = []  # (status, answer version, body digest) of the unversioned question
        stop = threading.Event()

        def ask_throughout() -> None:
            while not stop.is_set():
                try:
                    answer = get(unversioned)
                    seen.append((answer.status, answer.headers.get("x-answers-version", ""), digest(answer.body)))
                except OSError as error:
                    seen.append((0, type(error).__name__, ""))
                time.sleep(0.2)

        asker = threading.Thread(target=ask_throughout, daemon=True)
        asker.start()
        start = time.monotonic()
        try:
            # One replica at a time, as a rolling update does: the other answers meanwhile.
            for service in REPLICAS:
                compose.run("up", "--detach", "--no-build", "--no-deps", "--force-recreate", service, image=next_image)
                wait_until(lambda service=service: replica_healthy(compose, service), READY_LIMIT_S, f"{service} with the new image healthy")
            replaced_s = time.monotonic() - start
            new_version = get(compose.url + "/api/models").headers["x-answers-version"]
            time.sleep(1.0)
        finally:
            stop.set()
            asker.join(timeout=70)
        assert new_version != old_version, "new checkpoints did not change the answer version"
        for service in REPLICAS:
            assert replica_get(compose.container(service), "/api/models").headers["x-answers-version"] == new_version, service
        new_path = get_path("/api/connectivity", QUESTION, new_version)
        first, second = get(compose.url + new_path), get(compose.url + new_path)
        assert (first.headers.get("x-cache-status"), second.headers.get("x-cache-status")) == ("MISS", "HIT")
        assert first.body == second.body == replica_get(compose.container("app-2"), new_path).body
        assert first.body != old_answer.body, f"{REPLACED_MODEL}'s answer did not change with its checkpoint"
        # An old page's URL is redirected to the new version's (never kept), or, if the cache still holds it, keeps its old answer.
        stale = get(compose.url + get_path("/api/connectivity", QUESTION, old_version))
        assert (stale.status == 307 and f"v={new_version}" in stale.headers["location"]) or stale.body == old_answer.body
        # Every answer to the unversioned question, during and after the replacement: its version's own answer.
        bodies = {old_version: digest(old_answer.body), new_version: digest(first.body)}
        failed = [entry for entry in seen if entry[0] != 200]
        mixed = [entry for entry in seen if entry[0] == 200 and bodies.get(entry[1]) != entry[2]]
        assert not failed, f"requests failed during the replacement: {failed[:5]}; the proxy's log:\n{compose.cache_errors()}"
        assert not mixed, f"answers not of the version they were sent with: {mixed[:5]}"
        assert seen[-1][1] == new_version
        page = wait_until(lambda: new_version in get(compose.url + "/").headers.get("etag", ""), 10, "the page naming the new answer version")
        figures["compose: new checkpoints"] = (
            f"answer version {old_version[:12]} -> {new_version[:12]}; replicas replaced one at a time in {replaced_s:.0f} s, "
            f"{len(seen)} answers to the same question meanwhile, 0 failed, none of the other version; the page named the new one "
            f"{page:.1f} s after"
        )


# ---------------------------------------------------------------------------------------------------
# Kubernetes


def manifests() -> dict[tuple[str, str], dict]:
    """Every object the kustomization names, by (kind, name)."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((KUBERNETES / resource).read_text()):
            if document:
                objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def test_the_manifests_are_valid_kubernetes_objects(figures: dict) -> None:
    import kubernetes_validate

    version = kubernetes_validate.utils.latest_version()
    objects = manifests()
    for document in objects.values():
        kubernetes_validate.validate(document, version, strict=True)
    # The validator does find mistakes: a field Kubernetes does not know, in strict mode.
    broken = json.loads(json.dumps(objects[("Deployment", "rnn-app")]))
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)
    figures["kubernetes: schemas"] = f"{len(objects)} objects valid against Kubernetes {version}'s schemas (strict): " + ", ".join(
        f"{kind} {name}" for kind, name in objects
    )


@dataclass
class Pod:
    name: str
    container: str
    ip: str


def play(objects: list[dict], network: str, scratch: Path, played: list[Path]) -> Pod:
    """`podman kube play` of a Deployment (and its ConfigMaps) on `network`: its pod, with its one container and address.

    The played copy differs from the manifest in two ways, both for podman, not for a cluster: one
    replica (podman makes a pod of each, and one shows how a pod behaves; the Compose checks run two),
    and no declared container ports (podman 4.3 publishes each on the host, which a cluster does not
    do; the test reaches the pod at its own address).
    """
    (deployment,) = [document for document in objects if document["kind"] == "Deployment"]
    deployment = json.loads(json.dumps(deployment))
    deployment["spec"]["replicas"] = 1
    for container_spec in deployment["spec"]["template"]["spec"]["containers"]:
        container_spec.pop("ports", None)
    path = scratch / f"{deployment['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump_all([document for document in objects if document["kind"] != "Deployment"] + [deployment]))
    # podman keeps a ConfigMap as a volume of its name, which `kube down` leaves behind (podman 4.3) and a
    # later `kube play` would mount as it is: one left by an interrupted run goes first.
    for config_map in (document for document in objects if document["kind"] == "ConfigMap"):
        podman("volume", "rm", "--force", config_map["metadata"]["name"], check=False)
    played.append(path)
    podman("kube", "play", "--network", network, str(path), timeout=300)
    pod = podman("pod", "ps", "--format", "{{.Name}}", "--filter", f"name=^{deployment['metadata']['name']}-pod").stdout.split()[0]
    container = f"{pod}-{deployment['spec']['template']['spec']['containers'][0]['name']}"
    infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
    networks = json.loads(podman("inspect", "--format", "{{json .NetworkSettings.Networks}}", infra).stdout)
    return Pod(name=pod, container=container, ip=networks[network]["IPAddress"])


def probe_url(pod: Pod, container_spec: dict, probe: str) -> str:
    """The URL the kubelet would ask for `probe` of this container."""
    http_get = container_spec[probe]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container_spec["ports"]}
    port = ports.get(http_get["port"], http_get["port"])
    return f"http://{pod.ip}:{port}{http_get['path']}"


def process_status(container: str) -> dict[str, str]:
    status = podman("exec", container, "cat", "/proc/1/status").stdout
    return {name: value.strip() for name, _, value in (line.partition(":") for line in status.splitlines())}


def test_kube_play_serves_the_article_through_the_nginx_pod(app_image: str, nginx_image: str, figures: dict) -> None:
    objects = manifests()
    app = json.loads(json.dumps(objects[("Deployment", "rnn-app")]))
    cache = json.loads(json.dumps(objects[("Deployment", "rnn-cache")]))
    app_spec = app["spec"]["template"]["spec"]["containers"][0]
    # What `kustomize edit set image` does for a registry: the images this check runs.
    app_spec["image"] = app_image
    cache["spec"]["template"]["spec"]["containers"][0]["image"] = nginx_image
    network = f"rnn-kube-test-{os.getpid()}"
    podman("network", "create", network)
    played: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="rnn-kube-test-") as scratch:
        try:
            start = time.monotonic()
            app_pod = play([app], network, Path(scratch), played)
            ready_url = probe_url(app_pod, app_spec, "readinessProbe")
            ready_s = time.monotonic() - start + wait_until(lambda: get(ready_url, timeout=5).status == 200, READY_LIMIT_S, "the app pod's readiness probe")
            assert get(probe_url(app_pod, app_spec, "livenessProbe"), timeout=5).status == 200

            # The security context, as the app's process has it.
            status = process_status(app_pod.container)
            user = str(app["spec"]["template"]["spec"]["securityContext"]["runAsUser"])
            assert set(status["Uid"].split()) == {user}, f"the app runs as uids {status['Uid']}, not {user}"
            assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, f"capabilities left: {status['CapEff']}"
            assert status["NoNewPrivs"] == "1", "privilege escalation is not blocked"
            assert status["Seccomp"] == "2", "no seccomp filter (the runtime's default profile)"
            read_only = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", app_pod.container).stdout.strip()
            assert read_only == "true"
            written = podman("exec", app_pod.container, "python", "-c", "open('/tmp/probe', 'w')", check=False)
            assert written.returncode != 0 and "Read-only file system" in written.stderr
            environment = {variable["name"]: variable["value"] for variable in app_spec["env"]}
            in_container = podman("exec", app_pod.container, "printenv", "RNN_PROCESSES").stdout.strip()
            assert in_container == environment["RNN_PROCESSES"] == str(app_spec["resources"]["limits"]["cpu"])

            # The nginx pod, its upstream named as the Service is, reached through a host alias in place of cluster DNS.
            service = objects[("Service", "rnn-app")]
            cache["spec"]["template"]["spec"]["hostAliases"] = [{"ip": app_pod.ip, "hostnames": [service["metadata"]["name"]]}]
            config_map = objects[("ConfigMap", "rnn-cache")]
            cache_pod = play([config_map, cache], network, Path(scratch), played)
            cache_port = cache["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
            cache_url = f"http://{cache_pod.ip}:{cache_port}"
            wait_until(lambda: get(cache_url + "/healthz", timeout=5).status == 200, 60, "/healthz through the nginx pod")
            served_s = time.monotonic() - start
            page = get(cache_url + "/")
            assert page.status == 200 and b"Visualizing memorization in RNNs" in page.body
            version = get(cache_url + "/api/models").headers["x-answers-version"]
            assert version == get(f"http://{app_pod.ip}:{app_spec['ports'][0]['containerPort']}/api/models").headers["x-answers-version"]
            path = get_path("/api/connectivity", QUESTION, version)
            assert [get(cache_url + path).headers.get("x-cache-status") for _ in range(2)] == ["MISS", "HIT"]
            nginx_status = process_status(cache_pod.container)
            nginx_user = str(cache["spec"]["template"]["spec"]["securityContext"]["runAsUser"])
            assert set(nginx_status["Uid"].split()) == {nginx_user} and int(nginx_status["CapEff"], 16) == 0
            figures["kubernetes: podman kube play"] = (
                f"app pod ready through its readiness probe {ready_s:.1f} s after `podman kube play`; the article served "
                f"through the nginx pod {served_s:.1f} s after; app as uid {user} with no capabilities, no new privileges, "
                "the runtime's seccomp filter and a read-only root"
            )
        finally:
            for path in reversed(played):
                podman("kube", "down", str(path), check=False, timeout=120)
                for document in yaml.safe_load_all(path.read_text()):
                    if document["kind"] == "ConfigMap":
                        podman("volume", "rm", "--force", document["metadata"]["name"], check=False)
            podman("network", "rm", "--force", network, check=False)
