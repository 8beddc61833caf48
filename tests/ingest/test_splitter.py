"""ChineseTextSplitter: exact offsets, boundaries, protected spans, overlap."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import ChineseTextSplitter, Document, Splitter
from ingest.splitter import PROTECTED


def _split(text: str, **kw) -> list:
    return ChineseTextSplitter(**kw).split_document(Document("t.txt", text))


def _check_invariants(text: str, chunks: list, size: int) -> None:
    assert all(c.text for c in chunks)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text == c.text.strip()
        if len(c.text) > size:  # only an unbreakable token may overflow
            assert PROTECTED.fullmatch(c.text), c.text
    # every non-whitespace character is covered, in order
    covered = [False] * len(text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


_PIECES = st.sampled_from(
    ["人工智能", "数据", "的", "。", "，", "、", "！", "？", "；", "……", "”", "「", "」", " ", "\n", "\n\n",
     "hello", "World", ". ", ", ", "3.14159", "1,000,000", "2023年5月", "https://example.com/a/b?x=1",
     "foo@bar.com", "x", "1", ".", "你好世界", "Python"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(_PIECES, max_size=120),
    size=st.integers(min_value=1, max_value=80),
    overlap_ratio=st.floats(min_value=0, max_value=0.9),
)
def test_property_offsets_sizes_coverage(pieces: list[str], size: int, overlap_ratio: float) -> None:
    text = "".join(pieces)
    overlap = min(size - 1, int(size * overlap_ratio))
    chunks = _split(text, chunk_size=size, chunk_overlap=overlap)
    _check_invariants(text, chunks, size)
    assert chunks == _split(text, chunk_size=size, chunk_overlap=overlap)  # deterministic


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300), size=st.integers(min_value=1, max_value=50))
def test_property_arbitrary_unicode(text: str, size: int) -> None:
    _check_invariants(text, _split(text, chunk_size=size, chunk_overlap=size // 3), size)


def test_prefers_chinese_sentence_ends() -> None:
    text = "第一句话讲的是天气很好。第二句话讲的是我们去公园散步！第三句话问你要不要一起来？"
    chunks = _split(text, chunk_size=30, chunk_overlap=0)
    assert [c.text for c in chunks] == [
        "第一句话讲的是天气很好。第二句话讲的是我们去公园散步！",
        "第三句话问你要不要一起来？",
    ]


def test_closing_quote_stays_with_sentence() -> None:
    text = "他说：「今天的会议取消了。」然后大家都离开了会议室，回到了自己的座位上。"
    chunks = _split(text, chunk_size=16, chunk_overlap=0)
    assert chunks[0].text.endswith("。」")


def test_paragraphs_first() -> None:
    text = "第一段第一句。第一段第二句。\n\n第二段只有一句话。"
    chunks = _split(text, chunk_size=20, chunk_overlap=0)
    assert [c.text for c in chunks] == ["第一段第一句。第一段第二句。", "第二段只有一句话。"]


@pytest.mark.parametrize(
    "token", ["3.14159", "1,000,000", "2023年5月", "https://example.com/docs/page?id=42"]
)
def test_never_cuts_protected_tokens(token: str) -> None:
    for pad in range(0, 30):
        text = "文" * pad + token + "字" * 10
        chunks = _split(text, chunk_size=max(len(token), 12) + 2, chunk_overlap=0)
        assert any(token in c.text for c in chunks), (pad, [c.text for c in chunks])


def test_giant_url_is_one_oversized_chunk() -> None:
    url = "https://example.com/" + "a" * 100
    chunks = _split(f"看这里 {url} 结束了", chunk_size=20, chunk_overlap=5)
    assert url in [c.text for c in chunks]


def test_overlap_carries_tail_from_sentence_boundary() -> None:
    text = "甲乙丙。丁戊己。庚辛壬。癸子丑。寅卯辰。巳午未。申酉戌。"
    chunks = _split(text, chunk_size=12, chunk_overlap=5)
    assert len(chunks) >= 2
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # overlap present
        assert text[b.start - 1] == "。"  # and it starts right after a sentence end
        assert b.text.startswith(a.text[-4:])


def test_english_sentence_and_words() -> None:
    text = "The first sentence is here. The second one follows it. A third closes the paragraph."
    chunks = _split(text, chunk_size=30, chunk_overlap=0)
    assert [c.text for c in chunks] == [
        "The first sentence is here.",
        "The second one follows it.",
        "A third closes the paragraph.",
    ]
    assert not any(re.search(r"\w$", c.text) and text[c.end : c.end + 1].isalnum() for c in chunks)


def test_split_numbers_across_pages_and_settings() -> None:
    splitter = ChineseTextSplitter(chunk_size=10, chunk_overlap=2)
    docs = [Document("a.pdf", "第一页的内容。第一页还有。", page=1), Document("a.pdf", "第二页。", page=2),
            Document("b.txt", "别的文件。")]  # fmt: skip
    chunks = splitter.split(docs)
    assert [c.index for c in chunks if c.source == "a.pdf"] == list(range(len(chunks) - 1))
    assert chunks[-1].index == 0 and chunks[-2].page == 2
    assert splitter.settings() == {
        "name": "ChineseTextSplitter", "chunk_size": 10, "chunk_overlap": 2, "length_unit": "characters"
    }  # fmt: skip
    assert isinstance(splitter, Splitter)


def test_length_function_and_validation() -> None:
    def utf8_bytes(s: str) -> int:
        return len(s.encode())

    chunks = _split("中文字符占三个字节。" * 5, chunk_size=32, chunk_overlap=0, length_function=utf8_bytes)
    assert all(utf8_bytes(c.text) <= 32 for c in chunks)
    assert ChineseTextSplitter(length_function=utf8_bytes).settings()["length_unit"] == "utf8_bytes"
    with pytest.raises(ValueError):
        ChineseTextSplitter(chunk_size=10, chunk_overlap=10)


def test_empty_and_whitespace() -> None:
    assert _split("") == [] and _split(" \n\n \t") == []
