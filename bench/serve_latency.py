"""Server-side latency of the serving engine at the bundled model sizes.

Prints, in one run: per-keystroke latency for every served unit (incremental vs full
recompute), the hover-row latency (a text seen for the first time, and one whose
forward pass is cached), and the full connectivity matrix for T = 100,
200, 400 with our batched reverse sweep vs one autograd backward per row vs
Captum's `Saliency` per row, next to the FLOP floor of the same work; then the
full matrix from the autograd sweep (the path of units without a hand-written
sweep) beside the hand-written sweeps, for every served model, every installed unit
without a served checkpoint (random weights at the bundled size) and a random
width-256, 2-layer tanh RNN. Last, the two answers of issue 33, uncached: a counterfactual
(one earlier word replaced, every served unit's guesses and edited row) at T = 200, and the
unrolled gradient norms (Figure 5c) at T = 60, per unit. It runs with as many PyTorch
threads as one process of the server has by default (`--threads` to change it), so the
times are the ones a reader waits for.

    python bench/serve_latency.py                   # bundled checkpoints, or random ones of that size
    python bench/serve_latency.py --sample-rows 0   # time every per-row baseline row instead of a sample
    python bench/serve_latency.py --reach-only      # only the counterfactual and unrolled answers

Captum is a bench-only dependency (`pip install .[bench]`).
"""

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_checkpoints import choose_checkpoints

from app.edits import edit_word
from app.engine import InferenceEngine
from app.pool import InferencePool, configure_inference_thread, configure_process
from app.registry import load_registry
from app.settings import Settings
from models.connectivity import connectivity_rows, record
from models.net import BUNDLED, AutocompleteNet, ModelConfig
from models.text import encode, normalise
from models.units import Unit, installed_units, register_unit

PASSAGE = (
    "anarchism originated as a term of abuse first used against early working class radicals including the diggers of "
    "the english revolution and the sans culottes of the french revolution whilst the term is still used in a pejorative "
    "way to describe any act that used violent means to destroy the organization of society it has also been taken up as "
    "a positive label by self defined anarchists the word anarchism is derived from the greek without archons ruler chief king"
)


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def keystroke_latency(registry, text: str, repeats: int) -> tuple[float, float]:
    """Median ms for one more character on every served unit: incremental vs full recompute."""
    incremental = InferenceEngine(registry, state_cache_size=100_000, integrated_gradients_steps=32, max_connectivity_work=10**9)
    recompute = InferenceEngine(registry, state_cache_size=0, integrated_gradients_steps=32, max_connectivity_work=10**9)
    start = len(text) - repeats
    for model_id in registry.models:
        incremental.suggest(model_id, text[:start], 3, "last")

    def type_all(engine: InferenceEngine):
        times = []
        for length in range(start + 1, len(text) + 1):
            begin = time.perf_counter()
            for model_id in registry.models:
                engine.suggest(model_id, text[:length], 3, "last")
            times.append((time.perf_counter() - begin) * 1000)
        return statistics.median(times)

    return type_all(incremental), type_all(recompute)


def per_row_autograd(net: AutocompleteNet, chars: torch.Tensor, position: int, word_id: int) -> torch.Tensor:
    """One plain autograd backward for one row (the prefix up to `position` suffices: the units are causal)."""
    inputs = net.embedding(chars[None, : position + 1]).detach().requires_grad_()
    logit = net.output(net.rnn(inputs)[0][0, position])[word_id]
    gradient = torch.autograd.grad(logit, inputs)[0][0]
    return (gradient @ net.embedding.weight.t()).square().sum(dim=-1)


def per_row_captum(net: AutocompleteNet, chars: torch.Tensor, position: int, word_id: int) -> torch.Tensor:
    from captum.attr import Saliency

    inputs = net.embedding(chars[None, : position + 1]).detach()
    saliency = Saliency(lambda embedded: net.output(net.rnn(embedded)[0][:, position]))
    gradient = saliency.attribute(inputs, target=word_id, abs=False)[0]
    return (gradient @ net.embedding.weight.t()).square().sum(dim=-1)


def sampled_rows_seconds(function, net, chars, sample: int) -> tuple[float, str]:
    """Seconds for all T rows, timed on `sample` evenly spaced rows and scaled up (0: every row)."""
    length = chars.shape[0]
    rows = list(range(length)) if sample == 0 or sample >= length else [round(i * (length - 1) / (sample - 1)) for i in range(sample)]
    # The server turns oneDNN's RNN kernels off for its one-character steps; the baselines keep their fastest path.
    with torch.backends.mkldnn.flags(enabled=True):
        start = time.perf_counter()
        for position in rows:
            function(net, chars, position, 2)
        elapsed = time.perf_counter() - start
    return elapsed * length / len(rows), "" if len(rows) == length else "*"


