"""Test metrics as the paper reports them, including accuracy by letters known.

"Letters known" k of a position is how many letters of its target word the
model has seen: 0 at the space before the word, 1 at its first letter, and so on.
"""

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.checkpoint import load_checkpoint, read_metadata
from models.connectivity import connectivity_rows, record
from models.memory import buckets_description, concatenate, row_shares, summarise, word_starts
from models.net import AutocompleteNet
from models.text import SPACE, encode, normalise
from models.vocab import UNKNOWN, Vocabulary
from training.dataset import Dataset, batch_tensors
from training.train import STATE_FILE, weights_from_state

MAX_LETTERS_KNOWN = 21
TOP_K = 3
EVALUATION_FILE = "evaluation.json"
MEMORY_POSITIONS = 20_000
MEMORY_SEED = 0
# The article's example sentence, the one the paper published connectivity for.
PAPER_FILE = Path(__file__).resolve().parents[1] / "static" / "data" / "paper.json"


def letters_known(chars: torch.Tensor) -> torch.Tensor:
    """For char ids [batch, time], how many letters of the current word precede each position (0 at its space)."""
    positions = torch.arange(chars.shape[1], device=chars.device).expand_as(chars)
    word_starts = torch.where(chars == SPACE, positions, torch.zeros_like(positions)).cummax(dim=1).values
    return positions - word_starts


@torch.no_grad()
def evaluate(net: AutocompleteNet, chars: np.ndarray, targets: np.ndarray, max_sequences: int | None = None,
             batch_size: int | None = None, device: str = "cpu") -> dict:
    """Cross-entropy, top-1 accuracy and top-1/2/3 accuracy by letters known, over real-word positions."""
    net.eval().to(device)
    # A GPU holds the logits of many sequences at once (256 x 200 x 16,386 floats: 3.4 GB).
    batch_size = batch_size or (32 if device == "cpu" else 256)
    count = min(len(chars), max_sequences or len(chars))
    hits = np.zeros((TOP_K, MAX_LETTERS_KNOWN + 1))
    totals = np.zeros(MAX_LETTERS_KNOWN + 1)
    loss_sum, positions = 0.0, 0
    for start in range(0, count, batch_size):
        x, y = batch_tensors(chars, targets, np.arange(start, min(start + batch_size, count)), torch.device(device))
        mask = y > UNKNOWN
        # Logits only where they are scored: each pass over [positions, 16,386] floats is what this costs on a CPU.
        logits = net.logits(net.features(x)[0][mask])
        words = y[mask]
        loss_sum += float((torch.logsumexp(logits, dim=-1) - logits.gather(1, words[:, None]).squeeze(1)).sum())
        positions += len(words)
        top = logits.topk(TOP_K, dim=-1).indices
        within = (top == words[:, None]).cumsum(dim=-1).clamp(max=1)
        known = letters_known(x)[mask].clamp(max=MAX_LETTERS_KNOWN)
        totals += np.bincount(known.cpu().numpy(), minlength=MAX_LETTERS_KNOWN + 1)
        for k in range(TOP_K):
            hits[k] += np.bincount(known.cpu().numpy(), weights=within[:, k].float().cpu().numpy(), minlength=MAX_LETTERS_KNOWN + 1)
    by_known = {
        f"top{k + 1}": [float(h / n) if n else None for h, n in zip(hits[k], totals)] for k in range(TOP_K)
    }
    by_known["count"] = totals.astype(int).tolist()
    return {
        "test": {
            "cross_entropy": loss_sum / max(positions, 1),
            "accuracy": float(hits[0].sum() / max(positions, 1)),
            "sequences": count,
            "positions": positions,
        },
        "accuracy_by_letters_known": by_known,
    }


def example_text() -> str:
    return json.loads(PAPER_FILE.read_text())["connectivity"]["example_text"]


