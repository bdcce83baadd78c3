import numpy as np

from models.text import encode
from models.vocab import Vocabulary
from training.dataset import SEQUENCE_LENGTH, Dataset, align, build_sequences, pack_sequences, prepare_dataset


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
