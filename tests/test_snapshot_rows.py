"""The example sentence's rows at each snapshot of a run (training/snapshot_rows.py)."""

import gzip
import json
import shutil
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint, load_vocabulary, save_checkpoint
from models.connectivity import connectivity_rows, record
from models.text import encode, normalise
from training.cli import main
from training.snapshot_rows import write_snapshot_rows

EXAMPLE = "The grammar of a language, and its grammar again"


def make_run(tiny_checkpoint_dir: Path, runs: Path, marks: list[int], finished_at: int | None) -> Path:
    """A GRU run under `runs` with float16 snapshots at `marks` (the tiny GRU's weights) and, if `finished_at`, its model."""
    net = load_checkpoint(tiny_checkpoint_dir / "gru.safetensors")
    run = runs / "gru"
    for mark in marks:
        save_checkpoint(net, run / "snapshots" / f"chars-{mark}.safetensors", torch.float16, {"characters_seen": mark + 17})
    if finished_at is not None:
        save_checkpoint(net, run / "model.safetensors", metadata={"characters_seen": finished_at})
    return run


def test_rows_of_every_snapshot_and_the_model(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    make_run(tiny_checkpoint_dir, tmp_path / "runs", [10_000, 5_000], finished_at=20_000)
    vocabulary = load_vocabulary(tiny_checkpoint_dir)
    written = write_snapshot_rows(tmp_path / "runs", ["gru"], tmp_path / "out", EXAMPLE, vocabulary)
    assert [path.name for path in written] == ["chars-5000.json.gz", "chars-10000.json.gz", "chars-20000.json.gz"]

    rows = json.loads(gzip.decompress(written[0].read_bytes()))
    text = normalise(EXAMPLE)
    assert (rows["unit"], rows["characters"], rows["text"], rows["method"]) == ("gru", 5_017, text, "gradient")
    assert [len(row) for row in rows["rows"]] == list(range(1, len(text) + 1))  # causal: row t ends at t

    # Each row is the model's first guess there, as the server answers Figure 4; values to 4 significant digits.
    net = load_checkpoint(tmp_path / "runs" / "gru" / "snapshots" / "chars-5000.safetensors")
    recording = record(net, torch.tensor(encode(text)), "gradient")
    with torch.inference_mode():
        guesses = (net.output(recording.outputs)[:, 2:].argmax(dim=-1) + 2).tolist()
    assert rows["words"] == [vocabulary.words[word_id] for word_id in guesses]
    expected = connectivity_rows(net, recording, list(range(len(text))), guesses, "gradient").values
    for position, row in enumerate(rows["rows"]):
        assert row == pytest.approx(expected[position, : position + 1].tolist(), rel=5e-4)
        assert all(value == float(f"{value:.4g}") for value in row)

    # The same weights make the same bytes, so rewriting leaves the files as they were.
    before = written[0].read_bytes()
    write_snapshot_rows(tmp_path / "runs", ["gru"], tmp_path / "out", EXAMPLE, vocabulary)
    assert written[0].read_bytes() == before


def test_the_cli_names_a_run_without_snapshots(tiny_checkpoint_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "gru").mkdir(parents=True)
    shutil.copy(tiny_checkpoint_dir / "vocab.json", tmp_path / "vocab.json")
    with pytest.raises(SystemExit):
        main(["snapshot-rows", "--units", "gru", "--runs", str(tmp_path / "runs"), "--vocabulary", str(tmp_path), "--out", str(tmp_path / "out")])
    assert "the runs of gru under" in capsys.readouterr().err and not (tmp_path / "out").exists()
