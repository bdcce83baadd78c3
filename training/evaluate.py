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
from training.bootstrap import BOOTSTRAP_RESAMPLES, bootstrap_description, interval
from training.corpus import sha256_of
from training.dataset import Dataset, batch_tensors
from training.intervention import example_case, intervention
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


def accuracy_by_known(hits: np.ndarray, totals: np.ndarray) -> dict:
    """Top-1/2/3 accuracy per letters-known count, from hit counts [TOP_K, counts] and position counts [counts]."""
    by_known: dict = {f"top{k + 1}": [float(h / n) if n else None for h, n in zip(hits[k], totals)] for k in range(TOP_K)}
    by_known["count"] = totals.astype(int).tolist()
    return by_known


@torch.no_grad()
def evaluate(net: AutocompleteNet, chars: np.ndarray, targets: np.ndarray, max_sequences: int | None = None,
             batch_size: int | None = None, device: str = "cpu", resamples: int = BOOTSTRAP_RESAMPLES, name: str = "test") -> dict:
    """Cross-entropy and accuracy on two definitions, overall (with 95 % bootstrap intervals over sequences) and by letters known.

    Ours counts real-word positions only, as the loss does. The paper's (`tf.metrics.accuracy` and
    `ContextAccuracy` in its code) counts every character of the text, so a position whose word is
    `<unknown>` counts too, a hit only if the model's first guess is `<unknown>` (which a model trained
    with `<unknown>` masked out of the loss does not make). Cross-entropy is over real words in both.
    """
    net.eval().to(device)
    # A GPU holds the logits of many sequences at once (256 x 200 x 16,386 floats: 3.4 GB).
    batch_size = batch_size or (32 if device == "cpu" else 256)
    count = min(len(chars), max_sequences or len(chars))
    hits = {scope: np.zeros((TOP_K, MAX_LETTERS_KNOWN + 1)) for scope in ("real", "every")}
    totals = {scope: np.zeros(MAX_LETTERS_KNOWN + 1) for scope in ("real", "every")}
    # Per sequence: the loss summed over its real-word positions, their count and top-1 hits, its characters and their hits.
    per_sequence = np.zeros((count, 5))
    unknown_first = 0
    for start in tqdm(range(0, count, batch_size), desc=f"{name}: test metrics", unit="batch"):
        rows = np.arange(start, min(start + batch_size, count))
        x, y = batch_tensors(chars, targets, rows, torch.device(device))
        text = x > 0
        # Logits only where they are scored: each pass over [positions, 16,386] floats is what this costs on a CPU.
        logits = net.logits(net.features(x)[0][text]).float()
        words = y[text]
        real = words > UNKNOWN
        sequence = torch.arange(len(rows), device=x.device)[:, None].expand_as(x)[text].cpu().numpy()
        loss = torch.where(real, torch.logsumexp(logits, dim=-1) - logits.gather(1, words[:, None]).squeeze(1), 0.0)
        top = logits.topk(TOP_K, dim=-1).indices
        within = (top == words[:, None]).cumsum(dim=-1).clamp(max=1).float().cpu().numpy()
        unknown_first += int(((top[:, 0] == UNKNOWN) & (words == UNKNOWN)).sum())
        known = letters_known(x)[text].clamp(max=MAX_LETTERS_KNOWN).cpu().numpy()
        real_word = real.cpu().numpy()
        for scope, where in (("real", real_word), ("every", np.ones_like(real_word))):
            totals[scope] += np.bincount(known[where], minlength=MAX_LETTERS_KNOWN + 1)
            for k in range(TOP_K):
                hits[scope][k] += np.bincount(known[where], weights=within[where, k], minlength=MAX_LETTERS_KNOWN + 1)
        columns = (loss.cpu().numpy(), real_word, within[:, 0] * real_word, np.ones_like(real_word), within[:, 0])
        for column, values in enumerate(columns):
            per_sequence[rows, column] += np.bincount(sequence, weights=values, minlength=len(rows))
    loss_sum, positions, real_hits, characters, every_hits = per_sequence.sum(axis=0)
    by_known = accuracy_by_known(hits["real"], totals["real"])
    by_known["every_character"] = accuracy_by_known(hits["every"], totals["every"])
    return {
        "test": {
            "cross_entropy": loss_sum / max(positions, 1),
            "cross_entropy_ci95": interval(per_sequence[:, 0], per_sequence[:, 1], resamples),
            "accuracy": real_hits / max(positions, 1),
            "accuracy_ci95": interval(per_sequence[:, 2], per_sequence[:, 1], resamples),
            "accuracy_every_character": every_hits / max(characters, 1),
            "accuracy_every_character_ci95": interval(per_sequence[:, 4], per_sequence[:, 3], resamples),
            "sequences": count,
            "positions": int(positions),
            "characters": int(characters),
            "unknown_first": unknown_first,
            "bootstrap": bootstrap_description(resamples),
        },
        "accuracy_by_letters_known": by_known,
    }


