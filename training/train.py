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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from tqdm import tqdm

from models.checkpoint import load_checkpoint, save_checkpoint
from models.loss import sampled_word_loss, word_loss
from models.net import AutocompleteNet, ModelConfig, Preset, autocast, cpu_bf16_supported
from models.units import NestedLSTM
from models.vocab import UNKNOWN
from training.dataset import SEQUENCE_LENGTH, BatchOrder, Dataset, batch_tensors

STATE_FILE = "state.pt"
LOG_FILE = "log.csv"
FINAL_FILE = "model.safetensors"
SNAPSHOT_DIR = "snapshots"
WARM_START_DIR = Path("models/checkpoints")
LOG_FIELDS = ["step", "seconds", "characters", "train_loss", "valid_loss"]
LEARNING_RATE = 1e-3  # Adam's default, the paper's
# Fresh Adam moments take full-size steps in every weight's gradient sign; on trained weights that
# undid 5-10 M characters of training. Ramping the rate up over these steps after a warm start avoids it.
WARM_START_RAMP_STEPS = 300


@dataclass(frozen=True)
class TrainOptions:
    """One run's settings; `python -m training train` takes its defaults from here."""

    unit: str
    preset: Preset
    data: Path
    out: Path
    bf16: bool = True
    resume: bool = False
    max_minutes: float | None = None
    stop_after_steps: int | None = None  # like max_minutes, by a count of this invocation's steps: a stop, not the budget
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


@dataclass
class Progress:
    """How far a run has come; state.pt keeps it as a dict under "progress"."""

    step: int = 0
    characters: int = 0
    seconds: float = 0.0
    curve: list[dict] = field(default_factory=list)  # the rows of log.csv
    done: bool = False
    snapshots: list[int] = field(default_factory=list)  # the --snapshot-chars marks whose weights are kept
    # Stretches of training on one machine with one loss, in order: {"device", "sampled_words", "characters", "seconds"}.
    legs: list[dict] = field(default_factory=list)
    # The metrics.json history of the weights a warm start continued: points the export keeps before this run's own.
    history: list[dict] = field(default_factory=list)
    warm_started_at: int | None = None  # the step a warm start (fresh Adam moments) began at

    def learning_rate(self) -> float:
        """Adam's rate for the next step: the default, ramped up linearly over the first steps after a warm start."""
        if self.warm_started_at is None:
            return LEARNING_RATE
        return LEARNING_RATE * min(1.0, (self.step - self.warm_started_at + 1) / WARM_START_RAMP_STEPS)

    def enter_leg(self, device: str, sampled_words: int) -> None:
        """Training from here on counts towards a leg on `device` with this loss: the last one if both are unchanged."""
        self.tally()
        if not self.legs or (self.legs[-1]["device"], self.legs[-1]["sampled_words"]) != (device, sampled_words):
            self.legs.append({"device": device, "sampled_words": sampled_words, "characters": 0, "seconds": 0.0})

    def tally(self) -> None:
        """The last leg gets all the training its earlier ones do not account for."""
        if self.legs:
            earlier = self.legs[:-1]
            self.legs[-1]["characters"] = self.characters - sum(leg["characters"] for leg in earlier)
            self.legs[-1]["seconds"] = round(self.seconds - sum(leg["seconds"] for leg in earlier), 1)

    def log(self, train_loss: float, valid_loss: float) -> None:
        self.curve.append({
            "step": self.step, "seconds": round(self.seconds, 1), "characters": self.characters,
            "train_loss": round(train_loss, 4), "valid_loss": round(valid_loss, 4),
        })


@dataclass
class RunningLoss:
    """The training loss since the last row of the log, weighted by real-word positions."""

    total: float = 0.0
    positions: int = 0

    def add(self, loss: float, positions: int) -> None:
        self.total += loss * positions
        self.positions += positions

    @property
    def mean(self) -> float:
        return self.total / max(self.positions, 1)


