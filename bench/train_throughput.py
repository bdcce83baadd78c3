"""Training throughput of the bundled preset on this machine: characters/s of bare steps.

For each unit: float32, bf16 autocast, and (Nested LSTM) bf16 with the torch.compile'd
step. A step is a full forward, fused loss, backward and Adam update on a batch
of 64 random 200-character sequences, the shapes training sees.

    python bench/train_throughput.py [--preset bundled] [--steps 4] [--threads N]
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.net import AutocompleteNet, autocast, get_preset  # noqa: E402
from models.units import UNITS  # noqa: E402


def chars_per_second(unit: str, preset_name: str, bf16: bool, compiled: bool, steps: int) -> float:
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    net = AutocompleteNet(preset.model_config(unit))
    if compiled:
        net.rnn.compiled = True
    optimizer = torch.optim.Adam(net.parameters())
    chars = torch.randint(1, 28, (preset.batch_size, 200))
    targets = torch.randint(2, net.config.num_words, (preset.batch_size, 200))
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps: allocator, oneDNN primitives, compilation
            began = time.perf_counter()
        with autocast("cpu", bf16):
            loss, _ = net(chars, targets=targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return chars.numel() * steps / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bundled")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"preset {args.preset}, torch {torch.__version__}, {args.threads} threads, {args.steps} timed steps")
    print(f"{'unit':<6} {'fp32':>10} {'bf16':>10} {'bf16/fp32':>10} {'bf16+compile':>13}")
    results = {}
    for unit in UNITS:
        fp32 = chars_per_second(unit, args.preset, bf16=False, compiled=False, steps=args.steps)
        bf16 = chars_per_second(unit, args.preset, bf16=True, compiled=False, steps=args.steps)
        compiled = chars_per_second(unit, args.preset, True, True, args.steps) if unit == "nlstm" else None
        results[unit] = bf16
        compiled_text = f"{compiled:>13,.0f}" if compiled else f"{'-':>13}"
        print(f"{unit:<6} {fp32:>10,.0f} {bf16:>10,.0f} {bf16 / fp32:>9.2f}x {compiled_text}", flush=True)
    print(f"Nested LSTM / GRU throughput in bf16: {results['nlstm'] / results['gru']:.2f}")


if __name__ == "__main__":
    main()
