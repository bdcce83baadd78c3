"""How far back a model looks: connectivity rows summarised by distance.

A row is connectivity[t, 0..t] of one output position t (for its true target
word). Each row is normalised to sum to 1, then split by how many characters
back each input lies (t - t'); the profile is the mean over rows. Two summary
numbers come with it: the share on characters before the space that starts the
word being typed ("before the current word"), and the share more than 10
characters back ("reach-10").

The same function summarises our models (rows from `models.connectivity`) and
the paper's published rows, so the two can never be computed differently.
"""

from dataclasses import asdict, dataclass

import numpy as np

from models.text import CHAR_IDS

# Inclusive distance ranges, in characters back from the output position.
DISTANCE_BUCKETS: tuple[tuple[int, int], ...] = (
    (0, 0), (1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, 200),
)
REACH_DISTANCE = 10


def bucket_label(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}–{high}"


@dataclass(frozen=True)
class MemoryProfile:
    """Mean shares of connectivity over `rows` rows; `by_distance` follows DISTANCE_BUCKETS."""

    rows: int
    by_distance: list[float]
    before_word: float
    reach_10: float

    def to_dict(self) -> dict:
        return asdict(self)


def word_starts(chars: np.ndarray) -> np.ndarray:
    """For char ids [T], the index of the space that starts the word each position belongs to."""
    positions = np.arange(len(chars))
    return np.maximum.accumulate(np.where(chars == CHAR_IDS[" "], positions, 0))


def row_shares(rows: np.ndarray, positions: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row shares: `by_distance` [R, buckets], `before_word` [R], `reach_10` [R].

    `rows` [R, T] holds connectivity[t, :] for t = `positions`; `starts` the index of
    the space starting each row's current word. Rows whose total is zero are dropped.
    """
    rows = np.asarray(rows, dtype=np.float64)
    columns = np.arange(rows.shape[1])
    distance = positions[:, None] - columns[None, :]
    rows = np.where(distance >= 0, rows, 0.0)
    totals = rows.sum(axis=1)
    keep = totals > 0
    rows, distance, totals, starts = rows[keep], distance[keep], totals[keep], starts[keep]
    shares = rows / totals[:, None]
    by_distance = np.stack(
        [np.where((distance >= low) & (distance <= high), shares, 0.0).sum(axis=1) for low, high in DISTANCE_BUCKETS],
        axis=1,
    )
    return {
        "by_distance": by_distance,
        "before_word": np.where(columns[None, :] < starts[:, None], shares, 0.0).sum(axis=1),
        "reach_10": np.where(distance > REACH_DISTANCE, shares, 0.0).sum(axis=1),
    }


def summarise(shares: dict[str, np.ndarray]) -> MemoryProfile:
    """The mean of per-row shares (one `row_shares` result, or several concatenated)."""
    return MemoryProfile(
        rows=len(shares["before_word"]),
        by_distance=[float(value) for value in shares["by_distance"].mean(axis=0)],
        before_word=float(shares["before_word"].mean()),
        reach_10=float(shares["reach_10"].mean()),
    )


def concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def text_profile(rows: np.ndarray, chars: np.ndarray) -> MemoryProfile:
    """The profile of a whole text's rows: `rows` [T, T] with row t for position t, `chars` [T]."""
    chars = np.asarray(chars)
    positions = np.arange(len(chars))
    return summarise(row_shares(rows, positions, word_starts(chars)))


def buckets_description() -> list[dict]:
    return [{"low": low, "high": high, "label": bucket_label(low, high)} for low, high in DISTANCE_BUCKETS]
