"""Every shell command of README.md, run as written (at small sizes), so that the README cannot drift from the code.

Each ```sh block runs in a scratch folder of its own, the current directory of its commands, with .venv's bin
first on PATH (what `. .venv/bin/activate` does). A block that does not prepare a dataset finds a tiny one under
`data/`, as a reader finds the one they prepared. A command is matched to the rule for how it begins: training
commands get arguments appended that shrink them (a 16-wide model, a few thousand characters), `prepare --corpus
text8` downloads a stand-in of text8.zip from loopback, the server is started and asked, curl asks a live server
of tiny models; commands that need the network, Docker or the test suite itself are named with the reason they
are not run. A command that no rule knows fails its block's test.
"""

import importlib.metadata
import json
import lzma
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from processes import free_port, stop_process

from training.corpus import TEXT8_MEMBER, TEXT8_SIZE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(sys.prefix) / "bin"
# Folders of the repository that no README command run here may write to.
GUARDED = [ROOT / "models" / "checkpoints", ROOT / "static" / "data" / "paper"]
PHRASES = ["the cat sat on the mat", "a dog ran in the park", "birds fly over green hills", "she reads books at night"]
# The README's example of "your own text"; the test writes it where the reader would have it.
MY_TEXT = "my-text.txt.xz"
TINY_TRAINING = ("--hidden-size", "16", "--max-chars", "30000", "--eval-every", "2", "--eval-sequences", "16")


@dataclass(frozen=True)
class Rule:
    """How the test runs the README commands that begin with `prefix`, and what each must leave behind."""

    prefix: tuple[str, ...]
    extra: tuple[str, ...] = ()  # appended arguments; "{text8_url}" is filled in
    output: str | None = None  # a regular expression the command's stdout must match
    files: str | None = None  # a glob under the scratch folder that must match a file afterwards
    skip: str | None = None  # why the test does not run it
    kind: str = "run"  # "run", "serve" (start it, ask it, stop it) or "curl" (ask the live server)


RULES = [
    Rule(("make", "install"), skip="the test runs in the environment it made"),
    Rule((".", ".venv/bin/activate"), skip="every command here runs with .venv's bin first on PATH, as after it"),
    Rule(("make", "run"), skip="serves until stopped; `RNN_CHECKPOINT_DIR=... python -m app` is started and asked here"),
    Rule(("make", "test"), skip="this test is part of it"),
    Rule(("docker", "compose"), skip="tests/deploy/checks.py (`make deploy-test`) brings deploy/compose.yaml up and loads it"),
    Rule(("docker",), skip="tests/image/checks.py (`make image-test`) builds and runs the image"),
    Rule(("git", "clone"), skip="needs the network; a stand-in of the clone lies where it would go"),
    Rule(("pip", "install", "-e", "examples/vanilla-rnn"), skip="`make install` ran it; test_the_vanilla_rnn_package_is_installed"),
    Rule(("python", "-m", "training", "prepare", "--corpus", "text8"), extra=("--url", "{text8_url}"),
         output=r"prepared data/text8: sequences train [\d,]+", files="data/download/text8.zip"),
    Rule(("python", "-m", "training", "prepare"), output=r"prepared data/\S+: sequences train [\d,]+"),
    Rule(("python", "-m", "training", "describe"), output=r"embedding\s+[\d,]+"),
    Rule(("python", "-m", "training", "train"), extra=TINY_TRAINING,
         output=r"training \w+ \(\w+, hidden size 16\) on CPU in (bf16 autocast|float32)", files="runs/*/*/log.csv"),
    Rule(("python", "-m", "training", "evaluate"), extra=("--max-sequences", "32", "--memory-positions", "100"),
         files="runs/*/*/evaluation.json"),
    Rule(("python", "-m", "training", "export"), output=r"wrote \S+metrics\.json"),
    Rule(("python", "-m", "training", "campaign"),
         extra=("--units", "gru", "--device", "cpu", "--max-minutes", "0.05", "--graph-units", "--snapshot-chars", "1",
                "--memory-positions", "100", "--runs", "campaign-runs", "--from-scratch"),
         output=r"campaign done", files="campaign/campaign.tar.gz"),
    Rule(("python", "-m", "training", "reference"), output=r"wrote \S+memory\.json", files="static/data/paper/LICENSE.md"),
    Rule(("torchrun",), extra=(*TINY_TRAINING, "--device", "cpu"), output=r"rank 1: weights digest \w+"),
    Rule(("RNN_CHECKPOINT_DIR=",), kind="serve"),
    Rule(("curl",), kind="curl"),
]


