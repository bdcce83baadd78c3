"""The paper's autocomplete dataset, built once and cached as memory-mappable arrays.

Every word contributes `' ' + word`; each of those characters has the whole
word's id as its target, so the space before a word already predicts it.
Words are packed greedily into sequences of at most 200 characters without
ever cutting one, and whole sequences are split 90/5/5 with a fixed seed.
"""

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.text import CHAR_IDS, normalise
from models.vocab import UNKNOWN, Vocabulary

SEQUENCE_LENGTH = 200
SPLITS = {"train": 0.90, "valid": 0.05, "test": 0.05}
SPLIT_SEED = 1234
FORMAT_VERSION = 1


def pack_sequences(word_lengths: np.ndarray, max_chars: int = SEQUENCE_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """Greedy packing of `' ' + word` pieces: first and one-past-last word index of each sequence.

    A word too long to fit any sequence alone is skipped.
    """
    starts, ends = [], []
    start, used = 0, 0
    for index, length in enumerate((word_lengths + 1).tolist()):
        if length > max_chars:
            if used:
                starts.append(start)
                ends.append(index)
            start, used = index + 1, 0
            continue
        if used + length > max_chars:
            starts.append(start)
            ends.append(index)
            start, used = index, 0
        used += length
    if used:
        starts.append(start)
        ends.append(len(word_lengths))
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


def align(words: list[str], vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Character ids, per-character word targets, and each word's first character offset.

    The stream is `' ' + word` for every word in order.
    """
    lookup = np.zeros(256, dtype=np.uint8)
    for char, index in CHAR_IDS.items():
        if len(char) == 1:
            lookup[ord(char)] = index
    text = "".join(" " + word for word in words).encode("ascii")
    chars = lookup[np.frombuffer(text, dtype=np.uint8)]
    lengths = np.fromiter((len(word) + 1 for word in words), dtype=np.int64, count=len(words))
    word_ids = np.fromiter((vocabulary.id(word) for word in words), dtype=np.uint16, count=len(words))
    targets = np.repeat(word_ids, lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return chars, targets, offsets


def build_sequences(chars: np.ndarray, targets: np.ndarray, offsets: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """[sequences, 200] arrays of char ids and targets, right-padded with 0."""
    count = len(starts)
    seq_chars = np.zeros((count, SEQUENCE_LENGTH), dtype=np.uint8)
    seq_targets = np.zeros((count, SEQUENCE_LENGTH), dtype=np.uint16)
    for row, (first, last) in enumerate(zip(offsets[starts].tolist(), offsets[ends].tolist())):
        seq_chars[row, : last - first] = chars[first:last]
        seq_targets[row, : last - first] = targets[first:last]
    return seq_chars, seq_targets


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset directory: vocab.json, info.json and `<split>.chars.npy` / `<split>.targets.npy`."""

    directory: Path

    @property
    def info(self) -> dict:
        return json.loads((self.directory / "info.json").read_text())

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary.load(self.directory / "vocab.json")

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Memory-mapped (chars, targets) of a split."""
        return (
            np.load(self.directory / f"{name}.chars.npy", mmap_mode="r"),
            np.load(self.directory / f"{name}.targets.npy", mmap_mode="r"),
        )

    @classmethod
    def open(cls, directory: Path) -> "Dataset":
        if not (directory / "info.json").is_file():
            raise FileNotFoundError(f"no prepared dataset in {directory}; run `python -m training prepare` first")
        return cls(directory)


def batch_tensors(chars: np.ndarray, targets: np.ndarray, rows: np.ndarray, device: torch.device,
                  full_width: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Char ids and targets of the given sequences, as int64 tensors, trimmed to the longest one.

    `full_width` keeps all 200 columns instead, for code captured as a CUDA graph, whose shapes are fixed.
    """
    rows = np.sort(rows)
    x = torch.from_numpy(chars[rows].astype(np.int64))
    y = torch.from_numpy(targets[rows].astype(np.int64))
    width = SEQUENCE_LENGTH if full_width else int((x != 0).sum(dim=1).max())
    return x[:, :width].to(device), y[:, :width].to(device)


class BatchOrder:
    """Which training sequences make up each step's batch: every epoch, a fresh seeded permutation of the split.

    The batch depends on the step alone, so a resumed run sees the batches an uninterrupted one would.
    """

    def __init__(self, sequences: int, batch_size: int, seed: int) -> None:
        self.sequences = sequences
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = sequences // batch_size
        self._epoch: int | None = None
        self._order = np.arange(0)

    def rows(self, step: int) -> np.ndarray:
        """Row numbers of step `step`'s batch (steps count from 0 across epochs)."""
        epoch, position = divmod(step, self.batches_per_epoch)
        # Built once per epoch: every step of an epoch reads the same permutation of the whole split.
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng(self.seed + epoch).permutation(self.sequences)
        return self._order[position * self.batch_size : (position + 1) * self.batch_size]


def prepare_dataset(text: str, directory: Path, corpus: dict, vocabulary_size: int = 2**14) -> dict:
    """Build vocabulary, aligned sequences and the split from raw corpus text; returns info.json's content."""
    began = time.time()
    words = normalise(text).split()
    if not words:
        raise ValueError(f"corpus {corpus['name']} holds no words")
    vocabulary = Vocabulary.from_counts(Counter(words), vocabulary_size)
    chars, targets, offsets = align(words, vocabulary)
    lengths = np.diff(offsets) - 1
    starts, ends = pack_sequences(lengths)
    seq_chars, seq_targets = build_sequences(chars, targets, offsets, starts, ends)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(seq_chars))
    bounds = np.cumsum([0] + [round(len(order) * share) for share in SPLITS.values()])
    bounds[-1] = len(order)
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for (name, _), low, high in zip(SPLITS.items(), bounds[:-1], bounds[1:]):
        rows = np.sort(order[low:high])
        np.save(directory / f"{name}.chars.npy", seq_chars[rows])
        np.save(directory / f"{name}.targets.npy", seq_targets[rows])
        sizes[name] = int(high - low)
    vocabulary.save(directory / "vocab.json")
    info = {
        "format_version": FORMAT_VERSION,
        "corpus": corpus,
        "vocabulary_size": vocabulary_size,
        "words": len(words),
        "words_in_vocabulary": float(np.mean(targets[offsets[:-1]] > UNKNOWN)),
        "skipped_long_words": int(np.sum(lengths + 1 > SEQUENCE_LENGTH)),
        "sequences": sizes,
        "characters": {name: int(np.count_nonzero(np.load(directory / f"{name}.chars.npy"))) for name in SPLITS},
        "build_seconds": round(time.time() - began, 1),
    }
    (directory / "info.json").write_text(json.dumps(info, indent=2))
    return info


def is_prepared(directory: Path, corpus_sha256: str, vocabulary_size: int) -> bool:
    """True if `directory` already holds this corpus's dataset with this vocabulary size."""
    try:
        info = json.loads((directory / "info.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        info.get("format_version") == FORMAT_VERSION
        and info.get("corpus", {}).get("sha256") == corpus_sha256
        and info.get("vocabulary_size") == vocabulary_size
    )
