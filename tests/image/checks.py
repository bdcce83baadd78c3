"""The container image, built from the unmodified Dockerfile and run for real with podman.

Run by `make image-test` (and by CI after `make test`); not collected by a plain `pytest`, since
the file name does not start with `test_`. What it does:

1. Makes sure podman runs: installs Debian's podman, runc and mmdebstrap when they are missing
   (as root with apt-get), and runs every podman command with tests/image/containers.conf. It skips,
   saying why, only where podman cannot be installed or cannot run at all.
2. Builds a stand-in for each base image the Dockerfile names (`FROM node:20-slim`,
   `FROM python:3.11-slim`) from Debian packages with mmdebstrap, tagged with exactly that name, so
   the Dockerfile builds unmodified without a registry of images. Stand-ins already present with the
   same recipe are reused; they, and the image under the name KEPT_IMAGE (for `make deploy-test`,
   tests/deploy/checks.py, which runs it behind a caching proxy), are what this check leaves behind.
3. Builds the image with `podman build --pull=never`. What exists only because of the build machine
   comes in as build-time mounts and a build argument, never as a line of the Dockerfile: the
   machine's certificate bundle (and a pip.conf naming it), and, where a local torch wheel folder
   exists (RNN_IMAGE_WHEELS, default /opt/wheels), a package index of it passed as TORCH_INDEX_URL.
4. Runs the image and checks it as a reader and an operator would, against `python -m app` (what
   `make run` runs) on the host for the API answers. Ports are published on 127.0.0.1 only.

Image size, build time and the time from `podman run` to healthy are printed at the end.
"""

import hashlib
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from processes import free_port, stop_process

from app.registry import checkpoint_paths

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONTAINERS_CONF = HERE / "containers.conf"
CHECKPOINTS = ROOT / "models" / "checkpoints"
# Every shipped checkpoint in the server's order, the plug-in units' too: the image installs their packages (examples/) as make install does.
MODELS = tuple(path.stem for path in checkpoint_paths(CHECKPOINTS))
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
WHEELS = Path(os.environ.get("RNN_IMAGE_WHEELS", "/opt/wheels"))
APT_PACKAGES = ("podman", "buildah", "runc", "mmdebstrap")
APP_DIR = "/srv/rnn-connectivity"
IMAGE_USER_UID = 10001
# The bounds this check holds the image to; the goals are 1.2 GB and 20 s.
MAX_IMAGE_BYTES = 1_200_000_000
HEALTHY_GOAL_S = 20.0
HEALTHY_LIMIT_S = 60.0  # the HEALTHCHECK's --start-period: later than this, an orchestrator would restart it
STOP_LIMIT_S = 10.0
STAND_IN_LABEL = "org.rnn-connectivity.stand-in"
# The image this check built, kept under this name for `make deploy-test`; the next build takes the name over.
KEPT_IMAGE = "localhost/rnn-connectivity:image-test"
EATMYDATA_HOOKS = Path("/usr/share/mmdebstrap/hooks/eatmydata")
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)


@dataclass(frozen=True)
class StandIn:
    """How to make a local stand-in of an official base image from Debian bookworm's packages."""

    packages: tuple[str, ...]
    hooks: tuple[str, ...]
    changes: tuple[str, ...]

    def recipe_hash(self) -> str:
        text = json.dumps([self.packages, self.hooks, self.changes, DPKG_EXCLUDES])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


STAND_INS = {
    # The official image has node and npm on PATH; Debian's Node.js is 18, which runs `npm ci` alike.
    "docker.io/library/node:20-slim": StandIn(packages=("nodejs", "npm"), hooks=(), changes=('CMD ["node"]',)),
    # The official image has python, pip and site-packages under /usr/local, and no PEP 668 marker:
    # a virtual environment at /usr/local over Debian's Python 3.11 gives the same.
    "docker.io/library/python:3.11-slim": StandIn(
        packages=("python3", "python3-venv", "ca-certificates"),
        hooks=('chroot "$1" python3 -m venv /usr/local',),
        changes=(
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
        ),
    ),
}

# The same requests go to the container and to the app on the host; their answers must be equal.
TEXT = "The quick brown fox jumps over the lazy dog"


