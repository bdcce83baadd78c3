"""The training loss: cross-entropy over real words, fused with the output layer.

The output layer (H x 16,386) dominates the cost of a step. Materialising all
logits of a batch (12,800 x 16,386 floats) and then a separate log-softmax moves
gigabytes through memory; computing loss and gradients chunk by chunk in one
pass halves the step time on this CPU (bench/train_throughput.py).
"""

import functools

import torch
from torch import Tensor

from models.vocab import UNKNOWN

# Rows of logits per chunk: small enough for the CPU's caches; a GPU wants few, large products.
CHUNK_ROWS = {"cpu": 256, "cuda": 8192}
# The sampled loss scores, besides the batch's own words, the FREQUENT_WORDS most frequent words and the words of
# K draws over the other ranks, P(rank r) ~ (r + 1)^-PROPOSAL_EXPONENT. Paired 5 M-character runs against the
# exact softmax (bench/sampled_quality.py, GRU): with draws over all ranks, log-uniform (about exponent 1, the
# unigram distribution) ended +0.241 nats behind at K = 1,024, exponent 0.75 +0.158, and at K = 2,048 exponent
# 0.75 +0.063, 0.5 +0.040; with the 1,024 frequent words sure as well, -0.003 (2,048 frequent words and 1,024
# draws: +0.013). The frequent words carry much of every position's normaliser; left to the draws, each one missed
# or scaled up by its correction makes the estimate noisy. Flatter draws reach the rarer words, whose output rows
# otherwise fall behind.
FREQUENT_WORDS = 1024
PROPOSAL_EXPONENT = 0.5


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, compute_dtype: torch.dtype, needs_grad: bool):
        rows = hidden.shape[0]
        chunk_rows = CHUNK_ROWS.get(hidden.device.type, CHUNK_ROWS["cpu"])
        weight_c = weight.to(compute_dtype)
        # Without gradients the accumulators stay empty: nothing is allocated for them.
        grad_hidden = torch.empty_like(hidden) if needs_grad else hidden.new_empty(0)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if needs_grad else weight.new_empty(0)
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if needs_grad else bias.new_empty(0)
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, rows, chunk_rows):
            chunk = hidden[start : start + chunk_rows].to(compute_dtype)
            chunk_targets = targets[start : start + chunk_rows]
            logits = (chunk @ weight_c.t()).float().add_(bias)
            log_norm = torch.logsumexp(logits, dim=1)
            total += (log_norm - logits.gather(1, chunk_targets[:, None]).squeeze(1)).sum()
            if needs_grad:
                probabilities = logits.sub_(log_norm[:, None]).exp_()
                probabilities[torch.arange(len(chunk_targets), device=chunk_targets.device), chunk_targets] -= 1.0
                grad_logits = probabilities.to(compute_dtype)
                grad_hidden[start : start + chunk_rows] = grad_logits @ weight_c
                grad_weight += (grad_logits.t() @ chunk).float()
                grad_bias += probabilities.sum(dim=0)
        mean = total / max(rows, 1)
        if needs_grad:
            ctx.save_for_backward(grad_hidden / max(rows, 1), grad_weight / max(rows, 1), grad_bias / max(rows, 1))
        return mean

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return grad_hidden * grad_output, (grad_weight * grad_output).to(grad_hidden.dtype), grad_bias * grad_output, None, None, None


