"""Train a preset's units side by side on one machine, evaluating snapshots while training goes on.

Made for a borrowed accelerator with a hard time limit: every unit trains in its
own process (`python -m training train ... --resume --max-minutes M`), so one
unit's failure stops no other; each snapshot a run writes is evaluated (test
metrics on the accelerator, memory profile on the CPU) by another process while
training continues; at the end every unit, finished or stopped by the clock,
leaves float16 weights and all its JSON in one folder that is small enough to
carry back.
"""

import json
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from training.train import FINAL_FILE, LOG_FILE, SNAPSHOT_DIR, STATE_FILE, weights_from_state

POLL_SECONDS = 5
# The float16 weights' evaluation, beside the run (the campaign's out folder holds only weights and the archive).
FINAL_EVALUATION = "final-evaluation.json"


@dataclass(frozen=True)
class CampaignOptions:
    preset: str
    units: tuple[str, ...]
    data: Path
    runs: Path
    out: Path
    device: str
    max_minutes: float
    snapshot_chars: tuple[int, ...]
    graph_units: tuple[str, ...]
    from_scratch: bool = False
    memory_positions: int = 20_000
    evaluation_threads: int = 4


def python_module(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "training", *arguments]


def start_training(options: CampaignOptions, unit: str, bf16: bool = True) -> subprocess.Popen:
    run = options.runs / unit
    run.mkdir(parents=True, exist_ok=True)
    command = python_module(
        "train", "--unit", unit, "--preset", options.preset, "--data", str(options.data), "--out", str(run),
        "--device", options.device, "--resume", *(["--no-warm-start"] if options.from_scratch else []), "--max-minutes", str(options.max_minutes), "--save-minutes", "2",
        "--snapshot-chars", ",".join(map(str, options.snapshot_chars)),
        *(["--graph"] if unit in options.graph_units else []),
        *([] if bf16 else ["--no-bf16"]),
    )
    return subprocess.Popen(command, stdout=open(run / "train.out", "a"), stderr=subprocess.STDOUT)


def start_evaluation(options: CampaignOptions, checkpoint: Path, result: Path, threads: int) -> subprocess.Popen:
    command = python_module(
        "evaluate", "--checkpoint", str(checkpoint), "--out", str(result),
        "--data", str(options.data), "--device", options.device, "--threads", str(threads),
        "--memory-positions", str(options.memory_positions),
    )
    return subprocess.Popen(command, stdout=open(result.with_suffix(".out"), "w"), stderr=subprocess.STDOUT)


def export_weights(options: CampaignOptions, unit: str, target: Path) -> bool:
    """Float16 weights of the run's finished model, or else of its latest resumable state; False if it has neither."""
    run = options.runs / unit
    if (run / FINAL_FILE).is_file():
        net = load_checkpoint(run / FINAL_FILE)
        metadata = {key: json.loads(value) for key, value in read_metadata(run / FINAL_FILE).items() if key not in ("format", "config")}
        metadata["done"] = True
    elif (run / STATE_FILE).is_file():
        net, progress = weights_from_state(run / STATE_FILE)
        metadata = {
            "preset": options.preset, "steps": progress.step, "characters_seen": progress.characters,
            "training_seconds": round(progress.seconds, 1), "legs": progress.legs, "done": False,
        }
    else:
        return False
    save_checkpoint(net, target, dtype=torch.float16, metadata=metadata)
    return True


def pack(options: CampaignOptions) -> Path:
    """All logs and evaluations so far in one archive, replaced atomically, so a run cut short still leaves one."""
    archive = options.out / "campaign.tar.gz"
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for unit in options.units:
            run = options.runs / unit
            snapshots = run / SNAPSHOT_DIR
            final = run / FINAL_EVALUATION
            for path in [run / LOG_FILE, run / "train.out", final, final.with_suffix(".out"),
                         *sorted(snapshots.glob("*.json")), *sorted(snapshots.glob("*.out"))]:
                if path.is_file():
                    tar.add(path, arcname=f"{unit}/{path.relative_to(run)}")
    partial.replace(archive)
    return archive


def run_campaign(options: CampaignOptions) -> Path:
    """Train, evaluate and pack; returns the archive of logs and evaluations (weights lie beside it in `out`)."""
    began = time.time()
    options.out.mkdir(parents=True, exist_ok=True)
    training = {unit: start_training(options, unit) for unit in options.units}
    retried: set[str] = set()
    evaluations: dict[Path, subprocess.Popen] = {}
    reported: set[Path] = set()

    def log(message: str) -> None:
        print(f"[{time.time() - began:6.0f} s] {message}", flush=True)

    def evaluate_new_snapshots() -> None:
        for unit in options.units:
            for snapshot in sorted((options.runs / unit / SNAPSHOT_DIR).glob("*.safetensors")):
                if snapshot not in evaluations:
                    evaluations[snapshot] = start_evaluation(options, snapshot, snapshot.with_suffix(".json"), options.evaluation_threads)
                    log(f"evaluating {snapshot}")

    def collect_finished_evaluations() -> None:
        for path, process in list(evaluations.items()):
            if process.poll() is not None and path not in reported:
                reported.add(path)
                log(f"evaluation of {path} exited with {process.returncode}")
                pack(options)

    while any(process.poll() is None for process in training.values()):
        for unit, process in training.items():
            # A failure in the first minutes (an unsupported bf16 kernel, say) gets one retry in float32.
            if process.poll() not in (None, 0) and unit not in retried:
                retried.add(unit)
                log(f"{unit} training exited with {process.returncode}; retrying once without bf16")
                training[unit] = start_training(options, unit, bf16=False)
        evaluate_new_snapshots()
        collect_finished_evaluations()
        time.sleep(POLL_SECONDS)
    evaluate_new_snapshots()
    for unit, process in training.items():
        log(f"{unit} training exited with {process.returncode}")

    finals = {}
    for unit in options.units:
        target = options.out / f"{unit}.safetensors"
        if export_weights(options, unit, target):
            finals[unit] = target
            result = options.runs / unit / FINAL_EVALUATION
            evaluations[target] = start_evaluation(options, target, result, options.evaluation_threads)
    pack(options)
    while any(process.poll() is None for process in evaluations.values()):
        collect_finished_evaluations()
        time.sleep(POLL_SECONDS)
    collect_finished_evaluations()
    archive = pack(options)
    results = {unit: options.runs / unit / FINAL_EVALUATION for unit in finals}
    summary = {unit: json.loads(path.read_text())["test"] if path.is_file() else None for unit, path in results.items()}
    print(json.dumps(summary, indent=1))
    log(f"campaign done; weights and {archive.name} in {options.out}")
    return archive
