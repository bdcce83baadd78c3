"""One plain training loop: Adam, batch 64, masked word loss, bf16 autocast, resumable.

Runs alone or under `torchrun` (DistributedDataParallel: gloo on CPU, nccl on
CUDA); the global batch stays the preset's, split across processes.
"""

import csv
import hashlib
import json
import math
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from models.checkpoint import load_checkpoint, save_checkpoint
from models.loss import sampled_word_loss, word_loss
from models.net import AutocompleteNet, Preset, autocast, cpu_bf16_supported
from training.dataset import SEQUENCE_LENGTH, Dataset

STATE_FILE = "state.pt"
LOG_FILE = "log.csv"
FINAL_FILE = "model.safetensors"
SNAPSHOT_DIR = "snapshots"
WARM_START_DIR = Path("models/checkpoints")
LOG_FIELDS = ["step", "seconds", "characters", "train_loss", "valid_loss"]


@dataclass(frozen=True)
class TrainOptions:
    unit: str
    preset: Preset
    data: Path
    out: Path
    bf16: bool = True
    resume: bool = False
    max_minutes: float | None = None
    max_chars: int | None = None
    epochs: float | None = None
    max_steps: int | None = None
    hidden_size: int | None = None
    eval_every: int = 200
    eval_sequences: int = 256
    save_minutes: float = 5.0
    compile: bool = False
    graph: bool = False
    sampled_words: int = 0
    snapshot_chars: tuple[int, ...] = ()
    warm_start: Path | None = WARM_START_DIR
    device: str = "cpu"
    seed: int = 0


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop checks between steps, so a kill saves first."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True


def batch_tensors(chars: np.ndarray, targets: np.ndarray, rows: np.ndarray, device: torch.device, full_width: bool = False):
    """Char ids and targets of the given sequences, as int64 tensors, trimmed to the longest one.

    `full_width` keeps all 200 columns instead, for code captured as a CUDA graph, whose shapes are fixed.
    """
    rows = np.sort(rows)
    x = torch.from_numpy(chars[rows].astype(np.int64))
    y = torch.from_numpy(targets[rows].astype(np.int64))
    width = SEQUENCE_LENGTH if full_width else int((x != 0).sum(dim=1).max())
    return x[:, :width].to(device), y[:, :width].to(device)


