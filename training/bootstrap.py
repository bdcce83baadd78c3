"""95 % bootstrap intervals of ratio statistics, resampling whole units (test sequences, or copy-test cases).

A statistic here is a ratio of sums over units: cross-entropy is the loss summed over a sequence's
positions over the positions counted, accuracy the hits over the positions, a memory share the
per-row shares summed over a sequence's rows over the rows. Resampling units with replacement and
taking the 2.5th and 97.5th percentiles of the resampled ratios gives the interval. Each unit is one
trained model: the interval covers the test sample, not the training run.
"""

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
# Resamples drawn at once: a [chunk, units] index array (25,391 test sequences: 20 MB a chunk).
CHUNK = 100


def resampled_ratios(numerators: np.ndarray, denominators: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """[resamples, ...]: sum(numerators) / sum(denominators) over units drawn with replacement; `numerators` [units, ...]."""
    numerators, denominators = np.asarray(numerators, dtype=np.float64), np.asarray(denominators, dtype=np.float64)
    rng = np.random.default_rng(seed)
    units = len(denominators)
    ratios = []
    for start in range(0, resamples, CHUNK):
        drawn = rng.integers(0, units, size=(min(CHUNK, resamples - start), units))
        totals = numerators[drawn].sum(axis=1)
        ratios.append(totals / denominators[drawn].sum(axis=1).reshape(-1, *[1] * (numerators.ndim - 1)))
    return np.concatenate(ratios)


def interval(numerators: np.ndarray, denominators: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
             seed: int = BOOTSTRAP_SEED) -> list:
    """The 95 % percentile interval [low, high] of the ratio; one per column when `numerators` is [units, columns]."""
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(resampled_ratios(numerators, denominators, resamples, seed), [tail, 100 - tail], axis=0)
    if np.ndim(low) == 0:
        return [float(low), float(high)]
    return [[float(a), float(b)] for a, b in zip(low, high)]


def bootstrap_description(resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, resampled: str = "test sequences") -> dict:
    return {"resamples": resamples, "seed": seed, "resampled": resampled, "level": LEVEL}
