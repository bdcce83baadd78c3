"""The checkpoint format, a public interface (see README, "Checkpoint format").

One safetensors file per model, `<dir>/<id>.safetensors`, with metadata
`format` = `rnn-connectivity/1` and `config` = the ModelConfig as JSON; beside
them `vocab.json`. Tensor names and layouts are PyTorch's own for GRU and LSTM.
No pickle is involved anywhere.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from models.net import AutocompleteNet, ModelConfig
from models.units import UnknownUnitError
from models.vocab import Vocabulary

FORMAT = "rnn-connectivity/1"
VOCAB_FILE = "vocab.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and what is wrong."""


def save_checkpoint(net: AutocompleteNet, path: Path, dtype: torch.dtype = torch.float32, metadata: dict | None = None) -> None:
    """Write `net` as safetensors, storing floats as `dtype` (float16 keeps the repository small)."""
    tensors = {name: tensor.detach().to(dtype).contiguous() for name, tensor in net.state_dict().items()}
    header = {"format": FORMAT, "config": json.dumps(net.config.to_dict())}
    header.update({key: json.dumps(value) for key, value in (metadata or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=header)
    # safetensors creates the file readable by its owner only; a server running as another user must read it too.
    path.chmod(0o644)


def read_metadata(path: Path) -> dict:
    """The safetensors metadata of a checkpoint, checked to be ours."""
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: metadata 'format' is {metadata.get('format')!r}, expected {FORMAT!r}")
    return metadata


def read_config(path: Path) -> ModelConfig:
    """The ModelConfig a checkpoint names, read from its header alone; its unit must be installed."""
    metadata = read_metadata(path)
    try:
        return ModelConfig(**json.loads(metadata["config"]))
    except UnknownUnitError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: metadata 'config' is invalid ({error})") from None


def load_checkpoint(path: Path) -> AutocompleteNet:
    """Rebuild the network stored at `path`, in float32 and eval mode.

    Fails at once, naming the tensor and both shapes, if the file disagrees with its own config.
    """
    path = Path(path)
    net = AutocompleteNet(read_config(path))
    expected = net.state_dict()
    try:
        with safe_open(str(path), framework="pt") as file:
            names = set(file.keys())
            missing = sorted(set(expected) - names)
            unexpected = sorted(names - set(expected))
            if missing or unexpected:
                raise CheckpointError(f"{path}: missing tensors {missing}, unexpected tensors {unexpected}")
            state = {}
            for name, target in expected.items():
                tensor = file.get_tensor(name)
                if tensor.shape != target.shape:
                    raise CheckpointError(
                        f"{path}: tensor {name!r} has shape {list(tensor.shape)}, config needs {list(target.shape)}"
                    )
                state[name] = tensor.float()
    except SafetensorError as error:
        raise CheckpointError(f"{path}: corrupted safetensors data ({error})") from None
    net.load_state_dict(state)
    return net.eval()


def load_vocabulary(directory: Path) -> Vocabulary:
    """The `vocab.json` of a checkpoint directory."""
    path = Path(directory) / VOCAB_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (every checkpoint directory needs its vocab.json)")
    try:
        return Vocabulary.load(path)
    except (ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(str(error)) from None
