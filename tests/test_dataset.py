import numpy as np
import torch

from models.text import encode
from models.vocab import Vocabulary
from training.dataset import SEQUENCE_LENGTH, BatchOrder, Dataset, align, batch_tensors, build_sequences, pack_sequences, prepare_dataset


def test_every_character_targets_its_whole_word_and_the_space_targets_the_next_word():
    vocabulary = Vocabulary(["<eos>", "<unknown>", "the", "cat"])
    chars, targets, offsets = align(["the", "cat", "sat"], vocabulary)
    assert chars.tolist() == encode(" the cat sat")
    assert targets.tolist() == [2] * 4 + [3] * 4 + [1] * 4
    assert offsets.tolist() == [0, 4, 8, 12]


def test_packing_never_cuts_a_word_and_respects_the_limit():
    lengths = np.array([5, 9, 3, 7, 250, 4, 1])
    starts, ends = pack_sequences(lengths, max_chars=12)
    pieces = [(lengths[s:e] + 1).tolist() for s, e in zip(starts, ends)]
    assert all(sum(piece) <= 12 for piece in pieces)
    assert pieces == [[6], [10], [4, 8], [5, 2]]  # the 250-letter word fits nowhere and is skipped


def test_prepared_sequences_are_whole_words_padded_and_split(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{chr(97 + i % 26)}{'x' * (i % 7)}" for i in rng.integers(0, 60, 3000)]
    text = " ".join(words)
    info = prepare_dataset(text, tmp_path, {"name": "tiny", "sha256": "0"}, vocabulary_size=20)
    dataset = Dataset.open(tmp_path)
    total = sum(info["sequences"].values())
    assert abs(info["sequences"]["train"] - 0.9 * total) <= 1
    assert len(dataset.vocabulary) == 22
    recovered = []
    for split in ("train", "valid", "test"):
        chars, targets = dataset.split(split)
        assert chars.shape[1] == SEQUENCE_LENGTH and chars.dtype == np.uint8 and targets.dtype == np.uint16
        for row_chars, row_targets in zip(chars, targets):
            length = int(np.count_nonzero(row_chars))
            assert np.all(row_chars[length:] == 0) and np.all(row_targets[length:] == 0)
            sequence = "".join(" " if c == 1 else chr(c + 95) for c in row_chars[:length])
            assert sequence.startswith(" ") and not sequence.endswith(" ")
            for word, start in zip(sequence.split(" ")[1:], [i for i, c in enumerate(sequence) if c == " "]):
                expected = dataset.vocabulary.id(word)
                assert set(row_targets[start : start + len(word) + 1].tolist()) == {expected}
            recovered.append(sequence)
    assert sorted(word for sequence in recovered for word in sequence.split()) == sorted(words)


def test_build_sequences_pads_with_zero():
    vocabulary = Vocabulary(["<eos>", "<unknown>", "ab"])
    chars, targets, offsets = align(["ab", "ab"], vocabulary)
    seq_chars, seq_targets = build_sequences(chars, targets, offsets, np.array([0]), np.array([2]))
    assert seq_chars[0, :7].tolist() == [1, 2, 3, 1, 2, 3, 0]
    assert seq_targets[0, :7].tolist() == [2, 2, 2, 2, 2, 2, 0]


def test_batch_order_is_one_seeded_permutation_per_epoch():
    order = BatchOrder(sequences=10, batch_size=3, seed=5)
    assert order.batches_per_epoch == 3
    # Step n's batch is the one runs have always had (resumed runs rely on it): a slice of permutation seed + epoch.
    for step, epoch, position in ((0, 0, 0), (2, 0, 2), (3, 1, 0), (7, 2, 1)):
        expected = np.random.default_rng(5 + epoch).permutation(10)[3 * position : 3 * position + 3]
        assert order.rows(step).tolist() == expected.tolist()
    assert sorted(np.concatenate([order.rows(step) for step in range(3)]).tolist()) == sorted(
        np.random.default_rng(5).permutation(10)[:9].tolist())


def test_batch_tensors_trim_to_the_longest_sequence_unless_full_width_is_asked():
    chars = np.zeros((3, SEQUENCE_LENGTH), dtype=np.uint8)
    targets = np.zeros((3, SEQUENCE_LENGTH), dtype=np.uint16)
    chars[0, :4], chars[1, :7], chars[2, :2] = 5, 6, 7
    targets[1, :7] = 9
    x, y = batch_tensors(chars, targets, np.array([2, 1]), torch.device("cpu"))
    assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (2, 7)
    assert x[:, 0].tolist() == [6, 7] and y[0].tolist() == [9] * 7  # rows in ascending order
    assert batch_tensors(chars, targets, np.array([0]), torch.device("cpu"), full_width=True)[0].shape == (1, SEQUENCE_LENGTH)
