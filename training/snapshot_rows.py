"""The example sentence's connectivity at each snapshot of a run: memory forming, character budget by budget.

A run keeps float16 weights at the `--snapshot-chars` marks (runs/<preset>/<unit>/snapshots/chars-N.safetensors)
and, once finished, its model. For each of them this writes the example sentence's full connectivity matrix,
one row per position for the model's first guess there (as Figure 4 asks the server), every value to
4 significant digits, gzipped: static/data/snapshots/<unit>/chars-N.json.gz, a few tens of KB. The snapshot
weights stay in runs/; the page needs only these rows.
"""

import gzip
import json
from pathlib import Path

import torch

from models.checkpoint import load_checkpoint, read_metadata
from models.connectivity import connectivity_rows, record, round_significant
from models.text import encode, normalise
from models.vocab import SPECIAL_WORDS, Vocabulary
from training.train import FINAL_FILE, SNAPSHOT_DIR

DIGITS = 4
FIRST_REAL_WORD = len(SPECIAL_WORDS)  # <eos> and <unknown> come first; the models are not trained to predict them


@torch.inference_mode()
def example_rows(checkpoint: Path, text: str, vocabulary: Vocabulary) -> dict:
    """The connectivity matrix of normalised `text` for the model at `checkpoint`, each row for its first guess there."""
    net = load_checkpoint(checkpoint)
    chars = torch.tensor(encode(text))
    recording = record(net, chars, "gradient")
    logits = net.output(recording.outputs)[:, FIRST_REAL_WORD:]
    word_ids = (logits.argmax(dim=-1) + FIRST_REAL_WORD).tolist()
    positions = list(range(len(text)))
    values = connectivity_rows(net, recording, positions, word_ids, "gradient").values.tolist()
    metadata = read_metadata(checkpoint)
    return {
        "unit": net.config.unit,
        "characters": json.loads(metadata["characters_seen"]),
        "text": text,
        "method": "gradient",
        "words": [vocabulary.words[word_id] for word_id in word_ids],
        "rows": [round_significant(row[: position + 1], DIGITS) for position, row in enumerate(values)],
    }


def run_checkpoints(run: Path) -> list[tuple[Path, str]]:
    """A run's snapshots by characters seen, then its finished model if there is one, each with the name of its rows:
    a snapshot's mark (chars-5000000, though its weights are of the first step past it), the model's characters seen."""
    snapshots = sorted((run / SNAPSHOT_DIR).glob("chars-*.safetensors"), key=lambda path: int(path.stem.removeprefix("chars-")))
    final = run / FINAL_FILE
    finished = [(final, f"chars-{json.loads(read_metadata(final)['characters_seen'])}")] if final.is_file() else []
    return [(snapshot, snapshot.stem) for snapshot in snapshots] + finished


def write_snapshot_rows(runs: Path, units: list[str], out: Path, example: str, vocabulary: Vocabulary) -> list[Path]:
    """Rows for every checkpoint of each unit's run under `runs`; returns the files written."""
    text = normalise(example)
    written = []
    for unit in units:
        for checkpoint, name in run_checkpoints(runs / unit):
            rows = example_rows(checkpoint, text, vocabulary)
            path = out / unit / f"{name}.json.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            # mtime=0: the same rows always make the same bytes, so an unchanged snapshot leaves git clean.
            path.write_bytes(gzip.compress(json.dumps(rows, separators=(",", ":")).encode(), mtime=0))
            written.append(path)
    return written
