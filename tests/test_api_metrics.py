"""/api/models serves what the evaluation records: both accuracy definitions, their intervals, history and the copy test."""

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

INTERVENTION = {
    "method": "first occurrence swapped",
    "sample": {"split": "test", "seed": 0, "cases_per_bucket": 600},
    "buckets": [{"low": 5, "high": 24, "label": "5–24", "cases": 600, "gain_space": 0.12, "gain_space_ci95": [0.1, 0.14],
                 "gain_first_letter": 0.1, "gain_first_letter_ci95": [0.08, 0.12], "top3_space_with": 0.2, "top3_space_without": 0.1}],
    "example": {"word": "grammar", "replacement": "biology", "position": 159, "probability_with": 0.002, "probability_without": 0.001,
                "gain": 0.69},
}


def test_models_serve_both_definitions_intervals_history_and_the_copy_test(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_checkpoint_dir, tmp_path / "checkpoints"))
    metrics = json.loads((folder / "metrics.json").read_text())
    gru = metrics["models"]["gru"]
    gru["test"] |= {"cross_entropy_ci95": [3.4, 3.6], "accuracy_ci95": [0.24, 0.26], "accuracy_every_character": 0.22,
                    "accuracy_every_character_ci95": [0.21, 0.23], "sequences": 64}
    gru["accuracy_by_letters_known"]["every_character"] = {"top1": [0.09, 0.18, 0.8], "top2": [0.18, 0.27, 0.8],
                                                           "top3": [0.27, 0.36, 0.8], "count": [1000, 450, 60]}
    gru["memory"]["test"] |= {"reach_10_ci95": [0.01, 0.03], "before_word_ci95": [0.1, 0.2]}
    gru["history"][-1] |= {"accuracy_every_character": 0.22}
    gru["intervention"] = INTERVENTION
    (folder / "metrics.json").write_text(json.dumps(metrics))
    with TestClient(create_app(Settings(checkpoint_dir=folder))) as client:
        by_id = {model["id"]: model for model in client.get("/api/models").json()}
    served = by_id["gru"]
    assert served["metrics"]["test_accuracy_every_character"] == 0.22
    assert served["metrics"]["test_accuracy_every_character_ci95"] == [0.21, 0.23]
    assert served["metrics"]["test_cross_entropy_ci95"] == [3.4, 3.6] and served["metrics"]["test_sequences"] == 64
    assert served["accuracy_by_letters_known"]["every_character"]["count"] == [1000, 450, 60]
    assert served["accuracy_by_letters_known"]["top1"] == [0.1, 0.2, 0.9]
    assert served["memory"]["test"]["reach_10_ci95"] == [0.01, 0.03]
    assert served["history"][-1]["accuracy_every_character"] == 0.22
    assert served["intervention"]["buckets"][0]["gain_space_ci95"] == [0.1, 0.14]
    assert served["intervention"]["example"]["gain"] == 0.69
    # A record from before the every-character evaluation still serves what it has.
    assert by_id["lstm"]["metrics"]["test_accuracy_every_character"] is None and by_id["lstm"]["intervention"] is None
