"""Answers you can weigh: sources by document and strength, unsupported sentences marked, text literal."""

from __future__ import annotations

from kb_assistant.types import Answer, Citation, Source
from kb_assistant.web.records import ClaimView, answer_from_json, answer_to_json, claims_of
from kb_assistant.web.render import answer_markdown, group_sources, relevance_badge, strength


def src(i: int, source: str, score: float) -> Source:
    return Source(i, f"text {i}", source, 0, 6, score)


def test_sources_are_grouped_by_document_strongest_first() -> None:
    answer = Answer("q", "a", (src(1, "/a.txt", 0.45), src(2, "/blog.html", 0.23), src(3, "/a.txt", 0.81),
                               src(4, "/b.pdf", 0.62)), (), 10)
    groups = group_sources(answer)
    assert [(g.name, g.best) for g in groups] == [("a.txt", 0.81), ("b.pdf", 0.62), ("blog.html", 0.23)]
    assert [n for n, _ in groups[0].items] == [3, 1]  # numbers stay those of the answer's [n]


def test_marginal_boilerplate_looks_weak() -> None:
    assert [strength(s) for s in (0.2, 0.23, 0.29, 0.3, 0.49, 0.5, 0.95)] == [
        "weak", "weak", "weak", "fair", "fair", "strong", "strong"]
    assert relevance_badge(0.23) == ":gray-badge[weak 0.23] `██░░░░░░░░`"
    assert relevance_badge(0.83).startswith(":green-badge[strong 0.83]")


def test_unsupported_claims_are_marked_and_still_literal() -> None:
    s = src(1, "/a.txt", 0.9)
    answer = Answer("q", "年假十五天[1]。另有<b>奖金</b>。", (s,), (Citation(1, s),), 10)
    md = answer_markdown(answer, "t1", (ClaimView("年假十五天[1]。", True), ClaimView("另有<b>奖金</b>。", False)))
    assert md == ("年假十五天[\\[1\\]](#t1-1)。:red-background[另有\\<b\\>奖金\\</b\\>。] "
                  ":red-badge[⚠ not in the sources]")
    assert answer_markdown(answer, "t1") == "年假十五天[\\[1\\]](#t1-1)。另有\\<b\\>奖金\\</b\\>。"


def test_claims_come_from_the_answer_when_it_has_them_and_round_trip() -> None:
    class Claim:
        def __init__(self, text: str, supported: bool) -> None:
            self.text, self.supported = text, supported

    class WithClaims:
        claims = (Claim("a.", True), Claim("b.", False))

    assert claims_of(WithClaims()) == (ClaimView("a.", True), ClaimView("b.", False))
    assert claims_of(object()) == ()
    s = Source(3, "正文 😀", "/a.pdf", 5, 10, 0.5, page=4)
    answer = Answer("q", "x [1]", (s,), (Citation(1, s, True, 0.4, 6, 8),), 12, True)
    assert answer_from_json(answer_to_json(answer, (ClaimView("x", False),))) == (answer, (ClaimView("x", False),))
