"""Server configuration, read once from environment variables (prefix `RNN_`).

The defaults serve the bundled checkpoints on this machine with no configuration.
"""

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RNN_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CHECKPOINTS = PROJECT_ROOT / "models" / "checkpoints"


class SettingsError(ValueError):
    """Invalid configuration; the message names each offending environment variable."""


class Settings(BaseSettings):
    """Every knob of the server; each field is the environment variable `RNN_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    checkpoint_dir: Path = Field(BUNDLED_CHECKPOINTS, description="Folder holding <id>.safetensors, vocab.json and optionally metrics.json.")
    host: str = Field("127.0.0.1", description="Interface `python -m app` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port `python -m app` listens on.")
    # Before `threads`, whose default depends on it.
    processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=64,
        description="Server processes `python -m app` runs (default: one per CPU core). Each loads every model and keeps its own "
        "caches; one Python process is held to one core by its interpreter lock.",
    )
    threads: int = Field(
        default_factory=lambda data: max(1, (os.cpu_count() or 1) // data.get("processes", 1)),
        ge=1,
        le=256,
        description="PyTorch intra-op threads per process, set once at start-up (default: the CPU cores shared out among the processes).",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Inference threads. Each runs `threads` PyTorch threads, so workers x threads above the core count oversubscribes the CPU.",
    )
    spread_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=64,
        description="Threads one answer about several units spreads them over (a counterfactual's units), each running `threads` "
        "PyTorch threads; 1 answers them in turn. They use cores the other processes leave idle and wait their turn on a busy machine.",
    )
    max_queued_requests: int = Field(
        256,
        ge=1,
        description="Inference requests waiting or running at once before new ones get 503; one whose client went away counts until "
        "its job leaves the queue.",
    )
    max_text_chars: int = Field(1000, ge=1, le=100_000, description="Longest text accepted, before and after normalisation.")
    max_body_bytes: int = Field(65_536, ge=1024, description="Request bodies larger than this are refused with 413 before parsing.")
    max_head_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="`python -m app`: a request head (request line and headers) larger than this gets 431 and the connection closes; "
        "no more than this is kept of it.",
    )
    head_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="`python -m app`: seconds a client has to send a whole request head, from the connection's start (or, on a "
        "reused connection, from the head's first byte); then the connection closes.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="`python -m app`: open connections each server process holds; one more gets 503 at once and is closed.",
    )
    state_cache_size: int = Field(4096, ge=0, description="Recurrent states kept for the incremental keystroke path (entries, all models together); 0 disables it.")
    state_cache_bytes: int = Field(
        32 * 2**20,
        ge=0,
        description="Most bytes of those states each process keeps, least recently used forgotten first: a state is 2 kB for the GRU "
        "at the bundled size and 100 kB for the mLSTM, whose 4,096 would take 400 MB.",
    )
    recording_cache_size: int = Field(
        12,
        ge=0,
        description="Forward passes kept for connectivity (entries, all models together; about 3 MB each for 200 characters at the bundled size): "
        "two per unit of six, for the text Figure 4 shows and a counterfactual's edit of it; 0 disables it.",
    )
    response_cache_bytes: int = Field(
        64 * 2**20,
        ge=0,
        description="Most bytes of recent answers each process keeps (bodies and their gzip form, least recently used forgotten "
        "first); 0 keeps none. The article's own texts are kept apart from this, always.",
    )
    warm_article: bool = Field(True, description="Compute the article's own texts at start-up, so the first reader does not wait for them.")
    static_max_age: int = Field(
        0,
        ge=0,
        description="Seconds browsers and proxies may reuse the article's scripts and styles without asking; 0: they ask each time (a 304 when unchanged).",
    )
    integrated_gradients_steps: int = Field(
        32,
        ge=32,
        le=1024,
        description="Steps integrated gradients start with, equal slices of the path; more are added where the completeness error "
        "calls for them, within max_connectivity_work.",
    )
    max_connectivity_work: int = Field(
        120_000,
        ge=1000,
        description="Largest connectivity request, in row-steps: for each requested row, its position + 1, times the integrated-gradients steps for that method.",
    )
    max_unrolled_chars: int = Field(
        100,
        ge=2,
        le=1000,
        description="Longest normalised text whose unrolled gradient norms (/api/unrolled) are served: autograd through every layer "
        "and step, batched over the requested rows, costs far more per row-step than a connectivity sweep.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field("info", description="Log level of the server.")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and `overrides`), or a SettingsError naming the bad variables."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            field = str(detail["loc"][0]) if detail["loc"] else "?"
            problems.append(f"{ENV_PREFIX}{field.upper()}={detail.get('input')!r}: {detail['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
