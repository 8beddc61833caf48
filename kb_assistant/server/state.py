"""What one server process holds: the settings, the key store, the knowledge bases it has opened, the
answer model (loaded once, on first use) and the bounded queue in front of it."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

from ..errors import KBError
from ..generators import Generator
from ..kb import KnowledgeBase, exists, kb_names, validate_name
from ..settings import Settings
from .errors import APIError
from .keys import KeyStore


class ModelGate:
    """Admission to the one model: ``slots`` answers run, ``queue_size`` more wait; past that, 429.

    The generator itself serializes its streams (Generator's guard); the gate only bounds how many
    requests are parked behind it, so that a burst gets a quick refusal with a ``Retry-After`` instead
    of piling up connections. ``Retry-After`` comes from the recent answer time."""

    def __init__(self, slots: int, queue_size: int) -> None:
        self.slots = max(1, slots)
        self.queue_size = queue_size
        self.pending = 0
        self.refused = 0
        self._seconds = 5.0  # running mean of one answer's time, seeded pessimistically
        self._lock = threading.Lock()

    def enter(self) -> float:
        """Take a place (running or waiting) or raise a 429; returns the start time for ``leave``."""
        with self._lock:
            if self.pending >= self.slots + self.queue_size:
                self.refused += 1
                ahead = self.pending - self.slots + 1
                wait = max(1, math.ceil(self._seconds * ahead / self.slots))
                raise APIError(429, f"the model is busy: {self.pending} requests are running or waiting "
                               f"(queue_size {self.queue_size}); retry in about {wait} s",
                               code="queue_full", headers={"Retry-After": str(wait)})
            self.pending += 1
        return time.monotonic()

    def leave(self, started: float) -> None:
        with self._lock:
            self.pending -= 1
            self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - started)


class ServerState:
    """Shared by every request of one app; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, settings: Settings, *, require_keys: bool = False, generator: Generator | None = None) -> None:
        self.settings = settings
        self.keys = KeyStore(settings.data_dir)
        self.require_keys = require_keys
        self._generator = generator
        self._given_id = generator.name if generator is not None else None  # an injected model names itself
        self._kbs: dict[str, KnowledgeBase] = {}
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        slots = generator.max_streams if generator is not None else 1
        self.gate = ModelGate(slots, settings.server.queue_size)

    # -- the answer model ---------------------------------------------------------------------------

    @property
    def generator(self) -> Generator:
        """The answer model, loaded on the first request that needs it (then shared)."""
        if self._generator is None:
            with self._model_lock:
                if self._generator is None:
                    from ..app import load_generator

                    self._generator = load_generator(self.settings)
                    self.gate.slots = self._generator.max_streams
        return self._generator

    def model_id(self) -> str:
        """The bare answer model's id in /v1/models (no retrieval): its file or directory name."""
        m = self.settings.model
        if self._given_id is not None:
            return self._given_id
        if m.generator == "openai":
            return m.api_model or "openai"
        if m.model_path is not None:
            return Path(m.model_path).stem or m.generator
        if m.generator == "llama-cpp":
            from ..bundled import BUNDLED_NAME

            return Path(BUNDLED_NAME).stem
        return m.generator

    def context_window(self) -> int:
        return self.settings.model.context_window or self.generator.context_window

    # -- knowledge bases ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return kb_names(self.settings)

    def need_kb(self, name: str) -> None:
        """404 unless knowledge base ``name`` exists (the catalog's check: nothing is opened)."""
        if not exists(self.settings.kb_root / validate_name(name)):
            raise APIError(404, f"no knowledge base named {name!r}: list them with GET /v1/kbs, create it "
                           "with POST /v1/kbs", code="kb_not_found", param="model")

    def kb(self, name: str) -> KnowledgeBase:
        """Knowledge base ``name``, opened once and kept; 404 if there is none."""
        with self._lock:
            kb = self._kbs.get(name)
            if kb is not None and kb.directory.is_dir():
                return kb
            self.need_kb(name)
            from ..app import open_kb

            kb = open_kb(self.settings, name, create=False)
            self._kbs[name] = kb
            return kb

    def create_kb(self, name: str) -> KnowledgeBase:
        from ..embedders import make_embedder

        with self._lock:
            kb = KnowledgeBase.create(self.settings, name, make_embedder(self.settings.embedder))
            self._kbs[name] = kb
            return kb

    def forget_kb(self, name: str) -> None:
        """Close and drop an opened knowledge base (before it is deleted)."""
        with self._lock:
            kb = self._kbs.pop(name, None)
        if kb is not None:
            kb.close()

    def close(self) -> None:
        with self._lock:
            kbs, self._kbs = list(self._kbs.values()), {}
        for kb in kbs:
            try:
                kb.close()
            except KBError:
                pass