class RunFolder:
    """A run's files: state.pt (resumable), log.csv, snapshots/ and, once done, model.safetensors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state_path = path / STATE_FILE

    def has_state(self) -> bool:
        return self.state_path.exists()

    def load_progress(self) -> Progress:
        """How far the saved run had come, without building its network."""
        return Progress(**torch.load(self.state_path, map_location="cpu", weights_only=True)["progress"])

    def load_state(self, net: AutocompleteNet, optimizer: torch.optim.Optimizer, preset: str) -> Progress:
        """Restores weights, optimizer moments and the RNG from state.pt, wherever `net` lives; returns the run's progress."""
        # Onto the CPU: load_state_dict moves weights and moments to the net's device, and the RNG state must stay a CPU tensor.
        saved = torch.load(self.state_path, map_location="cpu", weights_only=True)
        if saved["config"] != net.config.to_dict() or saved["preset"] != preset:
            raise ValueError(f"{self.state_path} was trained with {saved['config']} ({saved['preset']}), not {net.config.to_dict()}")
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        # The sampled loss draws its words from this RNG; restored, a resumed run draws what an uninterrupted one would.
        torch.set_rng_state(saved["rng"])
        return Progress(**saved["progress"])

    def save_state(self, net: AutocompleteNet, optimizer: torch.optim.Optimizer, preset: str, progress: Progress) -> None:
        """state.pt and log.csv, each written beside and then moved into place, so a kill mid-write keeps the last good one."""
        self.path.mkdir(parents=True, exist_ok=True)
        progress.tally()
        state = {
            "model": net.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
            "config": net.config.to_dict(), "preset": preset, "progress": asdict(progress),
        }
        torch.save(state, self.path / (STATE_FILE + ".tmp"))
        os.replace(self.path / (STATE_FILE + ".tmp"), self.state_path)
        self.write_log(progress.curve)

    def write_log(self, curve: list[dict]) -> None:
        """log.csv holding exactly `curve`: at the start of a run, so that rows logged after the last save of a killed
        run are not kept, and at every save."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / (LOG_FILE + ".tmp"), "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(curve)
        os.replace(self.path / (LOG_FILE + ".tmp"), self.path / LOG_FILE)

    def append_log(self, row: dict) -> None:
        """One more row of log.csv, on disk as soon as it is logged, so the curve can be followed while the run goes on."""
        with open(self.path / LOG_FILE, "a", newline="") as file:
            csv.DictWriter(file, fieldnames=LOG_FIELDS).writerow(row)

    def save_model(self, net: AutocompleteNet, metadata: dict) -> None:
        save_checkpoint(net, self.path / FINAL_FILE, metadata=metadata)

    def save_snapshot(self, net: AutocompleteNet, mark: int, metadata: dict) -> None:
        """Float16 weights as they are on first passing `mark` characters, for the history of a long run."""
        save_checkpoint(net, self.path / SNAPSHOT_DIR / f"chars-{mark}.safetensors", dtype=torch.float16, metadata=metadata)


@dataclass(frozen=True)
class Processes:
    """This process among those `torchrun` started (alone: rank 0 of 1), and the device it trains on."""

    rank: int
    world: int
    device: torch.device

    @classmethod
    def start(cls, device: str) -> "Processes":
        """Joins torchrun's process group, if there is one: nccl on CUDA, gloo on the CPU."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if device == "cuda" else device)
        if world == 1:
            return cls(0, 1, local)
        if local.type == "cuda":
            # As nanoGPT does: nccl's communicator and every unplaced CUDA call go to this process's GPU, not all to GPU 0.
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if local.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), local)

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def any(self, flags: list[bool]) -> Tensor:
        """Each flag or-ed over all processes, as int32 on this process's device: nccl reduces nothing else."""
        votes = torch.tensor(flags, dtype=torch.int32, device=self.device)
        if self.distributed:
            dist.all_reduce(votes, op=dist.ReduceOp.MAX)
        return votes


