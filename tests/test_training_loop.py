"""The training loop's parts, in-process: what it hands to collectives, how a saved state comes back,
what validation costs, the loss DDP trains on, and how often the data order is drawn."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from models.loss import word_loss
from models.net import BUNDLED, AutocompleteNet, ModelConfig
from training.dataset import prepare_dataset
from training.train import LEARNING_RATE, WARM_START_RAMP_STEPS, Processes, Progress, RunFolder, TrainOptions, train

# The meta device stands for a GPU: on a machine without one, it is the only device besides the CPU,
# and a tensor left on the CPU where the process's device was meant shows only on another device.
OTHER_DEVICE = torch.device("meta")
TINY_CONFIG = ModelConfig(unit="gru", hidden_size=8, num_layers=1, num_words=12)


def tiny_net_and_optimizer(seed: int = 0) -> tuple[AutocompleteNet, torch.optim.Adam]:
    torch.manual_seed(seed)
    net = AutocompleteNet(TINY_CONFIG)
    optimizer = torch.optim.Adam(net.parameters())
    chars = torch.randint(2, 28, (3, 10))
    targets = torch.randint(0, TINY_CONFIG.num_words, (3, 10))
    net(chars, targets)[0].backward()
    optimizer.step()
    return net, optimizer


def test_collectives_get_tensors_on_the_process_device(monkeypatch):
    handed = []

    def nccl_all_reduce(tensor, op):
        # nccl reduces only tensors on the process's GPU; a CPU tensor makes it raise.
        handed.append(tensor.device)

    monkeypatch.setattr(dist, "all_reduce", nccl_all_reduce)
    processes = Processes(rank=0, world=2, device=OTHER_DEVICE)
    votes = processes.any([True, False])
    assert handed == [OTHER_DEVICE]
    assert votes.shape == (2,) and votes.dtype == torch.int32


def test_each_torchrun_process_takes_its_own_gpu(monkeypatch):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    processes = Processes.start("cuda")
    # The GPU is chosen before nccl starts, which sets its communicator up on the current device.
    assert calls == [("set_device", torch.device("cuda:1")), ("init", "nccl")]
    assert processes == Processes(rank=1, world=2, device=torch.device("cuda:1"))


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")
def test_a_state_saved_on_the_cpu_resumes_on_another_device(tmp_path):
    net, optimizer = tiny_net_and_optimizer()
    saved_progress = Progress(step=7, characters=1400, seconds=2.5)
    RunFolder(tmp_path).save_state(net, optimizer, "bundled", saved_progress)
    draws_after_save = torch.rand(4)

    torch.manual_seed(123)
    moved = AutocompleteNet(TINY_CONFIG).to(OTHER_DEVICE)
    moved_optimizer = torch.optim.Adam(moved.parameters())
    progress = RunFolder(tmp_path).load_state(moved, moved_optimizer, "bundled")

    assert progress == saved_progress
    # The RNG continues where the saved run left it (the sampled loss draws from it).
    assert torch.equal(torch.rand(4), draws_after_save)
    moments = moved_optimizer.state[moved.output.weight]
    assert moments["exp_avg"].device == OTHER_DEVICE and int(moments["step"]) == 1


def test_legs_split_the_training_by_machine_and_loss():
    progress = Progress()
    progress.enter_leg("NVIDIA H100", 0)
    progress.characters, progress.seconds = 1000, 10.0
    # Resumed on the same machine with the same loss: the same leg goes on.
    progress.enter_leg("NVIDIA H100", 0)
    progress.characters, progress.seconds = 1500, 12.0
    progress.enter_leg("CPU", 2048)
    progress.characters, progress.seconds = 1800, 112.04
    progress.tally()
    assert progress.legs == [
        {"device": "NVIDIA H100", "sampled_words": 0, "characters": 1500, "seconds": 12.0},
        {"device": "CPU", "sampled_words": 2048, "characters": 300, "seconds": 100.0},
    ]


def test_a_warm_start_ramps_the_learning_rate_up_and_a_fresh_run_does_not():
    assert Progress(step=0).learning_rate() == Progress(step=5000).learning_rate() == LEARNING_RATE
    warm = Progress(step=1000, warm_started_at=1000)
    rates = []
    for _ in range(WARM_START_RAMP_STEPS + 2):
        rates.append(warm.learning_rate())
        warm.step += 1
    assert rates[0] == pytest.approx(LEARNING_RATE / WARM_START_RAMP_STEPS)
    assert rates[WARM_START_RAMP_STEPS // 2 - 1] == pytest.approx(LEARNING_RATE / 2)
    assert all(earlier < later for earlier, later in zip(rates[:WARM_START_RAMP_STEPS], rates[1:WARM_START_RAMP_STEPS]))
    assert rates[WARM_START_RAMP_STEPS - 1 :] == [LEARNING_RATE] * 3


def test_the_state_keeps_the_layout_earlier_runs_wrote(tmp_path):
    net, optimizer = tiny_net_and_optimizer()
    row = {"step": 3, "seconds": 1.5, "characters": 500, "train_loss": 2.0, "valid_loss": 2.5}
    RunFolder(tmp_path).save_state(net, optimizer, "bundled", Progress(3, 500, 1.5, [row], False, [100]))
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert sorted(state) == ["config", "model", "optimizer", "preset", "progress", "rng"]
    assert state["config"] == TINY_CONFIG.to_dict() and state["preset"] == "bundled"
    assert state["progress"] == {"step": 3, "characters": 500, "seconds": 1.5, "curve": [row], "done": False, "snapshots": [100], "legs": [],
                                 "history": [], "warm_started_at": None}
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,seconds,characters,train_loss,valid_loss", "3,1.5,500,2.0,2.5"]

    # A state written before snapshots, legs, warm-start ramps and history existed has none in its progress, and resumes all the same.
    for field in ("snapshots", "legs", "warm_started_at", "history"):
        del state["progress"][field]
    torch.save(state, tmp_path / "state.pt")
    fresh, fresh_optimizer = tiny_net_and_optimizer(seed=1)
    assert RunFolder(tmp_path).load_state(fresh, fresh_optimizer, "bundled") == Progress(3, 500, 1.5, [row], False, [])
    assert all(torch.equal(fresh.state_dict()[name], tensor) for name, tensor in net.state_dict().items())
    with pytest.raises(ValueError, match=r"state\.pt was trained with .* \(bundled\), not"):
        RunFolder(tmp_path).load_state(fresh, fresh_optimizer, "paper")


def test_validation_loss_computes_no_gradients():
    torch.manual_seed(0)
    output = torch.nn.Linear(8, 30)  # its weights require grad, as the network's do while it validates
    hidden = torch.randn(2, 40, 8)
    targets = torch.randint(0, 30, (2, 40))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        loss, positions = word_loss(hidden, targets, output, bf16=False)
    mask = targets > 1
    assert positions == int(mask.sum())
    assert float(loss) == pytest.approx(float(F.cross_entropy(output(hidden[mask]), targets[mask]).detach()), rel=1e-6)
    # The logits' product alone: gradients would add two more of the same size.
    assert counter.get_total_flops() == 2 * positions * 8 * 30


def ddp_rank_gradients(rank: int, world: int, store: str, chars: torch.Tensor, targets: torch.Tensor, out: str) -> None:
    """One rank of a gloo DDP step on rows rank::world of the batch, as the training loop splits it; saves the gradients."""
    from training.train import share_of_batch_mean

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(AutocompleteNet(TINY_CONFIG))
    loss, positions = model(chars[rank::world], targets[rank::world])
    share_of_batch_mean(loss, positions, int((targets > 1).sum()), world).backward()
    torch.save({name: parameter.grad for name, parameter in model.module.named_parameters()}, f"{out}.{rank}")
    # DDP's reducer lets go of its gloo work and both ranks leave together: a rank that tears gloo
    # down while the other still talks to it dies with SIGABRT ("terminate called without an active exception").
    del model
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_trains_on_the_masked_mean_of_the_whole_batch(tmp_path):
    generator = torch.Generator().manual_seed(0)
    chars = torch.randint(2, 28, (4, 12), generator=generator)
    targets = torch.randint(2, TINY_CONFIG.num_words, (4, 12), generator=generator)
    targets[1::2, 3:] = 1  # rank 1's rows: mostly <unknown>, so it holds far fewer real-word positions than rank 0
    assert int((targets[0::2] > 1).sum()) == 24 and int((targets[1::2] > 1).sum()) == 6

    mp.spawn(ddp_rank_gradients, args=(2, str(tmp_path / "store"), chars, targets, str(tmp_path / "grad")), nprocs=2)
    torch.manual_seed(0)
    alone = AutocompleteNet(TINY_CONFIG)
    alone(chars, targets)[0].backward()
    for rank in range(2):
        gradients = torch.load(tmp_path / f"grad.{rank}", weights_only=True)
        for name, parameter in alone.named_parameters():
            assert torch.allclose(gradients[name], parameter.grad, rtol=1e-5, atol=1e-7), (rank, name)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> tuple:
    """A prepared dataset whose training split holds two batches of 64 sequences (and a remainder)."""
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park", "birds", "fly"]
    text = " ".join(words[i] for i in rng.integers(0, len(words), 8_000))
    directory = tmp_path_factory.mktemp("small")
    info = prepare_dataset(text, directory, {"name": "small", "sha256": "0"}, vocabulary_size=10)
    return directory, info["sequences"]["train"]


def test_the_data_order_is_drawn_once_per_epoch(small_dataset, tmp_path, monkeypatch):
    data, sequences = small_dataset
    assert sequences // BUNDLED.batch_size == 2
    drawn = []
    real_default_rng = np.random.default_rng

    class CountingGenerator:
        def __init__(self, seed: int) -> None:
            self.generator = real_default_rng(seed)

        def permutation(self, count: int) -> np.ndarray:
            drawn.append(count)
            return self.generator.permutation(count)

    monkeypatch.setattr(np.random, "default_rng", CountingGenerator)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    train(TrainOptions(unit="gru", preset=BUNDLED, data=data, out=tmp_path / "run", bf16=False, epochs=3, max_steps=5,
                       hidden_size=8, eval_every=100, eval_sequences=8, device="cpu"))
    assert drawn == [sequences] * 3  # 5 steps of 2 per epoch: epochs 0, 1 and 2
