"""Training throughput of the bundled preset on this machine: characters/s of bare steps, old step beside new.

For each unit, in one run: the old exact step (fused full-softmax loss, the Nested LSTM's
recurrence through eager autograd) in float32 and in bf16 autocast, and the new step (the
sampled loss, `--sampled-words K`, over the batch's own words, the most frequent words and
K power-law draws over the other ranks; the Nested LSTM's hand-written recurrence) in bf16
for each K asked for. A step is a full
forward, loss, backward and Adam update on a batch of 64 sequences of the training split
when a prepared dataset is given (the real mix of words decides how many candidates there
are), else on random ones.

Then the Nested LSTM's recurrence alone: forward and backward of the unit on a
[batch, 200, width] input, each recurrence of models.units.RECURRENCES, the compiled one's
first call (the compilation) reported apart, the recurrences taking turns.

    python bench/train_throughput.py [--data data/wiki100m] [--sampled 1024 2048] [--steps 4] [--threads N]
                                  [--units nlstm] [--repeats 5] [--cpu-time]

With `--threads 1 --cpu-time` the steps are timed by the process's CPU time instead of the
wall clock: on a machine shared with other jobs that is what one idle core would take.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.net import AutocompleteNet, autocast, cpu_bf16_supported, get_preset
from models.units import PAPER_UNITS, RECURRENCES, NestedLSTM
from training.dataset import Dataset, batch_tensors


def batches(data: Path | None, batch_size: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` training batches: consecutive rows of the training split, or random sequences without data."""
    if data is None:
        generator = torch.Generator().manual_seed(0)
        return [(torch.randint(1, 28, (batch_size, 200), generator=generator),
                 torch.randint(2, 2**14 + 2, (batch_size, 200), generator=generator)) for _ in range(count)]
    chars, targets = Dataset.open(data).split("train")
    return [batch_tensors(chars, targets, np.arange(index * batch_size, (index + 1) * batch_size), torch.device("cpu"))
            for index in range(count)]


def chars_per_second(unit: str, preset_name: str, bf16: bool, sampled: int, steps: int, data: list, recurrence: str,
                     clock=time.perf_counter) -> float:
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    net = AutocompleteNet(preset.model_config(unit))
    if isinstance(net.rnn, NestedLSTM):
        net.rnn.recurrence = recurrence
    optimizer = torch.optim.Adam(net.parameters())
    characters = 0
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps: allocator, oneDNN primitives
            began = clock()
        chars, targets = data[step % len(data)]
        with autocast("cpu", bf16):
            loss, _ = net(chars, targets, sampled or None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            characters += int((chars != 0).sum())
    return characters / (clock() - began)


def recurrence_seconds(preset_name: str, repeats: int, clock=time.perf_counter) -> dict[str, tuple[float, float]]:
    """Per recurrence: seconds of the first forward + backward of the preset's Nested LSTM (with the
    compiled one, its compilation), then the median of `repeats` more, the recurrences taking turns."""
    config = get_preset(preset_name).model_config("nlstm")
    x = torch.randn(get_preset(preset_name).batch_size, 200, config.hidden_size, requires_grad=True)
    units = {}
    for recurrence in RECURRENCES:
        torch.manual_seed(0)
        units[recurrence] = NestedLSTM(config.hidden_size, config.hidden_size, config.num_layers, config.depth)
        units[recurrence].recurrence = recurrence
    seconds: dict[str, list[float]] = {recurrence: [] for recurrence in RECURRENCES}
    for _ in range(repeats + 1):
        for recurrence, unit in units.items():
            began = clock()
            outputs, _ = unit(x)
            outputs.sum().backward()
            seconds[recurrence].append(clock() - began)
    return {recurrence: (times[0], float(np.median(times[1:]))) for recurrence, times in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bundled")
    parser.add_argument("--data", type=Path, help="prepared dataset for real batches (default: random sequences)")
    parser.add_argument("--sampled", type=int, nargs="*", default=[1024, 2048], help="K values of the new step")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--units", nargs="*", default=list(PAPER_UNITS), help="units of the step table")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of the recurrence alone")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cpu-time", action="store_true", help="time the steps by this process's CPU time, not the wall clock")
    args = parser.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    data = batches(args.data, get_preset(args.preset).batch_size, args.steps + 2)
    bf16 = cpu_bf16_supported()
    if not bf16:
        print("this CPU has no bf16 kernels for recurrent units: the bf16 columns below run in float32")
    print(f"preset {args.preset}, torch {torch.__version__}, {args.threads} threads, {args.steps} timed steps, "
          f"{'training split' if args.data else 'random'} batches, timed by {'CPU time' if args.cpu_time else 'the wall clock'}")
    sampled_titles = "".join(f" {f'sampled K={k}':>15} {'speed-up':>8}" for k in args.sampled)
    print(f"{'unit':<6} {'exact fp32':>10} {'exact bf16':>10}{sampled_titles}   (characters/s)")
    for unit in args.units:
        fp32 = chars_per_second(unit, args.preset, False, 0, args.steps, data, "eager", clock)
        exact = chars_per_second(unit, args.preset, bf16, 0, args.steps, data, "eager", clock)
        row = f"{unit:<6} {fp32:>10,.0f} {exact:>10,.0f}"
        for draws in args.sampled:
            sampled = chars_per_second(unit, args.preset, bf16, draws, args.steps, data, "hand-written", clock)
            row += f" {sampled:>15,.0f} {sampled / exact:>7.2f}x"
        print(row, flush=True)
    if bf16:
        print("under bf16 autocast the Nested LSTM keeps the eager recurrence: its new step above runs it")
    print(f"\nNested LSTM recurrence alone, forward + backward on [{get_preset(args.preset).batch_size}, 200, width], float32:")
    times = recurrence_seconds(args.preset, args.repeats, clock)
    eager = times["eager"][1]
    for recurrence, (first, median) in times.items():
        print(f"  {recurrence:<13} {median * 1000:>8,.0f} ms  {eager / median:>5.2f}x eager   (first call {first:,.1f} s)")


if __name__ == "__main__":
    main()