@dataclass(frozen=True)
class Block:
    heading: str
    commands: tuple[str, ...]


def shell_blocks(text: str) -> list[Block]:
    """The README's ```sh blocks under their headings; a command is a line with its backslash continuations."""
    blocks, heading, lines = [], "", iter(text.splitlines())
    for line in lines:
        if line.startswith("#"):
            heading = line.lstrip("# ")
        elif line.startswith("```") and line.strip() != "```sh":
            for line in lines:  # another language's block: its '#' lines are not headings
                if line.startswith("```"):
                    break
        elif line.strip() == "```sh":
            commands, current = [], ""
            for line in lines:
                if line.startswith("```"):
                    break
                current += line.removesuffix("\\")
                if not line.endswith("\\"):
                    if shlex.split(current, comments=True):
                        commands.append(current)
                    current = ""
            blocks.append(Block(heading, tuple(commands)))
    return blocks


BLOCKS = shell_blocks(README.read_text())


def rule_for(args: list[str]) -> Rule:
    """The rule with the longest prefix that `args` begins with (an assignment prefix matches up to its `=`)."""
    def matches(rule: Rule) -> bool:
        return len(args) >= len(rule.prefix) and all(
            arg.startswith(part) if part.endswith("=") else arg == part for part, arg in zip(rule.prefix, args))
    known = [rule for rule in RULES if matches(rule)]
    if not known:
        raise AssertionError(f"README command {shlex.join(args)!r} has no rule in tests/test_readme.py: add one")
    return max(known, key=lambda rule: len(rule.prefix))