def example_text() -> str:
    return json.loads(PAPER_FILE.read_text())["connectivity"]["example_text"]


def example_letter(note: str) -> int:
    """The example sentence's position a walkthrough note is about (note "2": the "g" of the second "grammar")."""
    return int(json.loads(PAPER_FILE.read_text())["connectivity"]["walkthrough_indices"][note])


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


def memory_intervals(parts: list[dict[str, np.ndarray]], resamples: int) -> dict:
    """95 % intervals of the memory shares, resampling the sample's sequences (each a part of rows)."""
    rows = np.array([len(part["reach_10"]) for part in parts])
    return {
        "before_word_ci95": interval(np.array([part["before_word"].sum() for part in parts]), rows, resamples),
        "reach_10_ci95": interval(np.array([part["reach_10"].sum() for part in parts]), rows, resamples),
        "by_distance_ci95": interval(np.stack([part["by_distance"].sum(axis=0) for part in parts]), rows, resamples),
    }


def memory_profile(net: AutocompleteNet, chars: np.ndarray, targets: np.ndarray, vocabulary: Vocabulary,
                   positions: int = MEMORY_POSITIONS, seed: int = MEMORY_SEED, resamples: int = BOOTSTRAP_RESAMPLES,
                   name: str = "test") -> dict:
    """How far back the model looks: over a seeded sample of test positions, and on the paper's example sentence."""
    net = net.eval().cpu()  # the connectivity sweep is written for the CPU
    sample = memory_sample(chars, targets, positions, seed)
    parts = [sequence_shares(net, chars[row], targets[row], real_words_only=True)
             for row in tqdm(sample, desc=f"{name}: memory profile", unit="seq")]
    test = summarise(concatenate(parts)).to_dict() | memory_intervals(parts, resamples)
    test["sample"] = {"split": "test", "seed": seed, "sequences": len(sample), "positions": test["rows"], "targets": "real words",
                      "from_sequences": len(chars)}
    example_chars, example_targets = text_targets(example_text(), vocabulary)
    example = summarise(sequence_shares(net, example_chars, example_targets, real_words_only=False)).to_dict()
    return {"method": "gradient", "buckets": buckets_description(), "test": test, "example": example}


def evaluate_model(net: AutocompleteNet, characters_seen: int | None, data: Path, out: Path, max_sequences: int | None = None,
                   device: str = "cpu", memory_positions: int = MEMORY_POSITIONS, name: str = "test") -> dict:
    """Test metrics, memory profile and copy test of a model that saw `characters_seen` training characters, written as JSON to `out`.

    `max_sequences` limits all three to the first N test sequences.
    """
    dataset = Dataset.open(data)
    chars, targets = dataset.split("test")
    split_sequences = len(chars)
    chars, targets = chars[:max_sequences], targets[:max_sequences]
    result = {"characters_seen": characters_seen, **evaluate(net, chars, targets, device=device, name=name)}
    result["test"]["split_sequences"] = split_sequences
    result["memory"] = memory_profile(net, chars, targets, dataset.vocabulary, memory_positions, name=name)
    example = example_case(example_text(), example_letter("2"), dataset.vocabulary)
    result["intervention"] = intervention(net.cpu(), chars, dataset.vocabulary, example)
    out.write_text(json.dumps(result, indent=2))
    return result


def evaluate_checkpoint(path: Path, data: Path, out: Path, max_sequences: int | None = None, device: str = "cpu",
                        memory_positions: int = MEMORY_POSITIONS) -> dict:
    """Test metrics, memory profile and copy test of one checkpoint, written as JSON to `out`."""
    seen = read_metadata(path).get("characters_seen")
    result = evaluate_model(load_checkpoint(path), json.loads(seen) if seen else None, data, out, max_sequences, device,
                            memory_positions, name=path.stem)
    # Shipped checkpoints do not carry their character count; their bytes name them (export --evaluation checks them).
    result["checkpoint_sha256"] = sha256_of(path)
    out.write_text(json.dumps(result, indent=2))
    return result


def evaluate_run(run: Path, data: Path, max_sequences: int | None = None, device: str = "cpu",
                 memory_positions: int = MEMORY_POSITIONS) -> dict:
    """Evaluate a run's latest weights (finished, or as a stopped run saved them) on the test split; writes `<run>/evaluation.json`."""
    state = run / STATE_FILE
    if not state.is_file():
        raise FileNotFoundError(f"{state} does not exist; train first (python -m training train ...)")
    net, progress = weights_from_state(state)
    return evaluate_model(net, progress.characters, data, run / EVALUATION_FILE, max_sequences, device, memory_positions, name=run.name)