class _Features(torch.nn.Module):
    """The unit's output sequence alone: the part of a step that CUDA graph capture replays."""

    def __init__(self, rnn: torch.nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        return self.rnn(embedded)[0]


def graphed_features(net: AutocompleteNet, batch_size: int, device: torch.device):
    """The recurrent part of `net` captured as CUDA graphs (forward and backward) for [batch, 200] inputs.

    The Nested LSTM runs ~60 small kernels per character; launched one by one from Python they,
    not the GPU, set the pace. Replaying the whole sequence as one graph removes that overhead.
    Must be called (and used) under the same autocast setting, with autocast's cache disabled.
    """
    sample = torch.zeros(batch_size, SEQUENCE_LENGTH, net.config.hidden_size, device=device, requires_grad=True)
    return torch.cuda.make_graphed_callables(_Features(net.rnn), (sample,))


def warm_start_metadata(directory: Path, unit: str) -> dict | None:
    """Characters and steps behind the shipped checkpoint of `unit`, from its metrics.json, if any."""
    try:
        metrics = json.loads((directory / "metrics.json").read_text())["models"][unit]
    except (OSError, KeyError, ValueError):
        return None
    return {"characters": metrics["characters_seen"], "step": metrics["steps"], "seconds": metrics["training_seconds"]}


@torch.no_grad()
def mean_word_loss(net: AutocompleteNet, chars, targets, sequences: int, batch_size: int, device, bf16: bool) -> float:
    """Masked cross-entropy over the first `sequences` sequences of a split."""
    net.eval()
    total, count = 0.0, 0
    for start in range(0, min(sequences, len(chars)), batch_size):
        rows = np.arange(start, min(start + batch_size, sequences, len(chars)))
        x, y = batch_tensors(chars, targets, rows, device)
        with autocast(device.type, bf16):
            loss, positions = net(x, y)
        total += float(loss) * positions
        count += positions
    net.train()
    return total / max(count, 1)


def weights_digest(net: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for tensor in net.state_dict().values():
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def train(options: TrainOptions) -> Path:
    """Train (or resume) one unit; returns the run directory. Writes state.pt, log.csv and, when done, model.safetensors."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if options.device == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if options.device == "cuda" else options.device)

    dataset = Dataset.open(options.data)
    train_chars, train_targets = dataset.split("train")
    valid_chars, valid_targets = dataset.split("valid")
    sequence_lengths = np.count_nonzero(train_chars, axis=1)
    config = replace(options.preset.model_config(options.unit), num_words=len(dataset.vocabulary))
    if options.hidden_size:
        config = replace(config, hidden_size=options.hidden_size)
    batch_size = options.preset.batch_size
    if options.sampled_words < 0:
        raise ValueError(f"--sampled-words must be 0 (exact) or a positive number of draws, not {options.sampled_words}")
    if distributed and options.sampled_words:
        raise ValueError("--sampled-words trains one process only; drop it under torchrun")
    if batch_size % world:
        raise ValueError(f"batch size {batch_size} does not split over {world} processes")
    batches_per_epoch = len(train_chars) // batch_size
    if batches_per_epoch == 0:
        raise ValueError(f"the training split has {len(train_chars)} sequences, fewer than one batch of {batch_size}")
    max_chars = options.max_chars or options.preset.max_train_chars or math.inf
    epochs = options.epochs or options.preset.epochs
    max_steps = min(options.max_steps or math.inf, math.ceil(epochs * batches_per_epoch))

    if options.bf16 and device.type == "cpu" and not cpu_bf16_supported():
        options = replace(options, bf16=False)
        if rank == 0:
            print("this CPU has no bf16 kernels for recurrent units; training in float32", flush=True)
    torch.manual_seed(options.seed)
    net = AutocompleteNet(config).to(device)
    if options.compile and config.unit == "nlstm":
        net.rnn.compiled = True
    optimizer = torch.optim.Adam(net.parameters())
    progress_state = {"step": 0, "characters": 0, "seconds": 0.0, "curve": [], "done": False, "snapshots": []}

    out = options.out
    state_path = out / STATE_FILE
    if state_path.exists() and not options.resume:
        raise ValueError(f"{state_path} exists; pass --resume to continue it, or choose another --out")
    if options.resume and state_path.exists():
        # Loaded onto the CPU: load_state_dict moves weights and moments to the device, and the RNG state must stay a CPU tensor.
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        if saved["config"] != config.to_dict() or saved["preset"] != options.preset.name:
            raise ValueError(f"{state_path} was trained with {saved['config']} ({saved['preset']}), not {config.to_dict()}")
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        progress_state = {"snapshots": [], **saved["progress"]}
    elif options.resume and options.warm_start and (options.warm_start / f"{options.unit}.safetensors").is_file():
        shipped = options.warm_start / f"{options.unit}.safetensors"
        warm = load_checkpoint(shipped)
        recorded = warm_start_metadata(options.warm_start, options.unit)
        if warm.config != config or recorded is None:
            raise ValueError(f"{shipped} ({warm.config.to_dict()}) cannot continue a {config.to_dict()} run of this preset")
        net.load_state_dict(warm.state_dict())
        progress_state.update(recorded)
        if rank == 0:
            print(f"{state_path} does not exist: warm-starting from {shipped} ({recorded['characters']:,} characters seen) "
                  "with fresh optimizer moments; the data order continues from its step")
        if progress_state["done"] and (progress_state["step"] >= max_steps or progress_state["characters"] >= max_chars):
            if rank == 0:
                print(f"{out} is already trained ({progress_state['step']} steps); nothing to do")
            return out
    model = torch.nn.parallel.DistributedDataParallel(net) if distributed else net

    def save(done: bool = False) -> None:
        if rank != 0:
            return
        out.mkdir(parents=True, exist_ok=True)
        progress_state["done"] = done
        snapshot = {
            "model": net.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
            "config": config.to_dict(), "preset": options.preset.name, "progress": progress_state,
        }
        torch.save(snapshot, out / (STATE_FILE + ".tmp"))
        os.replace(out / (STATE_FILE + ".tmp"), state_path)
        with open(out / (LOG_FILE + ".tmp"), "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(progress_state["curve"])
        os.replace(out / (LOG_FILE + ".tmp"), out / LOG_FILE)
        if done:
            save_checkpoint(net, out / FINAL_FILE, metadata=trained_metadata())

    def trained_metadata() -> dict:
        return {
            "preset": options.preset.name, "corpus": dataset.info["corpus"], "steps": progress_state["step"],
            "characters_seen": progress_state["characters"], "training_seconds": round(progress_state["seconds"], 1),
            "trained_on": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        }

    def save_snapshot() -> None:
        """Weights as they are on first passing a `snapshot_chars` mark, for the history of a long run."""
        passed = [mark for mark in options.snapshot_chars if mark <= progress_state["characters"]]
        if rank != 0 or not passed or max(passed) in progress_state["snapshots"]:
            return
        progress_state["snapshots"].append(max(passed))
        progress_state["seconds"] = seconds_before + time.time() - began
        path = out / SNAPSHOT_DIR / f"chars-{max(passed)}.safetensors"
        save_checkpoint(net, path, dtype=torch.float16, metadata=trained_metadata())

    def log_row() -> None:
        nonlocal window_loss, window_count
        valid = mean_word_loss(net, valid_chars, valid_targets, options.eval_sequences, batch_size, device, options.bf16)
        progress_state["curve"].append({
            "step": progress_state["step"], "seconds": round(progress_state["seconds"], 1),
            "characters": progress_state["characters"], "train_loss": round(window_loss / max(window_count, 1), 4),
            "valid_loss": round(valid, 4),
        })
        window_loss, window_count = 0.0, 0

    stop = StopRequest()
    began = time.time()
    seconds_before = progress_state["seconds"]
    last_save = began
    window_loss, window_count = 0.0, 0
    total_chars = min(max_chars, int(epochs * sequence_lengths.sum()))
    bar = tqdm(total=total_chars, initial=progress_state["characters"], unit="char", unit_scale=True,
               disable=rank != 0, desc=f"{options.unit} ({options.preset.name})")
    model.train()
    features = None
    if options.graph and device.type == "cuda":
        # Captured once, under the autocast setting every step then uses (its weight cache must be off).
        try:
            with autocast("cuda", options.bf16, cache_enabled=False):
                features = graphed_features(net, batch_size, device)
        except RuntimeError as error:
            print(f"CUDA graph capture failed ({error}); training without graphs", flush=True)
    order_epoch, order = None, None
    while True:
        step = progress_state["step"]
        finished = step >= max_steps or progress_state["characters"] >= max_chars
        out_of_time = options.max_minutes is not None and time.time() - began >= options.max_minutes * 60
        # On the process's device: nccl reduces only CUDA tensors.
        halt = torch.tensor([finished, stop.requested or out_of_time], dtype=torch.int32, device=device)
        if distributed:
            dist.all_reduce(halt, op=dist.ReduceOp.MAX)
        if halt.any():
            progress_state["seconds"] = seconds_before + time.time() - began
            if halt[0] and rank == 0 and window_count:
                log_row()
            save(done=bool(halt[0]))
            break
        epoch, position = divmod(step, batches_per_epoch)
        if epoch != order_epoch:
            order_epoch, order = epoch, np.random.default_rng(options.seed + epoch).permutation(len(train_chars))
        rows = order[position * batch_size : (position + 1) * batch_size]
        x, y = batch_tensors(train_chars, train_targets, rows[rank::world], device, full_width=features is not None)
        if features is None:
            with autocast(device.type, options.bf16):
                loss, positions = model(x, y, options.sampled_words)
        else:
            with autocast("cuda", options.bf16, cache_enabled=False):
                hidden = features(net.embedding(x))
                if options.sampled_words:
                    loss, positions = sampled_word_loss(hidden, y, net.output, options.sampled_words)
                else:
                    loss, positions = word_loss(hidden, y, net.output, bf16=options.bf16)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        batch_chars = int(sequence_lengths[rows].sum())
        progress_state["step"] = step + 1
        progress_state["characters"] += batch_chars
        batch_loss = loss.item()
        window_loss += batch_loss * positions
        window_count += positions
        bar.update(batch_chars)
        bar.set_postfix(loss=f"{batch_loss:.3f}")
        save_snapshot()
        if progress_state["step"] % options.eval_every == 0 and rank == 0:
            progress_state["seconds"] = seconds_before + time.time() - began
            log_row()
        if time.time() - last_save >= options.save_minutes * 60:
            progress_state["seconds"] = seconds_before + time.time() - began
            save()
            last_save = time.time()
    bar.close()
    if rank == 0:
        verdict = "done" if progress_state["done"] else "stopped; continue with --resume"
        print(f"{out}: {progress_state['step']} steps, {progress_state['characters']:,} characters, "
              f"{progress_state['seconds'] / 60:.1f} min, {verdict}")
    if distributed:
        # Every rank states its weights' digest, so a run can show that DDP kept them identical.
        print(f"rank {rank}: weights digest {weights_digest(net)}", flush=True)
        dist.destroy_process_group()
    return out