def tiny_corpus_text(words: int = 20_000) -> str:
    phrases = (PHRASES[(index * 7) % len(PHRASES)] for index in range(words // 5))
    return " ".join(phrases)


def command_env() -> dict[str, str]:
    """The environment `. .venv/bin/activate` gives a shell, one thread per process (tests share the machine)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": sys.prefix, "OMP_NUM_THREADS": "1"}


def text8_stand_in(path: Path) -> None:
    """A zip of text8.zip's exact size whose first member, `text8`, is a tiny corpus; a stored member pads it out."""
    def write(padding: int) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(TEXT8_MEMBER, tiny_corpus_text(), compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr("padding", bytes(padding), compress_type=zipfile.ZIP_STORED)
    write(0)
    write(TEXT8_SIZE - path.stat().st_size)
    assert path.stat().st_size == TEXT8_SIZE


def paper_repository_stand_in(clone: Path) -> None:
    """The layout of a clone of distillpub/post--memorization-in-rnns: the project's compact copy of its rows under
    public/data/ (they keep the published keys), a validation curve in its CSV columns, and its LICENSE.md."""
    data = clone / "public" / "data"
    data.mkdir(parents=True)
    for unit in ("gru", "lstm", "nlstm"):
        rows = json.loads((ROOT / "static" / "data" / "paper" / f"{unit}.json").read_text())["positions"]
        (data / f"connectivity_{unit}.json").write_text(json.dumps(rows))
    curves = json.loads((ROOT / "static" / "data" / "paper" / "training.json").read_text())["validation"]
    csv_rows = ["model,dataset,sec,step,loss,loss smooth"]
    csv_rows += [f"{model},valid,0,{step},{loss},{loss}" for model, points in curves.items() for step, loss in points]
    (data / "autocomplete-training.csv").write_text("\n".join(csv_rows) + "\n")
    shutil.copyfile(ROOT / "static" / "data" / "paper" / "LICENSE.md", clone / "LICENSE.md")


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parent of every block's folder: the tiny dataset, the paper repository's stand-in at ../post--memorization-in-rnns."""
    root = tmp_path_factory.mktemp("readme")
    (root / "tiny.txt").write_text(tiny_corpus_text())
    subprocess.run([sys.executable, "-m", "training", "prepare", "--corpus", str(root / "tiny.txt"), "--out", str(root / "tiny"),
                    "--vocabulary-size", "30"], cwd=root, env=command_env(), check=True, capture_output=True, timeout=120)
    paper_repository_stand_in(root / "post--memorization-in-rnns")
    return root


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the test's output is the README's commands."""


@pytest.fixture(scope="module")
def text8_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """http://127.0.0.1:<port>/text8.zip, serving the stand-in."""
    folder = tmp_path_factory.mktemp("text8")
    text8_stand_in(folder / "text8.zip")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/text8.zip"
    server.shutdown()


def guarded_files() -> dict[Path, tuple[int, int]]:
    return {path: (path.stat().st_mtime_ns, path.stat().st_size) for folder in GUARDED for path in folder.glob("*")}


def serve(args: list[str], cwd: Path) -> str:
    """Start `args` (`RNN_CHECKPOINT_DIR=... python -m app`) on a free port, check it serves that folder's models, stop it."""
    assignments = dict(arg.split("=", 1) for arg in args if re.match(r"^[A-Z_]+=", arg))
    command = args[len(assignments):]
    port = free_port()
    env = {**command_env(), **assignments, "RNN_PORT": str(port), "RNN_PROCESSES": "1"}
    log = cwd / "server.log"
    # Started as itself, not under a shell, so that terminate() reaches the server; its log goes to a file, which never fills.
    with log.open("w") as output:
        server = subprocess.Popen([shutil.which(command[0], path=env["PATH"]) or command[0], *command[1:]], cwd=cwd, env=env,
                                  stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, f"{shlex.join(args)} exited with {server.returncode}: {log.read_text()[-2000:]}"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{shlex.join(args)} did not answer /healthz within 120 s"
                time.sleep(0.2)
            served = {model["id"] for model in httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=10).json()}
            folder = cwd / assignments["RNN_CHECKPOINT_DIR"]
            assert served == {path.stem for path in folder.glob("*.safetensors")} and served
            return f"serves {', '.join(sorted(served))}"
        finally:
            stop_process(server, timeout=30)


def run_command(command: str, cwd: Path, text8_url: str, live_server: str | None) -> str:
    """Run one README command by its rule; returns what it did, for the block's log."""
    args = shlex.split(command, comments=True)
    rule = rule_for(args)
    if rule.skip:
        return f"not run: {rule.skip}"
    if rule.kind == "serve":
        return serve(args, cwd)
    if rule.kind == "curl":
        assert live_server is not None
        args = [arg.replace("http://127.0.0.1:8000", live_server) for arg in args]
    args += [part.format(text8_url=text8_url) for part in rule.extra]
    result = subprocess.run(["bash", "-c", shlex.join(args)], cwd=cwd, env=command_env(), capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{shlex.join(args)} exited with {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    if rule.kind == "curl":  # curl -s exits 0 on a 4xx too: the answer must be JSON and no error
        answer = json.loads(result.stdout)
        assert "detail" not in answer and (answer.get("models") or answer.get("rows")), answer
    if rule.output:
        assert re.search(rule.output, result.stdout), f"{shlex.join(args)} printed no match for {rule.output!r}:\n{result.stdout[-2000:]}"
    if rule.files:
        assert list(cwd.glob(rule.files)), f"{shlex.join(args)} left nothing matching {rule.files} in {cwd}"
    return "ok"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{index}-{block.heading}" for index, block in enumerate(BLOCKS)])
def test_readme_block_runs_as_written(block: Block, scratch_root: Path, text8_url: str, request: pytest.FixtureRequest):
    scratch = scratch_root / f"block-{BLOCKS.index(block)}"
    scratch.mkdir()
    if not any(shlex.split(command, comments=True)[:4] == ["python", "-m", "training", "prepare"] for command in block.commands):
        shutil.copytree(scratch_root / "tiny", scratch / "data" / "tiny")
    if any(MY_TEXT in command for command in block.commands):
        with lzma.open(scratch / MY_TEXT, "wt") as file:
            file.write(tiny_corpus_text())
    live = request.getfixturevalue("live_server") if any(command.startswith("curl") for command in block.commands) else None
    before = guarded_files()
    log = []
    for command in block.commands:
        began = time.monotonic()
        outcome = run_command(command, scratch, text8_url, live)
        log.append(f"{time.monotonic() - began:6.1f} s  {command.split('  #')[0].strip()}: {outcome}")
    assert guarded_files() == before, "a README command wrote into the repository's models/checkpoints or static/data/paper"
    print(f"\n[{block.heading}]\n" + "\n".join(log))


def test_every_rule_is_used_by_the_readme():
    """A rule whose command left the README goes with it."""
    used = {rule_for(shlex.split(command, comments=True)) for block in BLOCKS for command in block.commands}
    assert not [rule.prefix for rule in RULES if rule not in used]


def test_the_vanilla_rnn_package_is_installed():
    """What the README's `pip install -e examples/vanilla-rnn` does, and `make install` did."""
    units = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="rnn_connectivity.units")}
    assert units.get("rnn") == "vanilla_rnn:UNIT"
