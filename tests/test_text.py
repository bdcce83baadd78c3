import pytest

from models.text import CHARS, encode, normalise
from models.vocab import Vocabulary


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello World", " hello world"),
        ("Café crème", " cafe creme"),
        ("In 1990, the", " in one nine nine zero the"),
        ("a3b", " a three b"),
        ("  many   spaces\tand\nlines ", " many spaces and lines "),
        ("ends with a space ", " ends with a space "),
        ("ends with punctuation.", " ends with punctuation "),
        ("Ünïcödé—dash", " unicode dash"),
        ("", ""),
        ("!!! ... 😀", ""),
        ("x", " x"),
    ],
)
def test_normalise_follows_text8_rules(raw, expected):
    assert normalise(raw) == expected


def test_normalise_is_idempotent():
    text = normalise("The Formal Study of 2 grammars, é!")
    assert normalise(text) == text


def test_character_ids_follow_the_papers_order():
    assert len(CHARS) == 28
    assert CHARS[0] == "<eos>" and CHARS[1] == " " and CHARS[2] == "a" and CHARS[27] == "z"
    assert encode(" az") == [1, 2, 27]


def test_vocabulary_ranks_by_frequency_with_alphabetical_ties():
    from collections import Counter

    vocabulary = Vocabulary.from_counts(Counter({"b": 3, "a": 3, "c": 5, "d": 1}), size=3)
    assert vocabulary.words == ["<eos>", "<unknown>", "c", "a", "b"]
    assert vocabulary.id("c") == 2 and vocabulary.id("d") == 1


def test_vocabulary_round_trips_and_rejects_foreign_files(tmp_path):
    vocabulary = Vocabulary(["<eos>", "<unknown>", "the"])
    vocabulary.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").words == vocabulary.words
    (tmp_path / "bad.json").write_text('{"chars": ["a"], "words": []}')
    with pytest.raises(ValueError, match="chars"):
        Vocabulary.load(tmp_path / "bad.json")