def api_requests() -> list:
    requests = [pytest.param("/api/autocomplete", {"text": TEXT, "top_k": 3}, id="autocomplete-every-model")]
    for model in MODELS:
        requests += [
            pytest.param(
                "/api/autocomplete", {"text": TEXT + " and", "models": [model], "top_k": 5, "positions": "last"}, id=f"autocomplete-last-{model}"
            ),
            pytest.param("/api/connectivity", {"text": TEXT, "model": model}, id=f"connectivity-gradient-{model}"),
            pytest.param(
                "/api/connectivity",
                {"text": TEXT, "model": model, "positions": "all", "method": "gradient_x_input"},
                id=f"connectivity-gradient_x_input-all-{model}",
            ),
            pytest.param(
                "/api/connectivity",
                {"text": TEXT, "model": model, "positions": [5, 20], "word": "the", "method": "integrated_gradients"},
                id=f"connectivity-integrated_gradients-{model}",
            ),
        ]
    return requests


# ---------------------------------------------------------------------------------------------------
# Plumbing


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run podman; on failure (check=True) fail the test with the command and its output."""
    result = subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
    return result


def http(url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, bytes, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def wait_for_healthz(url: str, timeout: float, alive=lambda: True) -> float:
    """Seconds until GET /healthz answers 200; fails after `timeout` or when `alive()` turns false."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not alive():
            pytest.fail(f"{url}: the server exited before /healthz answered", pytrace=False)
        try:
            if http(url + "/healthz", timeout=2)[0] == 200:
                return time.monotonic() - start
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/healthz did not answer 200 within {timeout:.0f} s", pytrace=False)


def dockerfile_bases() -> list[str]:
    """The external base images of the Dockerfile's FROM lines (stage names excluded)."""
    bases, stages = [], set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, flags=re.IGNORECASE)
        if match:
            if match[1] not in stages:
                bases.append(match[1])
            if match[2]:
                stages.add(match[2])
    return bases


def qualified(name: str) -> str:
    """`python:3.11-slim` as podman stores it: docker.io/library/python:3.11-slim."""
    if "/" not in name:
        name = "library/" + name
    if "." not in name.split("/")[0] and name.split("/")[0] != "localhost":
        name = "docker.io/" + name
    return name


def container_logs(name: str) -> str:
    result = podman("logs", name, check=False)
    return (result.stdout + result.stderr)[-4000:]


# ---------------------------------------------------------------------------------------------------
# Fixtures: podman, the base stand-ins, the image, the host server, the running container


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """podman installed and able to run; skip only where it cannot be had or cannot run at all."""
    missing = [tool for tool in ("podman", "mmdebstrap", "runc") if shutil.which(tool) is None]
    if missing:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip(f"podman cannot run here: {', '.join(missing)} missing and no apt-get as root to install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", *APT_PACKAGES]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}", pytrace=False)
    result = subprocess.run(["podman", "info"], env=podman_env(), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.skip(f"podman cannot run here (podman info exited {result.returncode}): {result.stderr.strip()[-500:]}")


def build_stand_ins(names: list[str], recipes: dict[str, StandIn] = STAND_INS) -> None:
    """mmdebstrap each stand-in into a tarball (in parallel: mostly downloads), then podman import it.

    tests/deploy/checks.py builds its nginx stand-in with this too, from its own `recipes`.
    """
    with tempfile.TemporaryDirectory(prefix="rnn-image-bases-") as scratch:
        jobs = []
        for name in names:
            stand_in = recipes[name]
            tarball = Path(scratch) / (re.sub(r"\W", "_", name) + ".tar")
            command = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(stand_in.packages)]
            if EATMYDATA_HOOKS.is_dir():  # dpkg without fsync: the same files, sooner
                command.append(f"--hook-dir={EATMYDATA_HOOKS}")
            command += [f"--dpkgopt={option}" for option in DPKG_EXCLUDES]
            command += [f"--customize-hook={hook}" for hook in stand_in.hooks]
            command += ["bookworm", str(tarball)]
            log = Path(scratch) / (tarball.name + ".log")
            with log.open("w") as output:
                jobs.append((name, tarball, log, subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)))
        for name, tarball, log, process in jobs:
            code = process.wait(timeout=1200)
            if code != 0:
                pytest.fail(f"mmdebstrap for the stand-in of {name} exited {code}:\n{log.read_text()[-3000:]}", pytrace=False)
            stand_in = recipes[name]
            changes = [*stand_in.changes, f"LABEL {STAND_IN_LABEL}={stand_in.recipe_hash()}"]
            podman("import", *[f"--change={change}" for change in changes], str(tarball), name, timeout=600)