def recurrent_weight_entries(net: AutocompleteNet) -> int:
    return sum(parameter.numel() for name, parameter in net.rnn.named_parameters() if parameter.dim() == 2)


def measured_peak_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(median_ms(lambda: a @ b, 3) for _ in range(2))
    return 2 * 2048**3 / best / 1e6


def full_matrix_seconds(net: AutocompleteNet, chars: torch.Tensor, force_autograd: bool) -> float:
    """Median seconds for the full gradient matrix, recording included."""
    length = chars.shape[0]
    positions = list(range(length))
    connectivity_rows(net, record(net, chars[:20], "gradient", force_autograd=force_autograd), positions[:20], [2] * 20, "gradient")

    def full_matrix() -> None:
        connectivity_rows(net, record(net, chars, "gradient", force_autograd=force_autograd), positions, [2] * length, "gradient")

    return median_ms(full_matrix, 3) / 1000


def random_bundled_net(unit: str, num_words: int) -> AutocompleteNet:
    torch.manual_seed(0)
    return AutocompleteNet(replace(BUNDLED.model_config(unit), num_words=num_words)).eval()


def tanh_rnn_net(hidden_size: int, num_layers: int, num_words: int) -> AutocompleteNet:
    """A random network around nn.RNN (tanh), 2 x 256: the unit of the autograd sweep's floor (issue 14), whatever checkpoints are served."""
    register_unit(
        Unit(
            name="bench-tanh-rnn",
            display_name="tanh RNN",
            description="nn.RNN with tanh, for the autograd sweep's timing.",
            build=lambda hidden, layers, depth: nn.RNN(hidden, hidden, layers, nonlinearity="tanh", batch_first=True),
        )
    )
    torch.manual_seed(0)
    return AutocompleteNet(ModelConfig(unit="bench-tanh-rnn", hidden_size=hidden_size, num_layers=num_layers, num_words=num_words)).eval()


def wall_and_cpu_ms(function) -> tuple[float, float]:
    """One call's wall-clock and CPU milliseconds (the calling thread's CPU: on a busy machine, what the call itself cost)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    function()
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(wall for wall, _ in samples), statistics.median(cpu for _, cpu in samples)


def counterfactual_latency(registry, passage: str, length: int, repeats: int, page_flow: bool, spread_threads: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) ms of a counterfactual at the last of `length` characters, per served unit and for all of them ("all").

    Uncached: each repeat reads another stretch of `passage` and replaces another word, so no answer is cached. With
    `page_flow`, the original text's forward pass is kept first, as Figure 4's matrices leave it when the reader asks;
    without, it is computed too. Within one answer the engine keeps, as the server does, the forward pass it records.
    The units are spread over `spread_threads` threads as the server spreads them: a unit's wall time counts its waits
    for the interpreter lock, its CPU time is its own thread's; "all" is the answer's wall time and the process's CPU.
    """
    engine = InferenceEngine(registry, 0, 32, 10**9, recording_cache_size=2 * len(registry.models))
    pool = InferencePool(1, torch.get_num_threads(), 10, spread_threads=spread_threads)
    samples: dict[str, list[tuple[float, float]]] = {model_id: [] for model_id in [*registry.models, "all"]}
    for repeat in range(repeats):
        start = passage.index(" ", 7 * repeat)
        text = passage[start : start + length]
        position = len(text) - 1
        # A word some 60 characters back, as far as the example sentence's "through advanced" from "learning".
        replace_at = text.rindex(" ", 0, position - 60) + 1
        edit = edit_word(text, position, replace_at, "other_word", None, repeat, registry.vocabulary, 10**6)
        if page_flow:
            for model_id in registry.models:
                engine.connectivity(model_id, text, None, None, "gradient")
        units = [
            partial(wall_and_cpu_ms, partial(engine.counterfactual, model_id, text, position, edit.edited_text, edit.moved(position), None, "gradient", 3, 4))
            for model_id in registry.models
        ]
        wall, cpu = time.perf_counter(), time.process_time()
        per_unit = pool.spread(units)
        samples["all"].append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
        for model_id, sample in zip(registry.models, per_unit):
            samples[model_id].append(sample)
    pool.shutdown()
    return {model_id: medians(values) for model_id, values in samples.items()}