def _fused_loss(selected: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, bf16: bool) -> Tensor:
    """Mean cross-entropy of `targets` (row indices of `weight`) over the rows of `selected`, by `_LinearCrossEntropy`."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    # Decided here, not from ctx.needs_input_grad inside the Function, which reads True for the
    # weights even under no_grad (validation) and would compute gradients nobody uses.
    needs_grad = torch.is_grad_enabled() and (selected.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(selected, weight, bias, targets, dtype, needs_grad)


def word_loss(hidden: Tensor, targets: Tensor, output: torch.nn.Linear, bf16: bool) -> tuple[Tensor, int]:
    """Mean cross-entropy of the word targets over positions whose target is a real word.

    `hidden` is the recurrent output [batch, time, H]; positions whose target is
    `<eos>` (0, also padding) or `<unknown>` (1) are left out before the output
    layer is applied. Returns the mean and how many positions it covers.
    """
    mask = targets > UNKNOWN
    loss = _fused_loss(hidden[mask].float(), output.weight, output.bias, targets[mask], bf16)
    return loss, int(mask.sum())


@functools.cache
def proposal_probabilities(num_words: int, frequent_words: int = FREQUENT_WORDS) -> Tensor:
    """P(word) of the draws: P(rank r) ~ (r + 1)^-PROPOSAL_EXPONENT over the real words after the `frequent_words` first.

    Word ids are in frequency order and word counts fall about as 1/rank (Zipf), so this is
    about the unigram distribution to the power PROPOSAL_EXPONENT, without its head. All zero
    when every real word is frequent. Not to be modified (cached).
    """
    ranks = torch.arange(num_words - 2, dtype=torch.float64)
    real = (ranks + 1) ** -PROPOSAL_EXPONENT
    real[:frequent_words] = 0
    total = real.sum()
    return torch.cat([torch.zeros(2, dtype=torch.float64), real / total if total > 0 else real])


def sample_proposal(num_words: int, draws: int, generator: torch.Generator | None = None,
                    frequent_words: int = FREQUENT_WORDS) -> Tensor:
    """`draws` word ids (with replacement) from `proposal_probabilities(num_words, frequent_words)`."""
    probabilities = proposal_probabilities(num_words, frequent_words)
    if not probabilities.any():
        return torch.zeros(0, dtype=torch.long)
    return torch.multinomial(probabilities, draws, replacement=True, generator=generator)


def inclusion_probabilities(probabilities: Tensor, draws: int) -> Tensor:
    """Chance that a word appears at least once among `draws` independent draws from `probabilities`."""
    return -torch.expm1(draws * torch.log1p(-probabilities))


def candidate_words(target_words: Tensor, num_words: int, draws: int, generator: torch.Generator | None = None,
                    frequent_words: int = FREQUENT_WORDS) -> tuple[Tensor, Tensor]:
    """Candidate ids (`<eos>`, `<unknown>` and the sorted `target_words` first) and the correction added to their logits.

    Sure candidates, with no correction: the special words, `target_words` and the `frequent_words` most frequent
    words. Each other distinct word of `draws` draws from the proposal gets minus log(its inclusion probability),
    which makes the sum of exp(logit + correction) over the candidates an unbiased estimate of the sum over all
    words (Horvitz-Thompson).
    """
    frequent = torch.arange(UNKNOWN + 1, min(UNKNOWN + 1 + frequent_words, num_words))
    sure = torch.cat([torch.arange(UNKNOWN + 1), target_words, frequent[~torch.isin(frequent, target_words)]])
    drawn = torch.unique(sample_proposal(num_words, draws, generator, frequent_words))
    others = drawn[~torch.isin(drawn, target_words)]
    probabilities = inclusion_probabilities(proposal_probabilities(num_words, frequent_words)[others], draws)
    correction = torch.cat([torch.zeros(len(sure)), -torch.log(probabilities).float()])
    return torch.cat([sure, others]), correction


def sampled_word_loss(hidden: Tensor, targets: Tensor, output: torch.nn.Linear, draws: int, bf16: bool = False,
                      generator: torch.Generator | None = None) -> tuple[Tensor, int]:
    """A training-only estimate of `word_loss` over candidates shared by the batch (see `candidate_words`).

    The output layer costs most of a CPU step; scoring ~3 thousand candidates instead of all 16,386
    words cuts that cost by the same factor. The candidates' rows of the output layer go through the
    same fused pass as the exact loss (1.4x faster than logits, then cross-entropy, over the candidates).
    With every word a candidate it is the exact loss. Returns (mean loss, positions).
    """
    mask = targets > UNKNOWN
    words = targets[mask]
    target_words = torch.unique(words)
    candidates, correction = candidate_words(target_words, output.weight.shape[0], draws, generator)
    # Sure candidates lead the list in sorted order, after the two special words.
    candidate_targets = torch.searchsorted(target_words, words) + UNKNOWN + 1
    loss = _fused_loss(hidden[mask].float(), output.weight[candidates], output.bias[candidates] + correction,
                       candidate_targets, bf16)
    return loss, int(mask.sum())