@pytest.fixture(scope="session")
def base_images(podman_ready: None, figures: dict) -> list[str]:
    """Every base image of the Dockerfile present under its own name: reused when present, else a stand-in."""
    bases = [qualified(base) for base in dockerfile_bases()]
    unknown = [base for base in bases if base not in STAND_INS]
    assert not unknown, f"the Dockerfile uses base images this check has no stand-in recipe for: {unknown}"
    to_build, outdated = [], []
    for base in bases:
        if podman("image", "exists", base, check=False).returncode == 0:
            label = podman("image", "inspect", "--format", f'{{{{index .Labels "{STAND_IN_LABEL}"}}}}', base).stdout.strip()
            # An official image (no label) or a stand-in of the current recipe is used as it is.
            if label in ("", "<no value>", STAND_INS[base].recipe_hash()):
                continue
            outdated.append(podman("image", "inspect", "--format", "{{.Id}}", base).stdout.strip())
        to_build.append(base)
    start = time.monotonic()
    if to_build:
        build_stand_ins(to_build)
        for old in outdated:  # a stand-in of an earlier recipe, now without a name
            podman("rmi", old, check=False)
        figures["base stand-ins built"] = f"{', '.join(to_build)} in {time.monotonic() - start:.0f} s"
    else:
        figures["base stand-ins built"] = "none (reused those present)"
    return bases


def torch_index(directory: Path, wheels: list[Path]) -> None:
    """A PEP 503 package index of the wheels, linking them where the build mounts them (/wheels)."""
    projects: dict[str, list[str]] = {}
    for wheel in wheels:
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        projects.setdefault(project, []).append(wheel.name)
    for project, files in projects.items():
        (directory / project).mkdir(parents=True)
        links = "".join(f'<a href="file:///wheels/{html.escape(name)}">{html.escape(name)}</a>\n' for name in files)
        (directory / project / "index.html").write_text(f"<!doctype html><html><body>\n{links}</body></html>\n")