def unrolled_latency(registry, text: str, repeats: int) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    """Median (wall, CPU) ms of the unrolled norms per served unit (never cached by the engine): the last position, and every position."""
    engine = InferenceEngine(registry, 0, 32, 10**9)
    timings = {}
    for model_id in registry.models:
        one = medians([wall_and_cpu_ms(partial(engine.unrolled, model_id, text, [len(text) - 1], 4)) for _ in range(repeats)])
        every = medians([wall_and_cpu_ms(partial(engine.unrolled, model_id, text, list(range(len(text))), 4)) for _ in range(max(1, repeats // 3))])
        timings[model_id] = (one, every)
    return timings


def print_reach_latency(registry, passage: str, repeats: int, spread_threads: int) -> None:
    """Issue 33's two answers, uncached; wall-clock beside CPU time, which a busy machine inflates less."""
    print(
        f"counterfactual at T=200, uncached, units spread over {spread_threads} thread(s) as the server does (RNN_SPREAD_THREADS), "
        "median ms, wall / CPU (target: all units within 150 ms in all)"
    )
    cold = counterfactual_latency(registry, passage, 200, repeats, page_flow=False, spread_threads=spread_threads)
    warm = counterfactual_latency(registry, passage, 200, repeats, page_flow=True, spread_threads=spread_threads)
    print(f"  {'unit':8} {'cold':>15} {'original kept':>15}")
    for model_id in cold:
        print(f"  {model_id:8} {cold[model_id][0]:7.1f} / {cold[model_id][1]:5.1f} {warm[model_id][0]:7.1f} / {warm[model_id][1]:5.1f}")
    print(
        "  (cold: the original text's forward pass computed too; original kept: as Figure 4 leaves it in the process that drew it,"
        " which a server of several processes reaches again only when the request lands there)"
    )
    print(f"  {verdict(cold['all'][0] <= 150)} cold {cold['all'][0]:.1f} ms, {verdict(warm['all'][0] <= 150)} original kept {warm['all'][0]:.1f} ms (wall)\n")
    print("unrolled gradient norms at T=60, per unit, median ms, wall / CPU (target: within 100 ms per unit)")
    print(f"  {'unit':8} {'last position':>15} {'all 60 positions':>17}")
    unrolled = unrolled_latency(registry, passage[:60], repeats)
    for model_id, (one, every) in unrolled.items():
        print(f"  {model_id:8} {one[0]:7.1f} / {one[1]:5.1f} {every[0]:9.1f} / {every[1]:5.1f}")
    slowest = max(unrolled, key=lambda model_id: unrolled[model_id][0][0])
    print(f"  {verdict(unrolled[slowest][0][0] <= 100)} slowest, the last position: {slowest} {unrolled[slowest][0][0]:.1f} ms (wall)\n")


def verdict(met: bool) -> str:
    return "[met]" if met else "[MISSED]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint-dir", type=Path, default=None, help="default: the bundled checkpoints if present, else random ones")
    parser.add_argument(
        "--threads", type=int, default=Settings().threads,
        help="PyTorch threads; default: the server's own (the cores shared among its processes, one each by default)",
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--sample-rows", type=int, default=20, help="per-row baselines are timed on this many rows and scaled (0: all)")
    parser.add_argument("--no-captum", action="store_true")
    parser.add_argument("--autograd-lengths", type=int, nargs="+", default=[100, 200], help="text lengths for the autograd sweep's table")
    parser.add_argument("--reach-only", action="store_true", help="only the counterfactual and unrolled answers (issue 33)")
    parser.add_argument(
        "--spread-threads", type=int, default=Settings().spread_threads, help="threads a counterfactual spreads its units over (default: the server's)"
    )
    parser.add_argument("--repeats", type=int, default=9, help="repeats of the counterfactual and unrolled timings")
    args = parser.parse_args()
    configure_process(args.threads)
    configure_inference_thread(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        directory = choose_checkpoints(args.checkpoint_dir, Path(scratch))
        registry = load_registry(directory)
        text = normalise(PASSAGE * 2)
        sizes = ", ".join(f"{m.id} H={m.net.config.hidden_size} L={m.net.config.num_layers}" for m in registry.models.values())
        print(f"checkpoints: {directory} ({sizes}, vocabulary {len(registry.vocabulary)}); torch threads: {args.threads}")
        if args.reach_only:
            print_reach_latency(registry, text, args.repeats, args.spread_threads)
            return
        peak = measured_peak_gflops()
        print(f"measured fp32 GEMM peak (2048^3 matmul): {peak:.0f} GFLOP/s\n")

        with torch.inference_mode():
            incremental, recompute = keystroke_latency(registry, text[:200], repeats=40)
        print("per keystroke, every served unit, text of ~200 chars, positions=last (median ms)")
        print(f"  incremental (cached state, one step): {incremental:8.2f}")
        print(f"  full recompute of the text:           {recompute:8.2f}\n")

        # The server's work limit: integrated gradients add path steps until the row adds up or the limit is reached, and a row
        # that never adds up (the vanilla RNN's at some positions) would otherwise go on for as long as 10**9 allows.
        cold = InferenceEngine(registry, state_cache_size=0, integrated_gradients_steps=32, max_connectivity_work=Settings().max_connectivity_work)
        warm = InferenceEngine(registry, 0, 32, 10**9, recording_cache_size=len(registry.models))
        for model_id in registry.models:  # as when the figure has asked for the whole text once
            warm.connectivity(model_id, text[:200], None, None, "gradient")
        mouse_moves = itertools.count()

        def hover(engine: InferenceEngine, method: str) -> list:
            position = 150 + next(mouse_moves) % 50  # a different character each time, as a reader's mouse moves
            return [engine.connectivity(m, text[:200], [position], None, method) for m in registry.models]

        print("hover row at T=200, every served unit, one after another (median ms)")
        print(f"  gradient, text seen for the first time:      {median_ms(lambda: hover(cold, 'gradient'), 7):8.1f}")
        print(f"  gradient, text's forward pass cached:        {median_ms(lambda: hover(warm, 'gradient'), 7):8.1f}")
        print(f"  integrated gradients (32 steps), uncached:   {median_ms(lambda: hover(cold, 'integrated_gradients'), 3):8.1f}\n")

        print("full connectivity matrix (all T rows, gradient), seconds; * = per-row time scaled from a sample of rows")
        header = f"{'unit':6} {'T':>4} {'batched':>9} {'autograd/row':>13} {'captum/row':>11} {'floor':>8} {'vs autograd':>12} {'vs captum':>10} {'% peak':>7}"
        print(header)
        for length in args.lengths:
            chars = torch.tensor(encode(text[:length]))
            for model in registry.models.values():
                net = model.net
                batched = full_matrix_seconds(net, chars, force_autograd=False)
                autograd, mark_a = sampled_rows_seconds(per_row_autograd, net, chars, args.sample_rows)
                if args.no_captum:
                    captum, mark_c = float("nan"), ""
                else:
                    captum, mark_c = sampled_rows_seconds(per_row_captum, net, chars, args.sample_rows)
                flops = length * (length + 1) / 2 * 2 * recurrent_weight_entries(net)
                floor = flops / (peak * 1e9)
                print(
                    f"{model.id:6} {length:4d} {batched:9.3f} {autograd:12.2f}{mark_a:1} {captum:10.2f}{mark_c:1} {floor:8.3f} "
                    f"{autograd / batched:11.1f}x {captum / batched:9.1f}x {100 * floor / batched:6.0f}%"
                )


        print("\nfull connectivity matrix (all T rows, gradient), seconds: hand-written sweep vs autograd sweep")
        print(f"{'unit':15} {'T':>4} {'hand-written':>13} {'autograd':>9} {'ratio':>6}")
        num_words = next(iter(registry.models.values())).net.config.num_words
        served = {model.net.config.unit for model in registry.models.values()}
        # Every installed unit without a served checkpoint too, with random weights at the bundled size: what its full matrix will cost.
        unserved = [(f"{unit} (random)", random_bundled_net(unit, num_words)) for unit in installed_units() if unit not in served]
        tanh_rnn = tanh_rnn_net(256, 2, num_words)
        nets = [(model.id, model.net) for model in registry.models.values()] + unserved + [("tanh-rnn 2x256", tanh_rnn)]
        for length in args.autograd_lengths:
            chars = torch.tensor(encode(text[:length]))
            for name, net in nets:
                autograd = full_matrix_seconds(net, chars, force_autograd=True)
                hand_written = full_matrix_seconds(net, chars, force_autograd=False)
                print(f"{name:15} {length:4d} {hand_written:13.3f} {autograd:9.3f} {autograd / hand_written:5.1f}x")

        print()
        print_reach_latency(registry, text, args.repeats, args.spread_threads)


if __name__ == "__main__":
    main()