def text_targets(text: str, vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Char ids of normalised `text` and each position's true target word id (the word it belongs to)."""
    chars = np.array(encode(normalise(text)))
    words = normalise(text).split(" ")[1:]
    lengths = [len(word) + 1 for word in words]
    return chars, np.repeat([vocabulary.id(word) for word in words], lengths)


def memory_sample(chars: np.ndarray, targets: np.ndarray, positions: int, seed: int) -> np.ndarray:
    """Test sequences in a seeded order, as many as it takes to hold `positions` real-word positions."""
    order = np.random.default_rng(seed).permutation(len(chars))
    real_words = np.cumsum((targets[order] > UNKNOWN).sum(axis=1))
    return order[: int(np.searchsorted(real_words, positions)) + 1]


@torch.inference_mode()
def sequence_shares(net: AutocompleteNet, chars: np.ndarray, targets: np.ndarray, real_words_only: bool) -> dict:
    """Per-row memory shares of one sequence: full-matrix connectivity (the paper's gradient²) for its true targets."""
    length = int(np.count_nonzero(chars))
    chars, targets = np.asarray(chars[:length], dtype=np.int64), np.asarray(targets[:length], dtype=np.int64)
    positions = np.flatnonzero(targets > UNKNOWN) if real_words_only else np.arange(length)
    recording = record(net, torch.from_numpy(chars), "gradient")
    rows = connectivity_rows(net, recording, positions.tolist(), targets[positions].tolist(), "gradient").values
    return row_shares(rows.numpy(), positions, word_starts(chars)[positions])


def memory_profile(net: AutocompleteNet, chars: np.ndarray, targets: np.ndarray, vocabulary: Vocabulary,
                   positions: int = MEMORY_POSITIONS, seed: int = MEMORY_SEED) -> dict:
    """How far back the model looks: over a seeded sample of test positions, and on the paper's example sentence."""
    net = net.eval().cpu()  # the connectivity sweep is written for the CPU
    sample = memory_sample(chars, targets, positions, seed)
    parts = [sequence_shares(net, chars[row], targets[row], real_words_only=True) for row in tqdm(sample, desc="memory", unit="seq")]
    test = summarise(concatenate(parts)).to_dict()
    test["sample"] = {"split": "test", "seed": seed, "sequences": len(sample), "positions": test["rows"], "targets": "real words"}
    example_chars, example_targets = text_targets(example_text(), vocabulary)
    example = summarise(sequence_shares(net, example_chars, example_targets, real_words_only=False)).to_dict()
    return {"method": "gradient", "buckets": buckets_description(), "test": test, "example": example}


def evaluate_model(net: AutocompleteNet, characters_seen: int | None, data: Path, out: Path, max_sequences: int | None = None,
                   device: str = "cpu", memory_positions: int = MEMORY_POSITIONS) -> dict:
    """Test metrics and memory profile of a model that saw `characters_seen` training characters, written as JSON to `out`."""
    dataset = Dataset.open(data)
    chars, targets = dataset.split("test")
    result = {"characters_seen": characters_seen, **evaluate(net, chars, targets, max_sequences, device=device)}
    result["memory"] = memory_profile(net, chars, targets, dataset.vocabulary, memory_positions)
    out.write_text(json.dumps(result, indent=2))
    return result


def evaluate_checkpoint(path: Path, data: Path, out: Path, max_sequences: int | None = None, device: str = "cpu",
                        memory_positions: int = MEMORY_POSITIONS) -> dict:
    """Test metrics and memory profile of one checkpoint, written as JSON to `out`."""
    seen = read_metadata(path).get("characters_seen")
    return evaluate_model(load_checkpoint(path), json.loads(seen) if seen else None, data, out, max_sequences, device, memory_positions)


def evaluate_run(run: Path, data: Path, max_sequences: int | None = None, device: str = "cpu",
                 memory_positions: int = MEMORY_POSITIONS) -> dict:
    """Evaluate a run's latest weights (finished, or as a stopped run saved them) on the test split; writes `<run>/evaluation.json`."""
    state = run / STATE_FILE
    if not state.is_file():
        raise FileNotFoundError(f"{state} does not exist; train first (python -m training train ...)")
    net, progress = weights_from_state(state)
    return evaluate_model(net, progress.characters, data, run / EVALUATION_FILE, max_sequences, device, memory_positions)