def share_of_batch_mean(loss: Tensor, positions: int, batch_positions: int, world: int) -> Tensor:
    """This process's part of the whole batch's masked mean loss, for DDP to average over processes.

    DDP averages gradients. Each process's own mean (over its `positions` real-word positions),
    weighted by `world` times its share of the batch's, makes that average the gradient of the
    batch's mean, however unevenly the processes' sequences hold real words. Alone, the weight is 1.
    """
    return loss * (world * positions / max(batch_positions, 1))


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop checks between steps, so a kill saves first."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def release(self) -> None:
        """Gives the signals back to their previous handlers (train() may run inside a longer-lived process)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


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


def graphed_loss(features, net: AutocompleteNet, chars: Tensor, targets: Tensor, sampled_words: int, bf16: bool) -> tuple[Tensor, int]:
    """`net.loss` with the recurrent part replayed by `graphed_features`."""
    hidden = features(net.embedding(chars))
    if sampled_words:
        return sampled_word_loss(hidden, targets, net.output, sampled_words, bf16=bf16)
    return word_loss(hidden, targets, net.output, bf16=bf16)


def weights_from_state(path: Path) -> tuple[AutocompleteNet, Progress]:
    """A run's current weights from its state.pt, in a net on the CPU, and how far the run had come."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = AutocompleteNet(ModelConfig(**saved["config"]))
    net.load_state_dict(saved["model"])
    return net, Progress(**saved["progress"])


def warm_start_metadata(directory: Path, unit: str) -> dict | None:
    """Characters, steps, curve, legs and history behind the shipped checkpoint of `unit`, from its metrics.json, if any."""
    try:
        metrics = json.loads((directory / "metrics.json").read_text())["models"][unit]
    except (OSError, KeyError, ValueError):
        return None
    # The curve carries on, so the run's log.csv (and the next export) shows the whole training, not only its continuation.
    # Records older than legs were trained in one leg, with the full softmax.
    legs = metrics.get("legs") or [{"device": metrics.get("trained_on", "CPU"), "sampled_words": 0,
                                    "characters": metrics["characters_seen"], "seconds": metrics["training_seconds"]}]
    return {
        "characters": metrics["characters_seen"], "step": metrics["steps"], "seconds": metrics["training_seconds"],
        "curve": list(metrics.get("training_curve", [])), "legs": legs, "history": list(metrics.get("history", [])),
    }


def warm_start(net: AutocompleteNet, shipped: Path) -> Progress:
    """Loads a shipped checkpoint (`<unit>.safetensors` beside its metrics.json) into `net`; returns the progress it stands for."""
    warm = load_checkpoint(shipped)
    recorded = warm_start_metadata(shipped.parent, net.config.unit)
    if warm.config != net.config or recorded is None:
        raise ValueError(f"{shipped} ({warm.config.to_dict()}) cannot continue a {net.config.to_dict()} run of this preset")
    net.load_state_dict(warm.state_dict())
    return Progress(**recorded)


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


def machine_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def checkpoint_metadata(preset: str, corpus: dict, progress: Progress) -> dict:
    """What a saved model was trained on, and for how long; `trained_on` is the machine of the latest leg."""
    progress.tally()
    return {
        "preset": preset, "corpus": corpus, "steps": progress.step, "characters_seen": progress.characters,
        "training_seconds": round(progress.seconds, 1), "trained_on": progress.legs[-1]["device"] if progress.legs else "CPU",
        "legs": progress.legs,
    }


