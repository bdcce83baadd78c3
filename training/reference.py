"""The paper's published connectivity for the example sentence, made servable, and its memory profile.

The paper's repository publishes, per unit, 198 rows of raw connectivity with the
true word and the top-3 predictions at every position. `write_paper_reference`
copies them into `static/data/paper/` in a compact form (each row only up to its
own position, 4 significant digits, which is far below what a colour shows) and
writes `memory.json`, the paper's profile computed by `models.memory`, the
function that also profiles our models, with each row's share before its word, and
`training.json`, the paper's validation curve, thinned, against mini-batches.
"""

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np

from models.memory import buckets_description, row_shares, summarise, word_starts
from models.text import encode
from models.units import PAPER_UNITS

SIGNIFICANT_DIGITS = 4
PAPER_MODELS = "600 units, text8, two epochs (Madsen 2019)"
PAPER_REPOSITORY = "https://github.com/distillpub/post--memorization-in-rnns (MIT licence)"
# The paper's x-axis is mini-batches; ours is characters. text8 is 10^8 characters, 90 % of them
# train, twice over, in the paper's 14,278 mini-batches: about 12,600 characters a mini-batch.
TEXT8_TRAINING_CHARACTERS = 0.9 * 100_000_000
PAPER_EPOCHS = 2
PAPER_MINIBATCHES = 14_278
# Points kept per unit of the paper's validation curve (it logged 1,428): plenty for a line 700 px wide.
TRAINING_CURVE_POINTS = 150


def compact(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def paper_files(paper_data: Path) -> tuple[Path, Path]:
    """The folder of the paper's published data and its licence, in a clone of the paper's repository (`public/data/`
    and `LICENSE.md`) or in a folder holding both (the project's copy)."""
    folder = paper_data / "public" / "data" if (paper_data / "public" / "data").is_dir() else paper_data
    licence = paper_data / "LICENSE.md"
    missing = [path for path in (folder / f"connectivity_{PAPER_UNITS[0]}.json", licence) if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} does not exist; --paper-data takes a clone of {PAPER_REPOSITORY}")
    return folder, licence


def read_paper_positions(paper_data: Path, unit: str) -> list[dict]:
    path = paper_data / f"connectivity_{unit}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; --paper-data takes a clone of {PAPER_REPOSITORY}")
    return json.loads(path.read_text())


def paper_profile(positions: list[dict]) -> dict:
    """The memory profile of one unit's published rows (full or compact), with each row's share before its word:
    the walkthrough's notes quote those without loading the rows."""
    chars = np.array(encode("".join(position["char"] for position in positions)))
    rows = np.zeros((len(positions), len(positions)))
    for index, position in enumerate(positions):
        values = position["connectivity"][: index + 1]
        rows[index, : len(values)] = values
    shares = row_shares(rows, np.arange(len(chars)), word_starts(chars))
    assert len(shares["before_word"]) == len(positions), "every published row has some connectivity"
    return {**summarise(shares).to_dict(), "before_word_by_position": [compact(value) for value in shares["before_word"]]}


def write_paper_reference(paper_data: Path, out: Path) -> list[Path]:
    """Write `<unit>.json` (compact rows), `memory.json` and the licence into `out`; returns the files."""
    paper_data, licence = paper_files(paper_data)
    out.mkdir(parents=True, exist_ok=True)
    written, profiles = [], {}
    for unit in PAPER_UNITS:
        positions = read_paper_positions(paper_data, unit)
        rows = [
            {
                "char": position["char"],
                "target": position["target"],
                "predict": position["predict"],
                "probability": [compact(value) for value in position["probability"]],
                "connectivity": [compact(value) for value in position["connectivity"][: index + 1]],
            }
            for index, position in enumerate(positions)
        ]
        path = out / f"{unit}.json"
        path.write_text(json.dumps({"models": PAPER_MODELS, "positions": rows}, separators=(",", ":")))
        profiles[unit] = paper_profile(rows)
        written.append(path)
    memory = {"models": PAPER_MODELS, "text": "example sentence", "buckets": buckets_description(), "units": profiles}
    (out / "memory.json").write_text(json.dumps(memory, indent=1))
    (out / "training.json").write_text(json.dumps(paper_training(paper_data / "autocomplete-training.csv"), separators=(",", ":")))
    shutil.copyfile(licence, out / "LICENSE.md")
    return written + [out / "memory.json", out / "training.json", out / "LICENSE.md"]


def paper_training(path: Path) -> dict:
    """The paper's validation loss against mini-batches per model (keyed by the paper's names), thinned, with the
    characters a mini-batch stands for, so the article can draw it beside our curves against characters seen."""
    curves: dict[str, list[list[float]]] = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if row["dataset"] == "valid":
                curves.setdefault(row["model"], []).append([int(row["step"]), compact(float(row["loss"]))])
    thinned = {}
    for model, points in curves.items():
        every = max(1, math.ceil(len(points) / TRAINING_CURVE_POINTS))
        thinned[model] = points[::every] + ([points[-1]] if (len(points) - 1) % every else [])
    return {
        "models": PAPER_MODELS,
        "characters_per_step": round(TEXT8_TRAINING_CHARACTERS * PAPER_EPOCHS / PAPER_MINIBATCHES),
        "validation": thinned,
    }
