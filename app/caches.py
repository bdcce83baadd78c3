"""The engine's in-process caches: recurrent states for the keystroke path, forward passes for connectivity.

Entries are stored once and never modified afterwards, so the inference threads
share them without copying.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import Tensor

from models.connectivity import Recording
from models.net import State

Key = TypeVar("Key")
Value = TypeVar("Value")


class LRUCache(Generic[Key, Value]):
    """A bounded, thread-safe map that forgets its least recently used entries first: beyond `capacity` entries, and
    beyond `max_bytes` of entries as `entry_bytes` counts them (by default they count nothing); capacity 0 keeps nothing."""

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        self.capacity, self.max_bytes = capacity, max_bytes
        self._entries: OrderedDict[Key, Value] = OrderedDict()
        self._sizes: dict[Key, int] = {}
        self.bytes = 0
        self._lock = threading.Lock()

    def entry_bytes(self, value: Value) -> int:
        return 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Value | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Key, value: Value) -> None:
        if self.capacity == 0:
            return
        size = self.entry_bytes(value)
        with self._lock:
            self.bytes += size - self._sizes.get(key, 0)
            self._entries[key], self._sizes[key] = value, size
            self._entries.move_to_end(key)
            while self._entries and (len(self._entries) > self.capacity or (self.max_bytes is not None and self.bytes > self.max_bytes)):
                forgotten, _ = self._entries.popitem(last=False)
                self.bytes -= self._sizes.pop(forgotten)


@dataclass(frozen=True)
class ResumePoint:
    """Where a text leaves a model: the unit's state after its last character, and the unit's output there.

    The state is the unit's own business (a tensor or a tuple of tensors, in any
    layout), so the output is kept beside it rather than read out of it.
    """

    state: State
    last_output: Tensor  # [hidden]


class StateCache(LRUCache[tuple[str, str], ResumePoint]):
    """Resume points keyed by (model id, normalised text prefix), bounded in bytes too: a unit's state may be
    large (the mLSTM's matrix memories are 100 kB at width 256, the GRU's state 2 kB).

    Entries are stored as private clones and never modified afterwards, so
    concurrent requests can start from the same entry safely.
    """

    def entry_bytes(self, point: ResumePoint) -> int:
        parts = point.state if isinstance(point.state, tuple) else (point.state,)
        return sum(part.nbytes for part in parts) + point.last_output.nbytes

    def longest_prefix(self, model_id: str, text: str) -> tuple[int, ResumePoint | None]:
        """Length of the longest cached prefix of `text` (0 if none) and its resume point."""
        if self.capacity == 0:
            return 0, None
        for length in range(len(text), 0, -1):
            point = self.get((model_id, text[:length]))
            if point is not None:
                return length, point
        return 0, None

    def put(self, key: tuple[str, str], point: ResumePoint) -> None:
        # The clone of the output row also lets go of the whole text's outputs it is a view of.
        super().put(key, ResumePoint(_clone_state(point.state), point.last_output.clone()))


class RecordingCache(LRUCache[tuple[str, str], Recording]):
    """Forward passes keyed by (model id, the normalised text they cover)."""

    def covering(self, model_id: str, prefix: str) -> Recording | None:
        """The most recent recording of `model_id` over a text that starts with `prefix`, if any."""
        with self._lock:
            for key in reversed(self._entries):
                if key[0] == model_id and key[1].startswith(prefix):
                    self._entries.move_to_end(key)
                    return self._entries[key]
        return None


def _clone_state(state: State) -> State:
    """A copy of a unit's state, a tensor or a tuple of tensors (the unit contract, models/units.py)."""
    if isinstance(state, tuple):
        return tuple(part.clone() for part in state)
    return state.clone()
