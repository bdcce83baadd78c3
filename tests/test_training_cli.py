"""The training CLI end to end, on a tiny corpus the tests write: prepare, train, resume, DDP, evaluate, export."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, load_vocabulary, read_metadata
from models.net import cpu_bf16_supported, get_preset
from training.dataset import Dataset
from training.export import read_curve
from training.train import LEARNING_RATE, WARM_START_RAMP_STEPS, Processes, TrainOptions, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "bundled", "--hidden-size", "16", "--eval-sequences", "32", "--epochs", "20"]


def cli(*args: str, cwd: Path = ROOT, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "training", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"training {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def tiny_corpus_text(words: int = 40_000) -> str:
    """A corpus with structure to learn: a few fixed phrases in random order."""
    rng = np.random.default_rng(0)
    phrases = ["the cat sat on the mat", "a dog ran in the park", "birds fly over green hills",
               "she reads books at night", "rain falls on old roofs", "we sing songs of the sea"]
    chosen = rng.integers(0, len(phrases), words // 5)
    return " ".join(phrases[i] for i in chosen)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.txt").write_text(tiny_corpus_text())
    result = cli("prepare", "--corpus", str(folder / "tiny.txt"), "--out", str(folder / "data"), "--vocabulary-size", "30")
    assert re.search(r"sequences train [\d,]+, valid [\d,]+, test [\d,]+", result.stdout)
    again = cli("prepare", "--corpus", str(folder / "tiny.txt"), "--out", str(folder / "data"), "--vocabulary-size", "30")
    assert "already prepared" in again.stdout
    return folder / "data"


def test_train_evaluate_export_end_to_end(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    for unit, steps in (("gru", 120), ("lstm", 30), ("nlstm", 30)):
        cli("train", "--unit", unit, *TINY, "--data", str(tiny_data), "--out", str(runs / unit),
            "--max-steps", str(steps), "--eval-every", str(steps // 3))
        rows = (runs / unit / "log.csv").read_text().splitlines()
        assert rows[0] == "step,seconds,characters,train_loss,valid_loss"
        curve = [[float(value) for value in row.split(",")] for row in rows[1:]]
        assert [row[0] for row in curve] == [steps // 3, 2 * steps // 3, steps]
        assert curve[-1][3] < curve[0][3] and curve[-1][4] < curve[0][4], curve
        if unit == "gru":
            assert curve[-1][3] < 0.85 * curve[0][3], curve
    result = cli("evaluate", "--runs", str(runs), "--data", str(tiny_data))
    assert result.stdout.count("top-1 accuracy") == 3
    evaluation = json.loads((runs / "gru" / "evaluation.json").read_text())
    by_known = evaluation["accuracy_by_letters_known"]
    assert 0 < evaluation["test"]["accuracy"] <= 1 and evaluation["test"]["positions"] > 1000
    assert len(by_known["top1"]) == 22 and sum(by_known["count"]) == evaluation["test"]["positions"]
    assert all(a <= b <= c for a, b, c in zip(by_known["top1"][:6], by_known["top2"][:6], by_known["top3"][:6]))

    out = tmp_path / "checkpoints"
    cli("export", "--runs", str(runs), "--data", str(tiny_data), "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["models"]) == {"gru", "lstm", "nlstm"}
    gru = metrics["models"]["gru"]
    assert gru["characters_seen"] > 0 and gru["steps"] == 120 and gru["corpus"]["name"] == "tiny"
    assert len(gru["training_curve"]) == 3 and gru["storage"]["top1_changed"] <= 0.001
    assert load_vocabulary(out).words == load_vocabulary(tiny_data).words
    net = load_checkpoint(out / "nlstm.safetensors")
    assert net.config.hidden_size == 16 and net.config.num_words == len(load_vocabulary(out))
    assert json.loads(read_metadata(out / "nlstm.safetensors")["preset"]) == "bundled"
    assert gru["test"]["characters"] >= gru["test"]["positions"]  # every character counts on the paper's definition
    assert gru["test"]["split_sequences"] == gru["test"]["sequences"] == len(Dataset.open(tiny_data).split("test")[0])
    low, high = gru["test"]["accuracy_every_character_ci95"]
    assert low <= gru["test"]["accuracy_every_character"] <= high
    assert gru["history"][-1]["accuracy_every_character"] == gru["test"]["accuracy_every_character"]
    assert [bucket["label"] for bucket in gru["intervention"]["buckets"]] == ["5–24", "25–59", "60+"]

    # A shipped model evaluated again (the evaluation changed): its record takes the new figures, its weights and curve stay.
    del gru["intervention"], gru["test"]["accuracy_every_character"]
    gru["history"] = [{"characters": 10, "test_sequences": 8, "accuracy": 0.5}] + gru["history"]
    (out / "metrics.json").write_text(json.dumps(metrics))
    cli("evaluate", "--checkpoint", str(out / "gru.safetensors"), "--out", str(tmp_path / "again.json"), "--data", str(tiny_data),
        "--memory-positions", "300")
    refused = cli("export", "--evaluation", str(tmp_path / "again.json"), "--data", str(tiny_data), "--out", str(out), check=False)
    assert refused.returncode == 2 and "--evaluation takes one unit" in refused.stderr
    other = cli("export", "--evaluation", str(tmp_path / "again.json"), "--units", "lstm", "--data", str(tiny_data), "--out", str(out),
                check=False)
    assert other.returncode == 2 and "is not an evaluation of" in other.stderr and "lstm.safetensors" in other.stderr
    cli("export", "--evaluation", str(tmp_path / "again.json"), "--units", "gru", "--data", str(tiny_data), "--out", str(out))
    refreshed = json.loads((out / "metrics.json").read_text())["models"]["gru"]
    assert refreshed["test"]["accuracy_every_character"] == json.loads((tmp_path / "again.json").read_text())["test"]["accuracy_every_character"]
    assert refreshed["intervention"]["buckets"] and refreshed["training_curve"] == gru["training_curve"]
    first, *_, last = refreshed["history"]
    assert last["characters"] == gru["characters_seen"] and last["accuracy_every_character"] == refreshed["test"]["accuracy_every_character"]
    _, targets = Dataset.open(tiny_data).split("test")
    every = 0.5 * (targets[:8] > 1).sum() / (targets[:8] > 0).sum()  # real-word hits over every character of the same 8 sequences
    assert first["accuracy_every_character_derived"] and first["accuracy_every_character"] == pytest.approx(every)


def test_kill_and_resume_matches_an_uninterrupted_run(tiny_data, tmp_path):
    steps = ["--max-steps", "40", "--eval-every", "20", "--no-bf16"]
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / "whole"), *steps)

    log = open(tmp_path / "interrupted.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "train", "--unit", "gru", *TINY, "--data", str(tiny_data),
         "--out", str(tmp_path / "parts"), *steps],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=log, stderr=log)
    deadline = time.time() + 120
    while "loss=" not in (tmp_path / "interrupted.log").read_text() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    saved = torch.load(tmp_path / "parts" / "state.pt", weights_only=True)["progress"]
    assert 0 < saved["step"] < 40 and not saved["done"]
    assert "continue with --resume" in (tmp_path / "interrupted.log").read_text()

    refused = cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / "parts"), *steps, check=False)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / "parts"), *steps, "--resume")
    whole = load_checkpoint(tmp_path / "whole" / "model.safetensors").state_dict()
    parts = load_checkpoint(tmp_path / "parts" / "model.safetensors").state_dict()
    for name in whole:
        assert torch.equal(whole[name], parts[name]), name
    again = cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / "parts"), *steps, "--resume")
    assert "is finished (40 steps" in again.stdout and "nothing to train" in again.stdout


def test_torchrun_two_processes_keep_identical_weights(tiny_data, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "training", "train", "--unit", "lstm", *TINY,
         "--data", str(tiny_data), "--out", str(tmp_path / "ddp"), "--max-steps", "20", "--eval-every", "10",
         "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d): weights digest (\w+)", result.stdout))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--unit", "transformer", "--preset", "bundled"], "invalid choice: 'transformer'"),
        (["train", "--unit", "gru", "--preset", "huge"], "invalid choice: 'huge'"),
        (["prepare", "--corpus", "no/such/file.xz"], "corpus file no/such/file.xz does not exist"),
        (["train", "--unit", "gru", "--preset", "bundled", "--data", "no/such/dir"], "no prepared dataset in no/such/dir"),
        (["describe"], "the following arguments are required: --preset"),
        (["reference", "--paper-data", "no/such/dir"],
         "no/such/dir/connectivity_gru.json does not exist; --paper-data takes a clone of https://github.com/distillpub/post--memorization-in-rnns"),
    ],
)
def test_bad_cli_input_gets_one_line_and_no_traceback(args, message, tmp_path):
    result = cli(*args, check=False, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_describe_paper_matches_the_papers_counts():
    result = cli("describe", "--preset", "paper")
    assert re.search(r"gru\s+dense\s+9,847,986\s+9,847,986\s+matches", result.stdout)
    assert re.search(r"nlstm\s+recurrent\s+5,764,800\s+5,764,800\s+matches", result.stdout)
    assert result.stdout.count("embedding       16,200      16,200  matches") == 3
    assert "+3,600 (+1,800 per layer)" in result.stdout and "two bias vectors" in result.stdout


@pytest.mark.parametrize(("option", "refusal"), [({"sampled_words": 64}, "--sampled-words trains one process only"), ({"graph": True}, "--graph replays")])
def test_options_that_bypass_ddp_are_refused_under_torchrun(tiny_data, tmp_path, monkeypatch, option, refusal):
    monkeypatch.setattr(Processes, "start", classmethod(lambda cls, device: cls(rank=0, world=2, device=torch.device("cpu"))))
    options = TrainOptions(unit="gru", preset=get_preset("bundled"), data=tiny_data, out=tmp_path / "run", hidden_size=16, **option)
    with pytest.raises(ValueError, match=refusal):
        train(options)
    assert not (tmp_path / "run").exists()


def test_snapshots_and_warm_start_from_shipped_weights(tiny_data, tmp_path):
    first = tmp_path / "first"
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(first), "--max-steps", "30",
        "--snapshot-chars", "30000,60000")
    snapshots = sorted((first / "snapshots").glob("*.safetensors"))
    assert [path.name for path in snapshots] == ["chars-30000.safetensors", "chars-60000.safetensors"]
    seen = [json.loads(read_metadata(path)["characters_seen"]) for path in snapshots]
    assert 30000 <= seen[0] < 60000 <= seen[1]
    assert load_checkpoint(snapshots[0]).config.hidden_size == 16

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copyfile(first / "model.safetensors", shipped / "gru.safetensors")
    trained = {key: json.loads(read_metadata(first / "model.safetensors")[key]) for key in ("steps", "characters_seen", "training_seconds")}
    missing = cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / "refused"),
                  "--max-steps", "40", "--resume", "--warm-start", str(shipped), check=False)
    assert missing.returncode == 2 and "cannot continue" in missing.stderr
    shipped_curve = read_curve(first / "log.csv")
    gpu_leg = {"device": "NVIDIA H100 80GB HBM3", "sampled_words": 0, "characters": trained["characters_seen"], "seconds": trained["training_seconds"]}
    (shipped / "metrics.json").write_text(json.dumps({"models": {"gru": {**trained, "training_curve": shipped_curve, "legs": [gpu_leg]}}}))
    result = cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / "warm"),
                 "--max-steps", "40", "--resume", "--warm-start", str(shipped), "--eval-every", "5",
                 "--snapshot-chars", f"30000,{trained['characters_seen']},{10**9}")
    assert "warm-starting from" in result.stdout and "fresh optimizer moments" in result.stdout
    # Marks the shipped weights had passed are not snapshotted again with the later weights.
    assert not (tmp_path / "warm" / "snapshots").exists() or not list((tmp_path / "warm" / "snapshots").iterdir())
    state = torch.load(tmp_path / "warm" / "state.pt", weights_only=True)
    progress = state["progress"]
    assert progress["step"] == 40 and progress["characters"] > trained["characters_seen"]
    # Fresh Adam moments: the rate ramps up from the step the shipped weights stopped at, and a resume keeps that ramp.
    assert "learning rate ramped up" in result.stdout and progress["warm_started_at"] == trained["steps"]
    last_rate = LEARNING_RATE * (40 - trained["steps"]) / WARM_START_RAMP_STEPS
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(last_rate)
    # The shipped leg stays as it was; the continuation is a leg of its own, on this machine.
    cpu_leg = {"device": "CPU", "sampled_words": 0, "characters": progress["characters"] - trained["characters_seen"],
               "seconds": round(progress["seconds"] - trained["training_seconds"], 1)}
    assert progress["legs"] == [gpu_leg, cpu_leg] and cpu_leg["seconds"] > 0
    assert json.loads(read_metadata(tmp_path / "warm" / "model.safetensors")["legs"]) == [gpu_leg, cpu_leg]
    # The log goes on from the shipped model's curve: its rows first, then the continuation's.
    curve = read_curve(tmp_path / "warm" / "log.csv")
    assert shipped_curve and curve[: len(shipped_curve)] == shipped_curve
    assert [row["step"] for row in curve[len(shipped_curve) :]] == [35, 40]


def test_a_stopped_run_exports_and_the_next_machine_goes_on_from_it_with_its_history(tiny_data, tmp_path):
    """Progress outlives a machine through the exported checkpoints: a warm start inherits their history, and a
    stopped run's latest weights export with it, so what the next warm start continues keeps every earlier point."""
    evaluate = ["--data", str(tiny_data), "--max-sequences", "64", "--memory-positions", "200"]
    first = tmp_path / "runs" / "gru"
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(first), "--max-steps", "120", "--snapshot-chars", "30000")
    cli("evaluate", "--checkpoint", str(first / "snapshots" / "chars-30000.safetensors"), *evaluate)
    cli("evaluate", "--runs", str(first.parent), *evaluate)
    shipped = tmp_path / "shipped"
    cli("export", "--runs", str(first.parent), "--data", str(tiny_data), "--out", str(shipped))
    shipped_gru = json.loads((shipped / "metrics.json").read_text())["models"]["gru"]
    assert [point["characters"] for point in shipped_gru["history"]] == [30000, shipped_gru["characters_seen"]]

    # A new machine: no runs/, so --resume warm-starts from the export; the run is stopped unfinished after 10 steps
    # (by a count, not --max-minutes: how far a clock gets decides whether float16 storage flips top-1 predictions).
    warm = tmp_path / "machine-2" / "gru"
    refused = cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(warm), "--stop-after-steps", "0", check=False)
    assert refused.returncode == 2 and "--stop-after-steps must be a positive number of steps, not 0" in refused.stderr
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(warm), "--resume",
        "--warm-start", str(shipped), "--stop-after-steps", "10", "--snapshot-chars", "30000")
    progress = torch.load(warm / "state.pt", weights_only=True)["progress"]
    assert not progress["done"] and progress["step"] == shipped_gru["steps"] + 10 and not (warm / "model.safetensors").exists()
    assert progress["history"] == shipped_gru["history"]
    out = tmp_path / "exported"
    unevaluated = cli("export", "--runs", str(warm.parent), "--data", str(tiny_data), "--out", str(out), check=False)
    assert unevaluated.returncode == 2 and "evaluation.json does not exist; run `python -m training evaluate` first" in unevaluated.stderr
    result = cli("evaluate", "--runs", str(warm.parent), *evaluate)
    sequences = min(64, len(Dataset.open(tiny_data).split("test")[0]))
    assert f"gru after {progress['characters']:,} characters, on {sequences:,} test sequences: cross-entropy" in result.stdout
    cli("export", "--runs", str(warm.parent), "--data", str(tiny_data), "--out", str(out))
    exported = json.loads((out / "metrics.json").read_text())["models"]["gru"]
    assert (exported["characters_seen"], exported["steps"]) == (progress["characters"], progress["step"])
    assert exported["history"][:2] == shipped_gru["history"] and exported["history"][2]["characters"] == progress["characters"]
    assert exported["history"][2]["cross_entropy"] == exported["test"]["cross_entropy"] and "characters_seen" not in exported["test"]
    saved = torch.load(warm / "state.pt", weights_only=True)["model"]
    for name, tensor in load_checkpoint(out / "gru.safetensors").state_dict().items():
        torch.testing.assert_close(tensor, saved[name], atol=1e-3, rtol=1e-3)

    # Trained on after its evaluation, the run's evaluation no longer describes its weights.
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(warm), "--resume", "--stop-after-steps", "1")
    stale = cli("export", "--runs", str(warm.parent), "--data", str(tiny_data), "--out", str(out), check=False)
    assert stale.returncode == 2 and f"is of the weights after {progress['characters']} characters" in stale.stderr
    # Evaluated and exported again, the resumed run keeps the point its earlier export shipped at, which its log passed.
    cli("evaluate", "--runs", str(warm.parent), *evaluate)
    cli("export", "--runs", str(warm.parent), "--data", str(tiny_data), "--out", str(out))
    again = json.loads((out / "metrics.json").read_text())["models"]["gru"]
    assert again["characters_seen"] > progress["characters"]
    assert again["history"][:3] == exported["history"] and again["history"][3]["characters"] == again["characters_seen"]

    third = tmp_path / "machine-3" / "gru"
    cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(third), "--resume", "--warm-start", str(out), "--max-steps", "1")
    assert torch.load(third / "state.pt", weights_only=True)["progress"]["history"] == again["history"]


