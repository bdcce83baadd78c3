"""The Dockerfile is held to the Makefile, which CI runs (tests/image/checks.py builds and runs it too).

Every install command of the image is a line of `make install`'s recipe and its
entry command is `make run`'s, with `python` in place of `$(PY)`; beyond that
the image must run as a non-root user, expose 8000, check /healthz without curl,
configure only settings that exist, and copy only paths that exist.
"""

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
DOCKERIGNORE = ROOT / ".dockerignore"
# The Makefile runs the project's virtual environment's interpreter; the image has only one.
MAKE_PYTHON = "$(PY)"
IMAGE_PYTHON = "python"


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [instruction.arguments for instruction in self.instructions if instruction.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; comments dropped, backslash continuations joined."""
    logical_lines, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        logical_lines.append(current + stripped)
        current = ""
    stages: list[Stage] = []
    for line in logical_lines:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arguments, flags=re.IGNORECASE)
            assert match, f"unreadable FROM line: {line}"
            stages.append(Stage(base=match[1], name=match[2]))
        else:
            assert stages, f"instruction before the first FROM: {line}"
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages


def make_recipe(text: str, target: str) -> list[str]:
    """The recipe lines of `target`, with `$(PY)` read as the image's `python`."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if re.match(rf"{re.escape(target)}\s*:(?!=)", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace(MAKE_PYTHON, IMAGE_PYTHON))
    return recipe


def env_pairs(arguments: str) -> dict[str, str]:
    """`ENV A=1 B=2` (the key=value form) as a dict."""
    return dict(token.split("=", 1) for token in shlex.split(arguments))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def install_recipe() -> list[str]:
    return make_recipe(MAKEFILE.read_text(), "$(INSTALLED)")


def test_parsers_read_continuations_stages_and_recipes() -> None:
    stages = parse_dockerfile("# c\nFROM a AS one\nRUN x \\\n    y\nFROM b\nCMD [\"z\"]\n")
    assert [(stage.base, stage.name) for stage in stages] == [("a", "one"), ("b", None)]
    assert stages[0].arguments("RUN") == ["x y"]
    assert make_recipe("x: y\n\t$(PY) -m a\n\tb\n\nrun:\n\tc\n", "x") == ["python -m a", "b"]


def test_every_pip_install_of_the_image_is_a_make_install_line(runtime: Stage, install_recipe: list[str]) -> None:
    # A RUN may tidy up after its install in the same layer (`install && rm ...`); the install itself is a make line.
    pip_installs = [part for command in runtime.arguments("RUN") for part in command.split(" && ") if "pip install" in part]
    assert pip_installs, "the runtime stage installs nothing"
    for command in pip_installs:
        assert command in install_recipe
    # The runtime install: the project and its dependencies only, pinned by constraints.txt, without the test extra.
    assert "python -m pip install --quiet -c constraints.txt -e ." in pip_installs
    assert not any("[test]" in command for command in pip_installs)
    # ... and every other package make install adds (the vanilla RNN's unit), so the image serves every bundled model.
    make_installs = [command for command in install_recipe if "pip install" in command and "--upgrade pip" not in command]
    assert {command for command in make_installs if "[test]" not in command} <= set(pip_installs)


def test_front_end_stage_runs_make_installs_npm_ci_on_the_lockfile(stages: list[Stage], install_recipe: list[str]) -> None:
    (frontend,) = [stage for stage in stages[:-1] if stage.base.startswith("node:")]
    npm_commands = [command for command in frontend.arguments("RUN") if command.startswith("npm ")]
    assert npm_commands == [command for command in install_recipe if command.startswith("npm ")] == ["npm ci --no-audit --no-fund"]
    assert frontend.arguments("COPY") == ["package.json package-lock.json ./"]
    assert f"--from={frontend.name} /src/node_modules ./node_modules" in stages[-1].arguments("COPY")


def test_entry_command_is_make_run(runtime: Stage) -> None:
    (command,) = runtime.arguments("CMD")
    assert " ".join(json.loads(command)) == " ".join(make_recipe(MAKEFILE.read_text(), "run"))
    assert runtime.arguments("ENTRYPOINT") == []


def test_runtime_is_slim_python_non_root_on_port_8000(runtime: Stage) -> None:
    assert re.fullmatch(r"python:3\.1[1-9]-slim", runtime.base)
    (user,) = runtime.arguments("USER")
    assert user not in ("root", "0")
    assert any(re.search(rf"useradd .*\b{re.escape(user)}$", command) for command in runtime.arguments("RUN"))
    assert runtime.arguments("EXPOSE") == ["8000"]
    environment = {key: value for arguments in runtime.arguments("ENV") for key, value in env_pairs(arguments).items()}
    assert environment["RNN_HOST"] == "0.0.0.0"
    assert environment["RNN_PORT"] == "8000"


def test_healthcheck_asks_healthz_with_python_not_curl(runtime: Stage) -> None:
    (healthcheck,) = runtime.arguments("HEALTHCHECK")
    probe = healthcheck.split(" CMD ", 1)[1]
    assert probe.startswith("python -c ")
    assert "urllib.request.urlopen" in probe and "/healthz" in probe
    assert "curl" not in healthcheck and "wget" not in healthcheck


def test_every_configured_variable_is_a_setting(runtime: Stage) -> None:
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for arguments in runtime.arguments("ENV"):
        for name in env_pairs(arguments):
            if name.startswith(ENV_PREFIX):
                assert name in fields


def test_image_gets_cpu_torch_from_pytorchs_index(runtime: Stage) -> None:
    (torch_index,) = runtime.arguments("ARG")
    assert torch_index == "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu"
    environment = {key: value for arguments in runtime.arguments("ENV") for key, value in env_pairs(arguments).items()}
    assert environment["PIP_EXTRA_INDEX_URL"] == "${TORCH_INDEX_URL}"
    assert re.search(r"^torch==\d", (ROOT / "constraints.txt").read_text(), flags=re.MULTILINE)


def test_copied_paths_exist_and_local_environments_stay_out(stages: list[Stage]) -> None:
    for stage in stages:
        for arguments in stage.arguments("COPY"):
            if arguments.startswith("--from="):
                continue
            for source in arguments.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    ignored = set(DOCKERIGNORE.read_text().split())
    assert {".git", ".venv", "node_modules", "data", "runs", "artifacts"} <= ignored
    copied = {source for stage in stages for arguments in stage.arguments("COPY") for source in arguments.split()[:-1]}
    assert not copied & ignored, "the image copies a path .dockerignore leaves out"
