"""BM25 keyword index: tokeniser, ranking, incremental updates against rebuilds, persistence, RRF."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_assistant.kb.bm25 import BM25Index, BM25IndexError, reciprocal_rank_fusion
from kb_assistant.tokenize import TOKENIZER_ID, tokenize

CORPUS = {
    1: "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    2: "上海位于长江入海口，是中国最大的经济中心和港口城市。",
    3: "Python 是一种广泛使用的编程语言，由 Guido van Rossum 于 1991 年发布。",
    4: "大熊猫主要生活在四川的竹林里，以竹子为食。",
    5: "长城是古代中国修建的军事防御工程，全长 21196 公里。",
    6: "",
}
QUERIES = ["中国的首都是哪里？", "Python 编程语言", "大熊猫吃什么", "长城有多长 21196", "经济中心", "上海 港口"]


@pytest.fixture
def index(tmp_path: Path):
    idx = BM25Index.open(tmp_path / "bm25.db")
    yield idx
    idx.close()


# -- tokeniser -----------------------------------------------------------------------------------


def test_tokenize_mixed_chinese_english_numbers() -> None:
    tokens = tokenize("北京大学成立于1898年，Python 3.14 and GPT-4 cost 1,194 元; H100!")
    assert {"北京", "大学", "北京大学", "1898", "年", "python", "3.14", "gpt", "4", "1194", "h100"} <= set(tokens)
    assert "于" not in tokens and "and" not in tokens  # stopwords
    assert not any(t in tokens for t in ("，", ",", ";", "!", "-"))  # punctuation


def test_tokenize_normalises_full_width_and_case() -> None:
    assert tokenize("ＰＹＴＨＯＮ　２０２３") == tokenize("python 2023") == ["python", "2023"]


def test_tokenize_drops_stopwords_and_punctuation_only_text() -> None:
    assert tokenize("") == []
    assert tokenize("的了是，。！？ the of and ...") == []
    assert tokenize("😀🎉") == []


def test_tokenize_traditional_chinese_and_emoji() -> None:
    tokens = tokenize("臺灣的首都是臺北市 😀")
    assert tokens and "的" not in tokens
    assert "".join(tokens).count("臺北") >= 1


def test_tokenize_is_thread_safe_on_first_use() -> None:
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(tokenize("中文分词测试"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == results[0] for r in results)


# -- ranking ---------------------------------------------------------------------------------------


def test_obvious_match_ranks_first(index: BM25Index) -> None:
    index.add(CORPUS.items())
    assert index.count() == len(CORPUS)
    assert index.search("中国的首都是哪里？", 3)[0][0] == 1
    assert index.search("Python 编程语言", 3)[0][0] == 3
    assert index.search("大熊猫吃什么", 3)[0][0] == 4
    assert index.search("21196", 3)[0][0] == 5
    hits = index.search("中心", 10)
    assert {rid for rid, _ in hits} == {1, 2}
    assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:]))


def test_english_word_forms_find_each_other(index: BM25Index) -> None:
    """English words are stemmed on both sides: a question's "backups" and "closing" find a document that
    writes "backup" and "closes" (before, only the exact forms matched and this search found nothing)."""
    assert tokenize("The backups were closing") == tokenize("backup closes") == ["backup", "clos"]
    index.add([(1, "The backup server closes at night."), (2, "The canteen opens at noon.")])
    assert [i for i, _ in index.search("When are the backups closing?", 5)] == [1]
    assert [i for i, _ in index.search("canteen opening", 5)] == [2]


def test_empty_index_and_empty_query(index: BM25Index) -> None:
    assert index.search("北京", 5) == []
    index.add(CORPUS.items())
    assert index.search("", 5) == []
    assert index.search("的了是？", 5) == []
    assert index.search("不存在的词汇xyzzy", 5) == []
    assert index.search("北京", 0) == []


def test_k_limits_and_ties_break_by_id(index: BM25Index) -> None:
    index.add([(7, "苹果 香蕉"), (3, "苹果 香蕉"), (5, "苹果 香蕉")])
    hits = index.search("苹果", 2)
    assert [rid for rid, _ in hits] == [3, 5]
    assert hits[0][1] == pytest.approx(hits[1][1])


# -- incremental updates ---------------------------------------------------------------------------


def _scores(idx: BM25Index) -> list[list[tuple[int, float]]]:
    return [idx.search(q, 10) for q in QUERIES]


def _assert_same(a: list[list[tuple[int, float]]], b: list[list[tuple[int, float]]]) -> None:
    assert [[rid for rid, _ in hits] for hits in a] == [[rid for rid, _ in hits] for hits in b]
    for ha, hb in zip(a, b):
        assert [s for _, s in ha] == pytest.approx([s for _, s in hb], rel=1e-9)


def test_add_remove_equals_rebuild(tmp_path: Path) -> None:
    with BM25Index.open(tmp_path / "inc.db") as inc, BM25Index.open(tmp_path / "full.db") as full:
        inc.add([(i, CORPUS[i]) for i in (1, 2, 3)])
        inc.add([(i, CORPUS[i]) for i in (4, 5, 6)])
        inc.remove([2, 6, 99])
        inc.add([(2, "上海是一座港口城市。"), (1, CORPUS[1])])  # re-adding replaces
        expected = {**{i: CORPUS[i] for i in (1, 3, 4, 5)}, 2: "上海是一座港口城市。"}
        full.rebuild(sorted(expected.items()))
        assert inc.count() == full.count() == 5
        assert inc.ids() == full.ids()
        _assert_same(_scores(inc), _scores(full))


TEXTS = list(CORPUS.values()) + ["北京 上海 港口", "Python Python 语言", "长城 竹子 首都"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.dictionaries(st.integers(0, 12), st.sampled_from(TEXTS), max_size=4)),
        st.tuples(st.just("remove"), st.lists(st.integers(0, 12), max_size=4)),
    ),
    max_size=8,
)


@pytest.mark.parametrize("delta_max", [0, 3, 10_000])  # always a segment, both, a delta only
@settings(max_examples=20, deadline=None)
@given(operations=ops)
def test_incremental_updates_match_rebuild_property(operations, delta_max: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _check_against_rebuild(Path(tmp), operations, delta_max)


def _check_against_rebuild(folder: Path, operations, delta_max: int) -> None:
    model: dict[int, str] = {}
    with BM25Index.open(folder / "inc.db", delta_max=delta_max) as inc, BM25Index.open(folder / "full.db") as full:
        for op, arg in operations:
            if op == "add":
                inc.add(arg.items())
                model.update(arg)
            else:
                inc.remove(arg)
                for rid in arg:
                    model.pop(rid, None)
        full.rebuild(model.items())
        assert inc.count() == len(model)
        assert inc.ids() == sorted(model)
        vocab = sorted({t for text in TEXTS for t in tokenize(text)})
        truth = {t: sum(t in tokenize(text) for text in model.values()) for t in vocab}
        assert inc.doc_freqs(vocab) == full.doc_freqs(vocab) == (len(model), truth)
        _assert_same(_scores(inc), _scores(full))


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    with BM25Index.open(path) as idx:
        idx.add(CORPUS.items(), source_generation=7)
        before = _scores(idx)
        generation = idx.generation
    with BM25Index.open(path) as idx:
        assert idx.count() == len(CORPUS)
        assert idx.generation == generation
        assert idx.source_generation == 7
        assert not idx.is_stale(7) and idx.is_stale(8)
        _assert_same(_scores(idx), before)


def test_terms_of_within_a_question_s_terms(index: BM25Index) -> None:
    index.add(CORPUS.items())
    full = index.terms_of([1, 2, 3, 6, 99])
    within = ["中心", "首都", "python", "缺席"]
    got = index.terms_of([1, 2, 3, 6, 99], within)
    assert got == {rid: full.get(rid, set()) & set(within) for rid in (1, 2, 3, 6)}  # 99 is not indexed
    assert got[2] == {"中心"} and got[6] == set()
    assert index.terms_of([1, 2], []) == {1: set(), 2: set()}


def test_apply_removes_and_adds_in_one_write(index: BM25Index) -> None:
    index.add(CORPUS.items(), source_generation=1, source_cursor="log:1")
    generation = index.generation
    index.apply([2, 4], [(7, "上海港口"), (1, "北京首都")], source_generation=3, source_cursor="log:3")
    assert index.generation == generation + 1 and index.ids() == [1, 3, 5, 6, 7]
    assert (index.source_generation, index.source_cursor) == (3, "log:3")
    assert [rid for rid, _ in index.search("上海 港口", 5)] == [7]
    index.remove([7], source_generation=4)  # a write without a cursor forgets it
    assert index.source_cursor is None


def test_generations_and_staleness(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    with BM25Index.open(path) as idx:
        assert idx.generation == 0 and idx.source_generation is None and idx.is_stale(0)
        idx.add([(1, "北京")], source_generation=1)
        idx.remove([1], source_generation=2)
        assert idx.generation == 2 and idx.source_generation == 2
    with BM25Index.open(path, tokenizer=str.split, tokenizer_id="whitespace") as idx:
        assert idx.is_stale(2)  # built by another tokenizer
        idx.rebuild([(1, "a b")], source_generation=2)
        assert not idx.is_stale(2)


def test_exception_mid_write_leaves_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    with BM25Index.open(path) as idx:
        idx.add(CORPUS.items(), source_generation=1)
        before, generation = _scores(idx), idx.generation

        def items():
            yield 1, "全新的内容 完全不同"
            yield 42, "新文档"
            raise RuntimeError("crash while reading chunks")

        with pytest.raises(RuntimeError):
            idx.add(items(), source_generation=2)
        with pytest.raises(RuntimeError):
            idx.rebuild(items(), source_generation=2)
        with pytest.raises(RuntimeError):  # a sync's removals go with its additions, or neither
            idx.apply([2, 3], items(), source_generation=2)
        with pytest.raises(ValueError, match="twice"):
            idx.add([(50, "甲"), (50, "乙")])
        with pytest.raises(ValueError, match="integers"):
            idx.remove([-1])
        assert idx.count() == len(CORPUS) and idx.generation == generation and idx.source_generation == 1
        _assert_same(_scores(idx), before)
    with BM25Index.open(path) as idx:  # and on disk
        assert idx.count() == len(CORPUS)
        _assert_same(_scores(idx), before)


def _term_stats(idx: BM25Index, *, counted: bool = False) -> dict[str, int]:
    """The stored document frequencies (or, ``counted``, the postings counted per term)."""
    sql = "SELECT term, COUNT(*) FROM postings GROUP BY term" if counted else "SELECT term, df FROM terms"
    conn = sqlite3.connect(idx.path)
    try:
        return dict(conn.execute(sql).fetchall())
    finally:
        conn.close()


def test_stats_consistent_with_tables(index: BM25Index) -> None:
    index.add(CORPUS.items())
    index.remove([3])
    conn = sqlite3.connect(index.path)
    try:
        n, total = conn.execute("SELECT n, total_length FROM stats").fetchone()
        assert (n, total) == conn.execute("SELECT COUNT(*), SUM(length) FROM docs").fetchone()
        assert conn.execute("SELECT COUNT(*) FROM postings WHERE id = 3").fetchone()[0] == 0
        assert _term_stats(index) == _term_stats(index, counted=True)
        assert dict(conn.execute("SELECT key, value FROM meta"))["tokenizer"] == TOKENIZER_ID
    finally:
        conn.close()


def test_a_version_1_file_gets_its_term_stats_on_open(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    with BM25Index.open(path) as idx:
        idx.add(CORPUS.items())
        expected = idx.doc_freqs(["中国", "中心", "python"])
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE terms")
    conn.execute("DROP TABLE dead")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with BM25Index.open(path) as idx:
        assert idx.doc_freqs(["中国", "中心", "python"]) == expected and expected[1]["中心"] == 2


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    BM25Index.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(BM25IndexError, match="newer"):
        BM25Index.open(path)


# -- reciprocal rank fusion ------------------------------------------------------------------------


def test_rrf_orders_by_fused_score() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [2, 3, 4]], k=60)
    assert [rid for rid, _ in fused] == [2, 3, 1, 4]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_ties_are_deterministic() -> None:
    # 1 and 3 tie exactly; both have best rank 1, so the lower id wins, whatever the list order.
    assert reciprocal_rank_fusion([[1, 2, 3], [3, 2, 1]]) == reciprocal_rank_fusion([[3, 2, 1], [1, 2, 3]])
    assert [rid for rid, _ in reciprocal_rank_fusion([[1, 2, 3], [3, 2, 1]])] == [1, 3, 2]
    # Tie on score between a rank-1 and a rank-2 appearance is impossible; ties on best rank go to id.
    assert [rid for rid, _ in reciprocal_rank_fusion([[9], [4]])] == [4, 9]


def test_rrf_weights_duplicates_and_edge_cases() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    assert [rid for rid, _ in reciprocal_rank_fusion([[1, 2], [2, 1]], weights=[2.0, 1.0])] == [1, 2]
    assert reciprocal_rank_fusion([[5, 5, 6]]) == [(5, 1 / 61), (6, 1 / 63)]  # ranks are positions
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1]], weights=[1.0, 2.0])
