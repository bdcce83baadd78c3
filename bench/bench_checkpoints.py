"""Which checkpoints a bench measures: the given ones, the bundled ones, or random ones of the bundled size."""

from pathlib import Path

import torch

from app.settings import BUNDLED_CHECKPOINTS
from models.checkpoint import save_checkpoint
from models.net import BUNDLED, AutocompleteNet
from models.units import PAPER_UNITS
from models.vocab import SPECIAL_WORDS, Vocabulary


def random_bundled_checkpoints(directory: Path) -> Path:
    """Random-weight checkpoints at the bundled size: what serving costs does not depend on training."""
    torch.manual_seed(0)
    for unit in PAPER_UNITS:
        save_checkpoint(AutocompleteNet(BUNDLED.model_config(unit)), directory / f"{unit}.safetensors")
    Vocabulary(SPECIAL_WORDS + [f"w{index}" for index in range(BUNDLED.vocabulary_size)]).save(directory / "vocab.json")
    return directory


def choose_checkpoints(requested: Path | None, scratch: Path) -> Path:
    """`requested`, else the bundled checkpoints when all are there, else random ones written into `scratch`."""
    if requested is not None:
        return requested
    if all((BUNDLED_CHECKPOINTS / f"{unit}.safetensors").is_file() for unit in PAPER_UNITS) and (BUNDLED_CHECKPOINTS / "vocab.json").is_file():
        return BUNDLED_CHECKPOINTS
    print(f"{BUNDLED_CHECKPOINTS} has no complete set of checkpoints: using random weights at the bundled size")
    return random_bundled_checkpoints(scratch)