def test_campaign_trains_evaluates_and_packs(tiny_data, tmp_path):
    out = tmp_path / "out"
    result = cli("campaign", "--units", "gru", "--data", str(tiny_data), "--runs", str(tmp_path / "runs"), "--out", str(out),
                 "--device", "cpu", "--max-minutes", "0.05", "--snapshot-chars", "1", "--graph-units", "--memory-positions", "300",
                 "--from-scratch")
    assert "campaign done" in result.stdout
    assert sorted(path.name for path in out.iterdir()) == ["campaign.tar.gz", "gru.safetensors"]
    metadata = read_metadata(out / "gru.safetensors")
    assert json.loads(metadata["characters_seen"]) > 0 and json.loads(metadata["done"]) is False
    with tarfile.open(out / "campaign.tar.gz") as archive:
        names = archive.getnames()
        evaluation = json.load(archive.extractfile("gru/final-evaluation.json"))
    assert {"gru/log.csv", "gru/snapshots/chars-1.json"} <= set(names)
    assert evaluation["memory"]["test"]["rows"] >= 300
    assert sum(evaluation["memory"]["example"]["by_distance"]) == pytest.approx(1.0)


def test_train_says_what_it_does_and_trains_max_chars_beyond_the_presets_epochs(tiny_data, tmp_path):
    """The first line names the precision, the budget and the folder; --max-chars past the preset's two epochs is
    trained, not capped; a finished run says so and what comes next, with or without --resume; a resume says where."""
    run = tmp_path / "run"
    train_args = ["train", "--unit", "gru", "--preset", "bundled", "--hidden-size", "16", "--eval-sequences", "32",
                  "--eval-every", "5", "--data", str(tiny_data), "--out", str(run)]
    train_chars, _ = Dataset.open(tiny_data).split("train")
    two_epochs = 2 * int(np.count_nonzero(train_chars))
    budget = two_epochs + 40_000
    first = cli(*train_args, "--max-chars", str(budget), "--no-bf16")
    assert (f"training gru (bundled, hidden size 16) on CPU in float32 (--no-bf16), until {budget:,} characters "
            f"({budget / (two_epochs / 2):.3g} epochs); run folder {run}") in first.stdout
    progress = torch.load(run / "state.pt", weights_only=True)["progress"]
    assert progress["done"] and budget <= progress["characters"] < budget + 64 * 200
    assert read_curve(run / "log.csv") == progress["curve"] and progress["curve"][-1]["step"] == progress["step"]

    for again in (cli(*train_args, "--max-chars", str(budget)), cli(*train_args, "--max-chars", str(budget), "--resume")):
        assert f"{run} is finished ({progress['step']:,} steps, {progress['characters']:,} characters): nothing to train" in again.stdout
        assert "--resume with a larger --max-chars" in again.stdout and "resuming" not in again.stdout
    more = str(budget + 20_000)
    refused = cli(*train_args, "--max-chars", more, check=False)
    assert refused.returncode == 2
    assert f"holds a run at step {progress['step']:,} ({progress['characters']:,} characters), short of this budget; pass --resume" in refused.stderr
    resumed = cli(*train_args, "--max-chars", more, "--resume")
    precision = "bf16 autocast" if cpu_bf16_supported() else "float32: this CPU has no bf16 kernels"
    assert f"on CPU in {precision}, until {int(more):,} characters" in resumed.stdout
    assert f"resuming at step {progress['step']:,} ({progress['characters']:,} characters)" in resumed.stdout
    assert torch.load(run / "state.pt", weights_only=True)["progress"]["characters"] >= int(more)


