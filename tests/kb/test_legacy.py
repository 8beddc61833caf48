"""Knowledge bases written by the previous version (tests/data/legacy_v1, built by commit 9d65b34 with
the hash embedder) open, answer and re-index incrementally; their manifests are brought forward."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.embedders import HashEmbedder
from kb_assistant.errors import EmbedderMismatchError
from kb_assistant.generators.echo import EchoGenerator
from kb_assistant.kb import KnowledgeBase, StoreRecord, kb_summaries, read_manifest
from kb_assistant.settings import Settings, load_settings

LEGACY = Path(__file__).parent.parent / "data" / "legacy_v1"
BACKENDS = ["legacy_faiss", "legacy_milvus"]


@pytest.fixture
def settings(isolated_data_dir: Path) -> Settings:
    shutil.copytree(LEGACY / "kbs", isolated_data_dir / "kbs")
    return load_settings(min_relevance=0.0)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """The same documents at a new path (the recorded ones lived in /tmp/legacy-docs)."""
    return Path(shutil.copytree(LEGACY / "docs", tmp_path / "docs"))


@pytest.fixture(params=BACKENDS)
def legacy(request: pytest.FixtureRequest, settings: Settings) -> Iterator[KnowledgeBase]:
    if request.param == "legacy_milvus":
        pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite")
    with KnowledgeBase.open(settings, request.param, HashEmbedder(64), create=False) as kb:
        yield kb


def test_manifest_is_brought_forward(legacy: KnowledgeBase) -> None:
    raw = json.loads((legacy.directory / "manifest.json").read_text())
    assert raw["schema_version"] == 3 and raw["embedder"] == {"id": "hash/64", "dim": 64}
    assert raw["heading_prefix"] is False  # built before heading paths: nothing was prefixed
    assert not (legacy.directory / "store" / "milvus.json").exists()  # absorbed into the manifest
    if legacy.name == "legacy_milvus":
        assert legacy.manifest.store == StoreRecord("milvus", "milvus.db", "kb_legacy_milvus")
    else:
        assert legacy.manifest.store == StoreRecord("faiss")


def test_it_opens_and_answers(legacy: KnowledgeBase) -> None:
    assert legacy.count() == 3 and len(legacy.documents()) == 3
    assert legacy.search("Backup policy database backups", 1)[0].file_name == "backup.txt"
    assert legacy.retriever(mode="bm25").search("rotated every 14 days", 1)[0].file_name == "backup.txt"
    answer = Assistant(legacy, EchoGenerator(context_window=4096), legacy.settings).ask("年假可以顺延到什么时候？")
    result = answer.result()
    assert result.found and any(s.file_name == "leave.md" for s in result.sources)


def test_it_reindexes_incrementally(legacy: KnowledgeBase, docs: Path) -> None:
    if Path("/tmp/legacy-docs").exists():
        pytest.skip("the fixture's original folder exists on this machine: its files would not count as moved")
    moved = legacy.index_paths([docs])
    assert [o.status for o in moved.outcomes] == ["moved"] * 3 and moved.embedded == 0  # nothing re-embedded
    assert legacy.index_paths([docs]).by_status("unchanged")
    (docs / "backup.txt").write_text("Backups now run at 03:00 and are rotated every 30 days.\n")
    again = legacy.index_paths([docs])
    assert [o.path for o in again.by_status("updated")] == [str(docs / "backup.txt")]
    assert len(again.by_status("unchanged")) == 2 and again.embedded == 1
    assert "30 days" in legacy.search("rotated every 30 days", 1)[0].text


def test_listed_with_its_store(settings: Settings) -> None:
    pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite")
    rows = {r.name: r for r in kb_summaries(settings)}
    assert (rows["legacy_faiss"].backend, rows["legacy_faiss"].chunks) == ("faiss", 3)
    assert (rows["legacy_milvus"].backend, rows["legacy_milvus"].chunks) == ("milvus", 3)


def test_a_kb_from_before_manifests_takes_its_record_from_the_store(settings: Settings) -> None:
    (settings.kb_root / "legacy_faiss" / "manifest.json").unlink()
    other = HashEmbedder(64)
    other.id = "another/64"  # same dimension, another model: only the recorded id can tell
    with pytest.raises(EmbedderMismatchError, match="built with embedder hash/64"):
        KnowledgeBase.open(settings, "legacy_faiss", other, create=False)
    with KnowledgeBase.open(settings, "legacy_faiss", HashEmbedder(64), create=False) as kb:
        assert kb.manifest.embedder_id == "hash/64" and kb.manifest.splitter["chunk_size"] == 500
    manifest = read_manifest(settings.kb_root / "legacy_faiss")
    assert manifest is not None and manifest.created.startswith("2026-12-01")
