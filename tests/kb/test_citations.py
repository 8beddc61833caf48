from kb_assistant.citations import cited_numbers, resolve_citations
from kb_assistant.types import Source


def src(n: int) -> Source:
    return Source(id=n, text=f"text {n}", source=f"/docs/f{n}.txt", start=0, end=6, score=0.5)


def test_marker_forms() -> None:
    text = "北京是首都[1]。It has 21M people [2, 3]. 另见【4】和[来源5]，还有[1][2]。"
    assert cited_numbers(text) == [1, 2, 3, 4, 5]


def test_resolve_maps_and_drops_dangling_markers() -> None:
    sources = [src(1), src(2)]
    text, cites = resolve_citations("A fact [1]. Another [2][7]. Made up [9].", sources)
    assert [c.number for c in cites] == [1, 2]
    assert cites[0].source.source == "/docs/f1.txt"
    assert "[7]" not in text and "[9]" not in text
    assert text == "A fact [1]. Another [2]. Made up."


def test_no_markers_no_citations() -> None:
    text, cites = resolve_citations("I don't know.", [src(1)])
    assert cites == () and text == "I don't know."


def test_years_and_numbers_in_brackets_beyond_sources_are_not_citations() -> None:
    _, cites = resolve_citations("In [2023] the rule changed [1].", [src(1)])
    assert [c.number for c in cites] == [1]
