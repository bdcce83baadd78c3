"""Test metrics as the paper reports them, including accuracy by letters known.

"Letters known" k of a position is how many letters of its target word the
model has seen: 0 at the space before the word, 1 at its first letter, and so on.
"""

import json
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import load_checkpoint
from models.net import AutocompleteNet
from models.text import SPACE
from models.vocab import UNKNOWN
from training.dataset import Dataset
from training.train import FINAL_FILE, batch_tensors

MAX_LETTERS_KNOWN = 21
TOP_K = 3
EVALUATION_FILE = "evaluation.json"


def letters_known(chars: torch.Tensor) -> torch.Tensor:
    """For char ids [batch, time], how many letters of the current word precede each position (0 at its space)."""
    positions = torch.arange(chars.shape[1], device=chars.device).expand_as(chars)
    word_starts = torch.where(chars == SPACE, positions, torch.zeros_like(positions)).cummax(dim=1).values
    return positions - word_starts


@torch.no_grad()
def evaluate(net: AutocompleteNet, chars: np.ndarray, targets: np.ndarray, max_sequences: int | None = None,
             batch_size: int = 32, device: str = "cpu") -> dict:
    """Cross-entropy, top-1 accuracy and top-1/2/3 accuracy by letters known, over real-word positions."""
    net.eval().to(device)
    count = min(len(chars), max_sequences or len(chars))
    hits = np.zeros((TOP_K, MAX_LETTERS_KNOWN + 1))
    totals = np.zeros(MAX_LETTERS_KNOWN + 1)
    loss_sum, positions = 0.0, 0
    for start in range(0, count, batch_size):
        x, y = batch_tensors(chars, targets, np.arange(start, min(start + batch_size, count)), torch.device(device))
        logits, _ = net(x)
        mask = y > UNKNOWN
        loss_sum += float(torch.nn.functional.cross_entropy(logits[mask], y[mask], reduction="sum"))
        positions += int(mask.sum())
        top = logits[mask].topk(TOP_K, dim=-1).indices
        within = (top == y[mask][:, None]).cumsum(dim=-1).clamp(max=1)
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


def evaluate_run(run: Path, data: Path, max_sequences: int | None = None, device: str = "cpu") -> dict:
    """Evaluate a finished run's model on the test split; writes `<run>/evaluation.json`."""
    final = run / FINAL_FILE
    if not final.is_file():
        raise FileNotFoundError(f"{final} does not exist; finish training first (python -m training train ... --resume)")
    chars, targets = Dataset.open(data).split("test")
    result = evaluate(load_checkpoint(final), chars, targets, max_sequences, device=device)
    (run / EVALUATION_FILE).write_text(json.dumps(result, indent=2))
    return result
