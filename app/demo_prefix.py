"""Chooses the autocomplete demo's starting prefix (Figure 3) from the shipped models' own output.

The demo should open on a prefix that shows what the figure is for: the models name the word being
typed from its context and first letters, and the three units do not all agree. Candidates are taken
from the article's example sentence: the three words before a word of at least four letters, then its
first one to three letters. A candidate fits when at least one unit's first guess is the word being
typed and the three first guesses are not all the same. Of those that fit, the choice is the one with
the fewest letters typed, then the most units naming the word among their three guesses, then the
earliest in the sentence, so the same models always give the same prefix.

    python -m app.demo_prefix            # prints the choice and whether static/data/demo.json has it
    python -m app.demo_prefix --write    # stores the choice in static/data/demo.json

tests/test_demo_prefix.py fails when the stored prefix no longer fits the shipped models: rerun this
script with --write after replacing models/checkpoints/.
"""

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from app.engine import InferenceEngine
from app.registry import Registry, load_registry
from app.settings import BUNDLED_CHECKPOINTS
from models.text import normalise

ROOT = Path(__file__).resolve().parent.parent
DEMO_FILE = ROOT / "static" / "data" / "demo.json"
EXAMPLE_TEXT = json.loads((ROOT / "static" / "data" / "paper.json").read_text())["connectivity"]["example_text"]
CONTEXT_WORDS = 3
MIN_WORD_LENGTH = 4
MAX_LETTERS = 3
TOP_K = 3


@dataclass(frozen=True)
class Candidate:
    prefix: str  # normalised, with its leading space
    word: str  # the word being typed
    letters: int  # letters of it already typed
    order: int  # where it comes in the sentence
    first_guesses: dict[str, str]
    in_top_k: int  # units naming the word among their TOP_K guesses

    @property
    def fits(self) -> bool:
        firsts = set(self.first_guesses.values())
        return self.word in firsts and len(firsts) > 1


def evaluate(engine: InferenceEngine, prefix: str, word: str, order: int = 0) -> Candidate:
    """What the models guess at the end of `prefix` (raw text), with `word` the word being typed."""
    text = normalise(prefix)
    guesses = {
        model_id: [item.word for item in engine.suggest(model_id, text, TOP_K, "last")[0].suggestions] for model_id in engine.registry.models
    }
    return Candidate(
        prefix=text,
        word=word,
        letters=len(text) - 1 - text.rindex(" "),
        order=order,
        first_guesses={model_id: ranked[0] for model_id, ranked in guesses.items()},
        in_top_k=sum(word in ranked for ranked in guesses.values()),
    )


def engine_for(registry: Registry) -> InferenceEngine:
    return InferenceEngine(registry, state_cache_size=0, integrated_gradients_steps=32, max_connectivity_work=1)


def candidates(registry: Registry) -> list[Candidate]:
    engine = engine_for(registry)
    vocabulary = set(registry.vocabulary.words)
    words = EXAMPLE_TEXT.split()
    found: list[Candidate] = []
    for index in range(CONTEXT_WORDS, len(words)):
        word = words[index]
        if len(word) < MIN_WORD_LENGTH or word not in vocabulary:
            continue
        context = " ".join(words[index - CONTEXT_WORDS : index])
        for letters in range(1, MAX_LETTERS + 1):
            found.append(evaluate(engine, f"{context} {word[:letters]}", word, order=len(found)))
    return found


def choose(registry: Registry) -> Candidate | None:
    fitting = [candidate for candidate in candidates(registry) if candidate.fits]
    return min(fitting, key=lambda candidate: (candidate.letters, -candidate.in_top_k, candidate.order), default=None)


def stored() -> dict:
    return json.loads(DEMO_FILE.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=Path, default=BUNDLED_CHECKPOINTS)
    parser.add_argument("--write", action="store_true", help=f"store the choice in {DEMO_FILE.relative_to(ROOT)}")
    arguments = parser.parse_args()
    choice = choose(load_registry(arguments.checkpoints))
    if choice is None:
        raise SystemExit("no candidate fits these models: widen the candidates in app/demo_prefix.py")
    print(f"{choice.prefix.strip()!r} -> {choice.word!r}; first guesses {choice.first_guesses}")
    if arguments.write:
        DEMO_FILE.write_text(json.dumps({"prefix": choice.prefix.strip(), "word": choice.word}, indent=1) + "\n")
        print(f"written to {DEMO_FILE.relative_to(ROOT)}")
    else:
        print("stored:", stored())


if __name__ == "__main__":
    main()