def test_log_csv_is_written_as_the_run_goes_and_ends_where_a_stopped_run_stopped(tiny_data, tmp_path):
    run = tmp_path / "run"
    log_path = run / "log.csv"
    output = open(tmp_path / "train.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(run),
         "--eval-every", "2", "--eval-sequences", "8"],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=output, stderr=output)
    deadline = time.time() + 120
    while not (log_path.exists() and len(log_path.read_text().splitlines()) >= 2):
        assert process.poll() is None and time.time() < deadline, (tmp_path / "train.log").read_text()[-2000:]
        time.sleep(0.05)
    assert process.poll() is None  # still training: the row is on disk before any save
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    progress = torch.load(run / "state.pt", weights_only=True)["progress"]
    assert not progress["done"] and read_curve(log_path) == progress["curve"]
    assert progress["curve"][-1]["step"] == progress["step"]


def test_export_refuses_to_replace_a_model_trained_on_more_characters(tiny_data, tmp_path):
    evaluate = ["--data", str(tiny_data), "--max-sequences", "32", "--memory-positions", "100"]
    for name, steps in (("long", "12"), ("short", "4")):
        cli("train", "--unit", "gru", *TINY, "--data", str(tiny_data), "--out", str(tmp_path / name / "gru"), "--max-steps", steps)
        cli("evaluate", "--runs", str(tmp_path / name), *evaluate)
    out = tmp_path / "checkpoints"
    cli("export", "--runs", str(tmp_path / "long"), "--data", str(tiny_data), "--out", str(out))
    shipped = (out / "gru.safetensors").read_bytes()
    long_chars = json.loads((out / "metrics.json").read_text())["models"]["gru"]["characters_seen"]
    short_chars = torch.load(tmp_path / "short" / "gru" / "state.pt", weights_only=True)["progress"]["characters"]

    refused = cli("export", "--runs", str(tmp_path / "short"), "--data", str(tiny_data), "--out", str(out), check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert f"gru.safetensors was trained on {long_chars:,} characters, {tmp_path / 'short' / 'gru'} on {short_chars:,}" in refused.stderr
    assert "--out" in refused.stderr and "--force" in refused.stderr
    assert (out / "gru.safetensors").read_bytes() == shipped
    assert json.loads((out / "metrics.json").read_text())["models"]["gru"]["characters_seen"] == long_chars

    # A folder has one vocabulary: models of other text there would read theirs as wrong words, --force or not.
    other_text = tmp_path / "other-text"
    shutil.copytree(out, other_text)
    shutil.copyfile(other_text / "gru.safetensors", other_text / "lstm.safetensors")
    vocabulary = json.loads((other_text / "vocab.json").read_text())
    vocabulary["words"][2:4] = vocabulary["words"][3:1:-1]
    (other_text / "vocab.json").write_text(json.dumps(vocabulary))
    mixed = cli("export", "--runs", str(tmp_path / "short"), "--data", str(tiny_data), "--out", str(other_text), "--force", check=False)
    assert mixed.returncode == 2 and "vocab.json, which lstm use, is not the vocabulary these runs were trained with" in mixed.stderr

    cli("export", "--runs", str(tmp_path / "short"), "--data", str(tiny_data), "--out", str(tmp_path / "mine"))
    cli("export", "--runs", str(tmp_path / "short"), "--data", str(tiny_data), "--out", str(out), "--force")
    assert json.loads((out / "metrics.json").read_text())["models"]["gru"]["characters_seen"] == short_chars