@pytest.fixture(scope="session")
def image(base_images: list[str], figures: dict) -> Iterator[str]:
    """The image built from the repository's Dockerfile, removed afterwards with its intermediate images."""
    tag = f"localhost/rnn-connectivity-image-test:{os.getpid()}"
    before = set(podman("images", "--all", "--quiet", "--no-trunc").stdout.split())
    with tempfile.TemporaryDirectory(prefix="rnn-image-build-") as scratch:
        # Docker's image format, as `docker build` makes: podman's default OCI format has no HEALTHCHECK.
        options = ["--format=docker", "--pull=never", "--layers=false", "--rm", "--force-rm", "-t", tag, "-f", str(ROOT / "Dockerfile")]
        if CA_BUNDLE.is_file():
            pip_conf = Path(scratch) / "pip.conf"
            pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")
            options += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
        wheels = sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else []
        if wheels:
            index = Path(scratch) / "index"
            torch_index(index, wheels)
            options += ["-v", f"{WHEELS}:/wheels:ro", "-v", f"{index}:/torch-index:ro", "--build-arg", "TORCH_INDEX_URL=file:///torch-index/"]
        start = time.monotonic()
        result = podman("build", *options, str(ROOT), check=False, timeout=1800)
        build_s = time.monotonic() - start
    try:
        if result.returncode != 0:
            pytest.fail(f"podman build of the Dockerfile failed (exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
        size = int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        figures["build time"] = f"{build_s:.0f} s (podman build, no layer cache; base images present)"
        figures["image size"] = f"{size / 1e9:.2f} GB ({size:,} bytes; goal <= {MAX_IMAGE_BYTES / 1e9:.1f} GB)"
        figures["_image_bytes"] = size
        podman("tag", tag, KEPT_IMAGE)
        yield tag
    finally:
        for container in podman("ps", "--all", "--quiet", "--filter", f"ancestor={tag}", check=False).stdout.split():
            podman("rm", "--force", "--time", "0", container, check=False)
        podman("rmi", "--force", tag, check=False)
        after = set(podman("images", "--all", "--quiet", "--no-trunc", "--filter", "dangling=true", check=False).stdout.split())
        leftovers = sorted(after - before)
        if leftovers:
            podman("rmi", "--force", *leftovers, check=False)


@pytest.fixture(scope="session")
def host_server() -> Iterator[str]:
    """`make run`'s command, `python -m app` of this checkout, on a loopback port."""
    port = free_port()
    env = {**os.environ, "RNN_HOST": "127.0.0.1", "RNN_PORT": str(port), "RNN_LOG_LEVEL": "warning"}
    env.pop("RNN_CHECKPOINT_DIR", None)
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_healthz(url, timeout=120, alive=lambda: process.poll() is None)
        except BaseException:
            log.seek(0)
            print(f"python -m app on the host:\n{log.read()[-3000:]}")
            raise
        yield url
    finally:
        stop_process(process)
        log.close()


@dataclass
class Container:
    name: str
    url: str
    healthy_s: float
    healthz_s: float


def run_container(image: str, name: str, *options: str) -> tuple[str, float, float]:
    """`podman run -d`, port published on loopback only: (url, monotonic start, seconds until /healthz answered)."""
    port = free_port()
    start = time.monotonic()
    podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000", *options, image)
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        return podman("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip() == "true"

    try:
        healthz_s = wait_for_healthz(url, timeout=HEALTHY_LIMIT_S * 2, alive=alive)
    except BaseException:
        print(container_logs(name))
        raise
    return url, start, healthz_s


@pytest.fixture(scope="session")
def container(image: str, figures: dict) -> Iterator[Container]:
    """The image as a reader's server runs it, with a read-only root file system and no tmpfs."""
    name = f"rnn-image-test-{os.getpid()}"
    try:
        url, start, healthz_s = run_container(image, name, "--read-only", "--read-only-tmpfs=false")
        while True:
            # The HEALTHCHECK instruction's own command, as podman runs it.
            if podman("healthcheck", "run", name, check=False).returncode == 0:
                healthy_s = time.monotonic() - start
                break
            if time.monotonic() - start > HEALTHY_LIMIT_S * 2:
                pytest.fail(f"podman healthcheck run never reported healthy:\n{container_logs(name)}", pytrace=False)
            time.sleep(0.5)
        load = Path("/proc/loadavg").read_text().split()[:3]
        # A scheduler (Docker, or podman with systemd) probes every interval from the start, so it
        # sees the container healthy at the first probe after the probe can pass.
        healthcheck = json.loads(podman("inspect", "--format", "{{json .Config.Healthcheck}}", name).stdout)
        interval_s = healthcheck.get("Interval", 0) / 1e9
        scheduled_s = math.ceil(healthy_s / interval_s) * interval_s if interval_s else float("nan")
        figures["time to healthy"] = (
            f"{healthy_s:.1f} s from podman run until the HEALTHCHECK command passes (/healthz answered after {healthz_s:.1f} s); "
            f"with its {interval_s:.0f} s interval a scheduler reports healthy at {scheduled_s:.0f} s "
            f"(goal <= {HEALTHY_GOAL_S:.0f} s: {'met' if scheduled_s <= HEALTHY_GOAL_S else 'NOT met'}; "
            f"load average then {' '.join(load)} on {os.cpu_count()} cores)"
        )
        yield Container(name=name, url=url, healthy_s=healthy_s, healthz_s=healthz_s)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def checkpoint_copy(directory: Path, names: list[str]) -> Path:
    """A folder readable by the image's user with copies of some bundled checkpoint files."""
    directory.mkdir(mode=0o755)
    for name in names:
        shutil.copyfile(CHECKPOINTS / name, directory / name)
        (directory / name).chmod(0o644)
    return directory


# ---------------------------------------------------------------------------------------------------
# Checks, in order: the last one stops the shared container.


def test_image_builds_within_size_goal(image: str, figures: dict) -> None:
    size = figures["_image_bytes"]
    assert size <= MAX_IMAGE_BYTES, f"image is {size / 1e9:.2f} GB, over the {MAX_IMAGE_BYTES / 1e9:.1f} GB goal"


def test_build_time_mounts_leave_nothing_in_the_image(image: str) -> None:
    # podman 4.3 (Debian 12) leaves an empty file or folder where a build-time mount was; nothing more may remain.
    script = 'for p in /wheels /torch-index /etc/pip.conf; do if [ -d $p ]; then [ -z "$(ls -A $p)" ] || echo $p; elif [ -s $p ]; then echo $p; fi; done'
    leftovers = podman("run", "--rm", "--entrypoint", "sh", image, "-c", script).stdout.split()
    assert leftovers == [], f"build-time mounts left content in the image: {leftovers}"


def test_healthz_answers_and_healthcheck_reports_healthy(container: Container) -> None:
    status, body, _ = http(container.url + "/healthz")
    assert status == 200, f"/healthz answered {status}: {body[:300]!r}"
    assert json.loads(body) == {"status": "ok", "models": list(MODELS)}, f"/healthz: {body!r}"
    result = podman("healthcheck", "run", container.name, check=False)
    assert result.returncode == 0, f"podman healthcheck run: exit {result.returncode}, {result.stdout} {result.stderr}"
    assert result.stdout.strip() in ("", "healthy"), f"podman healthcheck run said: {result.stdout!r}"
    health = podman("inspect", "--format", "{{.State.Health.Status}}", container.name).stdout.strip()
    assert health == "healthy", f"podman inspect reports health {health!r}"
    assert container.healthy_s <= HEALTHY_LIMIT_S, f"healthy only after {container.healthy_s:.1f} s, beyond the {HEALTHY_LIMIT_S:.0f} s start period"


def test_app_is_pid_1_as_the_unprivileged_user(container: Container, image: str) -> None:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "reader", f"image USER is {user!r}"
    status = podman("exec", container.name, "cat", "/proc/1/status").stdout
    uids = re.search(r"^Uid:\s+(.*)$", status, flags=re.MULTILINE)[1].split()
    assert set(uids) == {str(IMAGE_USER_UID)}, f"PID 1 runs with uids {uids}, not only {IMAGE_USER_UID} (reader)"
    cmdline = podman("exec", container.name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[:3] == ["python", "-m", "app"], f"PID 1 is {cmdline}, not `python -m app` (signals would not reach the app)"


def test_article_is_served_with_d3_from_the_images_node_modules(container: Container) -> None:
    status, page, headers = http(container.url + "/")
    assert status == 200 and headers.get("content-type", "").startswith("text/html"), f"/ answered {status} {headers.get('content-type')}"
    page = page.decode()
    assert "Visualizing memorization in RNNs" in page and "is not built yet" not in page, "/ serves the placeholder, not the article"
    assert '<script src="/vendor/d3/d3.min.js"' in page, "the article no longer loads /vendor/d3/d3.min.js"
    status, served, _ = http(container.url + "/vendor/d3/d3.min.js")
    assert status == 200, f"/vendor/d3/d3.min.js answered {status}"
    in_image = podman("exec", container.name, "cat", f"{APP_DIR}/node_modules/d3/dist/d3.min.js").stdout.encode()
    assert served == in_image and len(served) > 100_000, "/vendor/d3/d3.min.js is not the image's node_modules/d3/dist/d3.min.js"
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/d3"]["version"]
    installed = json.loads(podman("exec", container.name, "cat", f"{APP_DIR}/node_modules/d3/package.json").stdout)["version"]
    assert installed == locked, f"the image has d3 {installed}, package-lock.json pins {locked}"
    assets = sorted(set(re.findall(r'(?:src|href)="(/(?:static|vendor)/[^"]+)"', page)))
    failing = [(asset, http(container.url + asset)[0]) for asset in assets]
    failing = [(asset, status) for asset, status in failing if status != 200]
    assert assets and not failing, f"the article's own scripts and styles do not all load: {failing}"


@pytest.mark.parametrize("path, body", api_requests())
def test_api_answers_equal_the_host_app(container: Container, host_server: str, path: str, body: dict) -> None:
    in_container = http(container.url + path, body)
    on_host = http(host_server + path, body)
    assert in_container[0] == 200, f"container {path}: {in_container[0]} {in_container[1][:300]!r}"
    assert on_host[0] == 200, f"host {path}: {on_host[0]} {on_host[1][:300]!r}"
    assert same_answer(json.loads(in_container[1]), json.loads(on_host[1])), f"{path} {body}: the container's answer differs from the host app's"


def same_answer(ours: object, theirs: object) -> bool:
    """Equal, numbers to float32 rounding: a keystroke resumes from a cached state where its process has one, and a unit
    with a parallel form (minGRU, the mLSTM) gives the step and the whole text the same values only to rounding. The
    mLSTM's exponential input gate and normaliser amplify it: its step and parallel probabilities for TEXT + " and"
    differ by 1.8e-5 of their value (minGRU's by 2.9e-6), hence 1e-4."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(same_answer(ours[key], theirs[key]) for key in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(same_answer(a, b) for a, b in zip(ours, theirs))
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-4, abs_tol=1e-9)
    return ours == theirs


def test_root_file_system_is_read_only(container: Container) -> None:
    read_only = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", container.name).stdout.strip()
    assert read_only == "true", "the container under test does not run with --read-only"
    for path in (f"{APP_DIR}/probe", "/tmp/probe", "/home/reader/probe"):
        result = podman("exec", container.name, "python", "-c", f"open({path!r}, 'w')", check=False)
        assert result.returncode != 0 and "Read-only file system" in result.stderr, f"{path} is writable: {result.stderr[-300:]}"
    # Every check above ran against this container: the app needs no writable path, not even /tmp.


def test_mounted_checkpoint_folder_is_served(image: str, host_server: str, tmp_path: Path) -> None:
    folder = checkpoint_copy(tmp_path / "checkpoints", ["gru.safetensors", "vocab.json", "metrics.json"])
    name = f"rnn-image-test-{os.getpid()}-mounted"
    try:
        url, _, _ = run_container(
            image, name, "--read-only", "--volume", f"{folder}:/checkpoints:ro", "--env", "RNN_CHECKPOINT_DIR=/checkpoints"
        )
        assert json.loads(http(url + "/healthz")[1])["models"] == ["gru"], "the container does not serve the mounted folder's one model"
        body = {"text": TEXT, "models": ["gru"]}
        assert json.loads(http(url + "/api/autocomplete", body)[1]) == json.loads(http(host_server + "/api/autocomplete", body)[1])
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_truncated_checkpoint_stops_start_up_naming_the_file(image: str, tmp_path: Path) -> None:
    folder = checkpoint_copy(tmp_path / "checkpoints", ["gru.safetensors", "lstm.safetensors", "vocab.json"])
    data = (folder / "lstm.safetensors").read_bytes()
    (folder / "lstm.safetensors").write_bytes(data[: len(data) // 2])
    name = f"rnn-image-test-{os.getpid()}-truncated"
    try:
        result = podman(
            "run", "--name", name, "--read-only", "--volume", f"{folder}:/checkpoints:ro", "--env", "RNN_CHECKPOINT_DIR=/checkpoints",
            image, check=False, timeout=120,
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"the container started (exit 0) with a truncated checkpoint:\n{output[-2000:]}"
        assert "/checkpoints/lstm.safetensors" in output, f"the start-up failure does not name the file:\n{output[-2000:]}"
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_podman_stop_ends_it_within_10_s(container: Container, figures: dict) -> None:
    start = time.monotonic()
    podman("stop", "--time", str(int(STOP_LIMIT_S)), container.name, timeout=60)
    stop_s = time.monotonic() - start
    code = int(podman("inspect", "--format", "{{.State.ExitCode}}", container.name).stdout)
    figures["podman stop"] = f"{stop_s:.1f} s, exit code {code}"
    assert stop_s < STOP_LIMIT_S, f"podman stop took {stop_s:.1f} s: SIGTERM did not end the app"
    assert code == 0, f"the app exited {code} on SIGTERM (137 means it was killed)\n{container_logs(container.name)}"
