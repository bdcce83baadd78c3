"""The sampled training loss: exact with every word a candidate, and an unbiased normaliser otherwise."""

import torch

from models.loss import (
    PROPOSAL_EXPONENT,
    candidate_words,
    inclusion_probabilities,
    proposal_probabilities,
    sample_proposal,
    sampled_word_loss,
    word_loss,
)


def test_proposal_is_a_power_law_over_the_ranks_after_the_frequent_words_and_the_sampler_follows_it() -> None:
    probabilities = proposal_probabilities(12, frequent_words=2)
    assert probabilities[:4].tolist() == [0, 0, 0, 0] and abs(float(probabilities.sum()) - 1) < 1e-12
    # Word ids 2, 3, ... are ranks 0, 1, ...: P(rank r) ~ (r + 1)^-exponent from rank 2 on.
    assert abs(float(probabilities[5] / probabilities[9]) - 2**PROPOSAL_EXPONENT) < 1e-12
    draws = sample_proposal(12, 400_000, torch.Generator().manual_seed(0), frequent_words=2)
    frequencies = torch.bincount(draws, minlength=12).double() / len(draws)
    assert torch.allclose(frequencies, probabilities, atol=3e-3)


def test_frequent_and_target_words_are_candidates_without_correction() -> None:
    candidates, correction = candidate_words(torch.tensor([7, 30]), 40, draws=50, generator=torch.Generator().manual_seed(0),
                                             frequent_words=4)
    sure = [0, 1, 7, 30, 2, 3, 4, 5]
    assert candidates[: len(sure)].tolist() == sure and not correction[: len(sure)].any()
    drawn = candidates[len(sure) :]
    assert len(drawn) > 10 and len(set(candidates.tolist())) == len(candidates)
    assert bool((drawn >= 6).all()) and bool((correction[len(sure) :] > 0).all())


def test_with_every_real_word_frequent_no_draws_are_made() -> None:
    candidates, correction = candidate_words(torch.tensor([3]), 6, draws=10, frequent_words=8)
    assert candidates.tolist() == [0, 1, 3, 2, 4, 5] and not correction.any()


def test_inclusion_probability_of_repeated_draws() -> None:
    assert torch.allclose(inclusion_probabilities(torch.tensor([0.5, 0.1], dtype=torch.float64), 3),
                          torch.tensor([1 - 0.5**3, 1 - 0.9**3], dtype=torch.float64))


def test_with_every_word_a_candidate_loss_and_gradients_are_exact() -> None:
    torch.manual_seed(0)
    output = torch.nn.Linear(8, 10)
    hidden = torch.randn(3, 7, 8, requires_grad=True)
    targets = torch.tensor([[2, 3, 4, 5, 6, 7, 0], [8, 9, 1, 2, 3, 0, 0], [4, 4, 5, 9, 8, 7, 6]])  # every real word 2..9
    exact, count = word_loss(hidden, targets, output, bf16=False)
    exact_grads = torch.autograd.grad(exact, [hidden, output.weight, output.bias])
    sampled, sampled_count = sampled_word_loss(hidden, targets, output, draws=5)
    sampled_grads = torch.autograd.grad(sampled, [hidden, output.weight, output.bias])
    assert count == sampled_count == 17
    assert torch.allclose(sampled, exact, atol=1e-6)
    for mine, reference in zip(sampled_grads, exact_grads):
        assert torch.allclose(mine, reference, atol=1e-6)


def test_corrected_normaliser_is_unbiased_on_a_tiny_vocabulary() -> None:
    num_words, draws = 8, 3
    logits = torch.tensor([0.0, 0.0, 1.0, -0.5, 2.0, 0.3, -1.0, 0.7], dtype=torch.float64)
    target_words = torch.tensor([4])
    generator = torch.Generator().manual_seed(1)
    estimates = []
    for _ in range(20_000):
        candidates, correction = candidate_words(target_words, num_words, draws, generator, frequent_words=1)
        estimates.append(torch.exp(logits[candidates] + correction.double()).sum())
    mean = torch.stack(estimates).mean()
    assert abs(float(mean / logits.exp().sum()) - 1) < 0.015