def weights_digest(net: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for tensor in net.state_dict().values():
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def train(options: TrainOptions) -> Path:
    """Train (or resume) one unit; returns the run directory. Writes state.pt, log.csv and, when done, model.safetensors."""
    processes = Processes.start(options.device)
    device = processes.device

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
    if processes.distributed and options.sampled_words:
        raise ValueError("--sampled-words trains one process only; drop it under torchrun")
    if processes.distributed and options.graph:
        raise ValueError("--graph replays the recurrent part outside DDP, whose gradients would then differ between processes; drop it under torchrun")
    if batch_size % processes.world:
        raise ValueError(f"batch size {batch_size} does not split over {processes.world} processes")
    batches = BatchOrder(len(train_chars), batch_size, options.seed)
    if batches.batches_per_epoch == 0:
        raise ValueError(f"the training split has {len(train_chars)} sequences, fewer than one batch of {batch_size}")
    if options.stop_after_steps is not None and options.stop_after_steps <= 0:
        raise ValueError(f"--stop-after-steps must be a positive number of steps, not {options.stop_after_steps}")
    if options.max_chars is not None and options.max_chars <= 0:
        raise ValueError(f"--max-chars must be a positive number of characters, not {options.max_chars}")
    max_chars = options.max_chars or options.preset.max_train_chars or math.inf
    # --max-chars replaces the preset's epochs as the budget, whether it asks for more characters than they hold or fewer;
    # --epochs given beside it still stops the run at its count.
    epochs = options.epochs or (math.inf if options.max_chars else options.preset.epochs)
    max_steps = min(options.max_steps or math.inf, math.ceil(epochs * batches.batches_per_epoch) if math.isfinite(epochs) else math.inf)
    budget_chars = int(min(max_chars, epochs * sequence_lengths.sum()))

    def budget_spent(progress: Progress) -> bool:
        return progress.step >= max_steps or progress.characters >= max_chars

    bf16 = options.bf16 and (device.type != "cpu" or cpu_bf16_supported())
    precision = ("bf16 autocast" if bf16 else "float32 (--no-bf16)" if not options.bf16
                 else "float32: this CPU has no bf16 kernels for recurrent units")
    torch.manual_seed(options.seed)
    net = AutocompleteNet(config).to(device)
    if options.compile and isinstance(net.rnn, NestedLSTM):
        net.rnn.recurrence = "compiled"
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)

    run = RunFolder(options.out)
    shipped = options.warm_start / f"{options.unit}.safetensors" if options.warm_start else None
    if run.has_state():
        saved = run.load_progress()
        if saved.done and budget_spent(saved):
            if processes.leader:
                print(f"{run.path} is finished ({saved.step:,} steps, {saved.characters:,} characters): nothing to train. "
                      "Next: `python -m training evaluate` and `export`; to train it further, pass --resume with a larger --max-chars",
                      flush=True)
            return run.path
        if not options.resume:
            raise ValueError(f"{run.path} holds a run at step {saved.step:,} ({saved.characters:,} characters), short of this budget; "
                             "pass --resume to continue it, or choose another --out")
    steps_limit = f" or step {max_steps:,}" if options.max_steps else ""
    if processes.leader:
        print(f"training {options.unit} ({options.preset.name}, hidden size {config.hidden_size}) on {machine_name(device)} in {precision}, "
              f"until {budget_chars:,} characters ({budget_chars / sequence_lengths.sum():.3g} epochs){steps_limit}; run folder {run.path}",
              flush=True)
    progress = Progress()
    if options.resume and run.has_state():
        progress = run.load_state(net, optimizer, options.preset.name)
        if processes.leader:
            print(f"resuming at step {progress.step:,} ({progress.characters:,} characters) from {run.state_path}", flush=True)
    elif options.resume and shipped and shipped.is_file():
        progress = warm_start(net, shipped)
        progress.warm_started_at = progress.step
        # The shipped weights are already past these marks: their snapshots belong to the run that made them.
        progress.snapshots = [mark for mark in options.snapshot_chars if mark <= progress.characters]
        if processes.leader:
            print(f"{run.state_path} does not exist: warm-starting from {shipped} ({progress.characters:,} characters seen) "
                  f"with fresh optimizer moments and the learning rate ramped up over {WARM_START_RAMP_STEPS} steps; "
                  "the data order continues from its step")
    progress.enter_leg(machine_name(device), options.sampled_words)
    model = torch.nn.parallel.DistributedDataParallel(net) if processes.distributed else net
    features = None
    if options.graph and device.type == "cuda":
        # Captured once, under the autocast setting every step then uses (its weight cache must be off).
        try:
            with autocast("cuda", bf16, cache_enabled=False):
                features = graphed_features(net, batch_size, device)
        except RuntimeError as error:
            print(f"CUDA graph capture failed ({error}); training without graphs", flush=True)

    def validation_loss() -> float:
        return mean_word_loss(net, valid_chars, valid_targets, options.eval_sequences, batch_size, device, bf16)

    def metadata() -> dict:
        return checkpoint_metadata(options.preset.name, dataset.info["corpus"], progress)

    def log_row(window: RunningLoss) -> None:
        progress.log(window.mean, validation_loss())
        run.append_log(progress.curve[-1])

    if processes.leader:
        run.write_log(progress.curve)
    stop = StopRequest()
    began = time.time()
    seconds_before = progress.seconds
    step_before = progress.step
    last_save = began
    window = RunningLoss()
    bar = tqdm(total=budget_chars, initial=progress.characters, unit="char", unit_scale=True,
               disable=not processes.leader, desc=f"{options.unit} ({options.preset.name})")
    model.train()
    while True:
        finished = budget_spent(progress)
        out_of_time = options.max_minutes is not None and time.time() - began >= options.max_minutes * 60
        out_of_steps = options.stop_after_steps is not None and progress.step - step_before >= options.stop_after_steps
        # Decided together, so that every process leaves the loop at the same step.
        finished, stopping = map(bool, processes.any([finished, stop.requested or out_of_time or out_of_steps]).tolist())
        if finished or stopping:
            break

        rows = batches.rows(progress.step)
        x, y = batch_tensors(train_chars, train_targets, rows[processes.rank :: processes.world], device,
                             full_width=features is not None)
        with autocast(device.type, bf16, cache_enabled=features is None):
            if features is None:
                loss, positions = model(x, y, options.sampled_words)
            else:
                loss, positions = graphed_loss(features, net, x, y, options.sampled_words, bf16)
        batch_positions = int(np.count_nonzero(train_targets[rows] > UNKNOWN))
        for group in optimizer.param_groups:
            group["lr"] = progress.learning_rate()
        optimizer.zero_grad(set_to_none=True)
        share_of_batch_mean(loss, positions, batch_positions, processes.world).backward()
        optimizer.step()

        batch_chars = int(sequence_lengths[rows].sum())
        progress.step += 1
        progress.characters += batch_chars
        progress.seconds = seconds_before + time.time() - began
        batch_loss = loss.item()
        window.add(batch_loss, positions)
        bar.update(batch_chars)
        bar.set_postfix(loss=f"{batch_loss:.3f}")
        passed = [mark for mark in options.snapshot_chars if mark <= progress.characters]
        if processes.leader and passed and max(passed) not in progress.snapshots:
            progress.snapshots.append(max(passed))
            run.save_snapshot(net, max(passed), metadata())
        if processes.leader and progress.step % options.eval_every == 0:
            log_row(window)
            window = RunningLoss()
        if time.time() - last_save >= options.save_minutes * 60:
            if processes.leader:
                run.save_state(net, optimizer, options.preset.name, progress)
            last_save = time.time()
    stop.release()
    bar.close()

    progress.seconds = seconds_before + time.time() - began
    progress.done = finished
    if processes.leader:
        # A stopped run logs its last steps too, so even a short one leaves a curve.
        if window.positions:
            log_row(window)
        run.save_state(net, optimizer, options.preset.name, progress)
        if progress.done:
            run.save_model(net, metadata())
        verdict = "done" if progress.done else "stopped; continue with --resume"
        print(f"{run.path}: {progress.step} steps, {progress.characters:,} characters, "
              f"{progress.seconds / 60:.1f} min, {verdict}")
    if processes.distributed:
        # Every rank states its weights' digest, so a run can show that DDP kept them identical.
        print(f"rank {processes.rank}: weights digest {weights_digest(net)}", flush=True)
        # Ranks leave together: one tearing the group down while another still talks to it aborts.
        dist.barrier()
        dist.destroy_process_group()
    return run.path
