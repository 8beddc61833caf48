"""Runs ``kb eval --generate``: one knowledge base of the whole set, and small per-question ones (noise,
unanswerable) built from the same paragraph files, each paragraph embedded once per run."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .answer_eval import AnswerRecord, Case, full_cases, noise_cases, run_cases, summarise, unanswerable_cases
from .embedders import Embedder
from .evaluation import EvalQuestion, EvalSet, write_paragraphs
from .generators.base import Generator
from .kb import KnowledgeBase
from .settings import Settings
from .textmatch import MemoEmbedder


class AnswerEvaluation:
    """A set's paragraphs as files in ``workdir/docs`` and its whole-set knowledge base ``eval``;
    ``ask(case)`` answers over that one or over a scratch knowledge base of the case's files."""

    def __init__(self, settings: Settings, data: EvalSet, workdir: Path, embedder: Embedder,
                 generator: Generator, *, progress: Callable[[int, int], None] | None = None) -> None:
        self.settings = settings.model_copy(update={"data_dir": workdir / "data"})
        self.data = data
        self.docs = write_paragraphs(data.paragraphs, workdir / "docs")
        self.embedder = MemoEmbedder(embedder)
        self.generator = generator
        self.kb = KnowledgeBase.open(self.settings, "eval", self.embedder)
        report = self.kb.index_paths([self.docs], progress=(lambda d, t, p: progress(d, t)) if progress else None)
        self.failed = len(report.failed)
        # the whole-set kb's vectors: the per-question knowledge bases hold the same chunks, so none
        # is embedded twice (a hybrid search cannot be restricted to some files: small kbs it is)
        store = self.kb.store
        self.embedder.remember((r.payload["text"], r.vector) for r in store.get(store.ids()) if r is not None)
        self.scratch_seconds: list[float] = []  # building each per-question knowledge base
        self._full: Any = None

    def reset(self) -> None:
        """Forget the whole-set assistant and the timings of the previous run."""
        self._full = None
        self.scratch_seconds.clear()

    def close(self) -> None:
        self.reset()
        self.kb.close()

    def __enter__(self) -> AnswerEvaluation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def assistant(self, kb: KnowledgeBase, settings: Settings | None = None) -> Any:
        from .assistant import Assistant

        return Assistant(kb, self.generator, settings or self.settings)

    def nearest(self, question: str, k: int) -> list[str]:
        """Paragraph files nearest to ``question`` by dense search over the whole set, best first."""
        names = [Path(s.source).name for s in self.kb.search(question, k * 3)]
        return list(dict.fromkeys(names))[:k]

    def ask(self, case: Case, settings: Settings | None = None) -> Any:
        """An answer stream for ``case``; a scratch knowledge base is built (from cached vectors) and
        deleted once the stream has been drained."""
        if case.files is None:
            if self._full is None or self._full.settings is not (settings or self.settings):
                self._full = self.assistant(self.kb, settings)
            return self._full.ask(case.question.text)
        start = time.perf_counter()
        root = self.settings.kb_root
        shutil.rmtree(root / "case", ignore_errors=True)
        kb = KnowledgeBase.open(self.settings, "case", self.embedder)
        kb.index_paths([self.docs / name for name in case.files])
        self.scratch_seconds.append(time.perf_counter() - start)
        assistant = self.assistant(kb, settings)
        return _Closing(assistant.ask(case.question.text), assistant)


class _Closing:
    """An answer stream that closes its scratch knowledge base once iterated."""

    def __init__(self, stream: Any, assistant: Any) -> None:
        self.stream, self.assistant = stream, assistant

    def __iter__(self) -> Any:
        try:
            yield from self.stream
        finally:
            self.assistant.kb.close()

    @property
    def answer(self) -> Any:
        return self.stream.answer


def build_cases(ev: AnswerEvaluation, questions: Sequence[EvalQuestion], *, noise: int | None = None,
                unanswered: Sequence[EvalQuestion] = (),
                unanswerable: bool = False, seed: int = 0, related: int = 4) -> tuple[list[Case], dict[str, Any]]:
    """The cases of one run and a note of how they were built."""
    if unanswerable:
        cases, counts = unanswerable_cases(ev.data, questions, related=related, nearest=ev.nearest)
        return cases, {"kind": "unanswerable", **counts}
    if noise is not None:
        return noise_cases(ev.data, questions, noise, seed=seed), {"kind": f"noise {noise}", "seed": seed}
    return full_cases(questions, unanswered), {"kind": "full set"}


def evaluate_answers(ev: AnswerEvaluation, questions: Sequence[EvalQuestion], window: int, *,
                     noise: int | None = None, unanswerable: bool = False, seed: int = 0,
                     unanswered: Sequence[EvalQuestion] = (), overrides: dict[str, Any] | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     on_record: Callable[[AnswerRecord], None] | None = None,
                     done: Mapping[str, AnswerRecord] | None = None) -> tuple[dict[str, Any], list[AnswerRecord]]:
    """Answer every case at ``window`` tokens with the settings ``overrides``; summary and records.
    ``on_record`` sees each new record; cases answered before (``done``, by question id) are not asked again."""
    model = ev.settings.model.updated(context_window=window, n_ctx=max(ev.settings.model.n_ctx, window))
    cfg = ev.settings.model_copy(update={"model": model, **(overrides or {})})
    cases, how = build_cases(ev, questions, noise=noise, unanswerable=unanswerable, seed=seed,
                             unanswered=unanswered)
    ev.reset()
    records = run_cases(cases, lambda c: ev.ask(c, cfg), progress=progress, on_record=on_record, done=done)
    summary = {"window": window, **how, **summarise(records)}
    if ev.scratch_seconds:
        summary["scratch_kb_s"] = round(sum(ev.scratch_seconds) / len(ev.scratch_seconds), 3)
    return summary, records
