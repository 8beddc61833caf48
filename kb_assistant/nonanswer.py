"""A reply that does not answer: the model restated the question instead of answering it.

Small models given a question they cannot resolve often hand it back, rephrased ("马祖人相信……会有什么
效果？", "注册产品后保修期延长到几年。"), sometimes with a citation marker that makes it look sourced.
Such a reply still holds a question word, or adds nothing the question did not already say. When that
happens the user gets the source sentence that best matches the question, quoted and cited, after the
model's words: the passage that answers (or not) is in front of them, labelled as a quote, not as
the model's answer.

Two more replies get the same quote (``Fallback.needed``):
- none of the reply's sentences is supported by a source. On DRCD such a reply is a wrong answer 9 times
  in 10, and the quoted sentence holds the answer 3 times in 4.
- the reply is supported, but only by sentences far from what the question asks: none of them is among
  the answerability check's best passages for the question. The model copied the wrong part of a source
  ("香港政府在二三十年代……" for a question on sunspots). Only in the question's own language: across
  languages those passages are too unsure to overrule the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .script import is_traditional
from .textmatch import claim_text, content_features, has_cjk, number_values
from .types import Answer, Source

# Question words that never appear in a statement that answers ("为什么" can: "这就是为什么……").
_ZH_ASKING = re.compile(r"(?<![为為])什[么麼]|哪[一个個些里裡儿兒位年天种種]|谁|誰|多少|何时|何時|"
                        r"几[个個年月日天号號次岁歲]|幾[個年月日天號次歲]")
_EN_ASKING = re.compile(r"^\s*(?:what|which|who|whom|whose|when|where|how)\b", re.IGNORECASE)
QUOTE_ZH = "\n\n资料原文：「{text}」[{n}]"
QUOTE_ZH_TRADITIONAL = "\n\n資料原文：「{text}」[{n}]"
QUOTE_EN = '\n\nFrom the source: "{text}" [{n}]'
# where a quote starts in an answer's text: each form's text before its quoted sentence
_QUOTE_START = re.compile("|".join(re.escape(form.split("{text}")[0]) for form in (QUOTE_ZH, QUOTE_ZH_TRADITIONAL,
                                                                                   QUOTE_EN)))


def model_words(text: str) -> str:
    """An answer's text without the quote appended after it: what the model itself wrote."""
    return _QUOTE_START.split(text, maxsplit=1)[0]


def restates_question(question: str, reply: str) -> bool:
    """Whether ``reply`` is the question handed back: empty, still asking (a question word, or a
    question mark at its end), or adding no content term and no figure to the question."""
    text = claim_text(reply).strip()
    if not text:
        return True
    if text.endswith(("?", "？")) or _EN_ASKING.search(text):
        return True
    if has_cjk(text) and _ZH_ASKING.search(text):
        return True
    new = content_features(text) - content_features(question, unigrams=True)
    asked = set().union(*number_values(question))
    figures = [v for v in number_values(text) if not v & asked]
    return not new and not figures


def quote(question: str, shown: Sequence[Source], source: Source, start: int, end: int) -> str | None:
    """The text appended after a reply that does not answer: ``source.text[start:end]`` quoted
    with the marker of its number among the ``shown`` sources (None when it is not shown)."""
    number = next((i for i, s in enumerate(shown, 1) if s.id == source.id), None)
    if number is None:
        return None
    text = " ".join(source.text[start:end].split())
    form = (QUOTE_ZH_TRADITIONAL if is_traditional(question) else QUOTE_ZH) if has_cjk(question) else QUOTE_EN
    return form.format(text=text, n=number)


@dataclass(frozen=True)
class Fallback:
    """The quote appended after a reply that does not answer, and where the question's best-matching
    passages lie: (source path, start, end) in the document, in the question's language only."""

    text: str
    passages: tuple[tuple[str, int, int], ...] = ()

    def needed(self, question: str, answer: Answer) -> bool:
        """Whether ``answer`` (checked sentence by sentence) gets the quote: see the module's docstring."""
        return restates_question(question, answer.text) or unsupported(answer) or self.rests_elsewhere(answer)

    def rests_elsewhere(self, answer: Answer) -> bool:
        """Supported, but by none of the question's best passages."""
        quoted = [(answer.sources[c.sources[0] - 1].source, c.quote_start, c.quote_end) for c in answer.claims
                  if c.supported and c.sources and c.quote_start is not None and c.quote_end is not None]
        if not quoted or not self.passages:
            return False
        return not any(path == p and start < e and s < end for path, start, end in quoted for p, s, e in self.passages)


def unsupported(answer: Answer) -> bool:
    """Checked sentence by sentence, and no sentence is supported by a source."""
    return bool(answer.claims) and not any(c.supported for c in answer.claims)
