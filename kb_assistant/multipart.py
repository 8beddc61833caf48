"""Questions with several parts: split them into self-contained part questions, search each part, and
merge each part's best sources, so that no part's evidence is crowded out by another's.

A joined question is one embedding: its nearest chunks lean to whichever part dominates the vector, and
the other part's paragraph often never reaches the prompt (issue 17: both facts reached the packed prompt
for 38% of two-fact questions). Splitting is deliberately conservative: it fires only on explicit signs
of several asked-for things (two question clauses, 分别/各/respectively, a comparison, parallel numeric
fillers such as "2022年和2023年"), never on a bare 和/and, which is far more often part of one noun phrase
("刘六和刘七是何时起义的", "salt and pepper"). bench/bench_multipart.py measures the false-split rate on the
single questions of CMRC trial, DRCD dev and our English set, and the retrieval gain on joined pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .types import Source

MAX_PARTS = 4
MAX_ITEM_CHARS = 20  # a coordinated item longer than this is a clause, not a noun phrase: no split
MIN_PART_CHARS = 4

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ZH_QWORD = re.compile(r"什么|什麼|谁|誰|哪|多少|几|幾|何|怎|如何|为什么|為什麼|吗|嗎|是否|"
                       r"多久|多长|多長|多大|多高|多远")
_EN_QWORD = re.compile(r"^(what|who|whom|whose|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
                       r"should|will|would|has|have|had|name|list|tell)\b", re.I)

# -- two questions in one ---------------------------------------------------------------------------
# "Q1？Q2？", "Q1；另外，Q2", "Q1? And Q2?", "Q1; also Q2"
_ZH_JOINER = re.compile(r"^(另外|此外|还有|還有|以及|并且|並且|同时|同時|那么|那麼|而且|再问|再問)[，,、]?")
_EN_JOINER = re.compile(r"^(and also|and|also|plus|additionally|besides)[, ]+", re.I)
_SENTENCE_SPLIT = re.compile(r"(?<=[？?])\s*(?=\S)|[；;]\s*")
# "How many days …, and how many weeks …?"
_EN_CLAUSE_AND = re.compile(r",?\s+and\s+(?=(?:(?:at|in|on|for|by|from|to|with|since|until)\s+)?"
                            r"(?:what|who|whom|whose|when|where|which|why|how)\b)", re.I)

# -- coordinated items in one frame -----------------------------------------------------------------
_ZH_CONJ = r"以及|和|与|與|跟|、"  # not 及: 埃及, 奈及利亞, 及第
# a coordinated item ends where the shared frame starts
_ZH_ITEM_END = re.compile(r"的|之间|之間|所|相比|比较|比較|比起|分别|分別|各|都|是|有|在|为|為|之")
_ZH_DISTRIBUTIVE = re.compile(r"^(的)?(分别|分別|各自|各是|各为|各為|各有|各)")
# a comparison ends the question: "…有什么区别", "…相比，有什么不同", "…的差异在哪儿"
_ZH_COMPARE = re.compile(
    r"(之间|之間)?(的)?(相比|比较|比較|比起来|比起來)?[，,]?(有什么|有什麼|有何|是什么|是什麼)?"
    r"(区别|區別|不同|差异|差異|异同|異同|差别|差別|(?<=的)分别|(?<=的)分別|两样|兩樣)"
    r"(是什么|是什麼|在哪里|在哪裡|在哪儿|在哪兒|在哪|有哪些|是哪些)?$")
_ZH_LEAD = re.compile(r"^(请问|請問|在|对于|對於|关于|關於|从|從)")
_ZH_RANGE_AFTER = re.compile(r"^(之间|之間|间|間|期间|期間|之内|之內|以来|以來|两年|兩年|至|到)")
# parallel fillers of one frame: years, dates, ordinals, numbered items
_ZH_FILLER = re.compile(r"\d{1,4}(?:年|月|日|号|號|届|屆|季度|季|期|版|代)"
                        r"|第[一二三四五六七八九十百\d]+[条條章节節届屆季期次]|[一二三四五六七八九十]+月")
_EN_COMPARE = re.compile(r"^(?:please\s+)?compare\s+(?P<a>.+?)\s+(?:and|with|to|versus|vs\.?)\s+(?P<b>.+?)[?.!]?$"
                         r"|^what(?:'s| is| are)\s+the\s+differences?\s+between\s+(?P<c>.+?)\s+and\s+(?P<d>.+?)[?.!]?$"
                         r"|^how\s+(?:does|do|did)\s+(?P<e>.+?)\s+differ\s+from\s+(?P<f>.+?)[?.!]?$",
                         re.I)
_EN_WHAT_ARE = re.compile(r"^(?P<w>what|who)\s+(?P<v>are|were|is|was)\s+(?P<a>[^,?]+?)\s+and\s+(?P<b>[^,?]+?)\s*\?$",
                          re.I)
_EN_RESPECTIVELY = re.compile(r"^(?P<pre>.*\b(?:of|for|in|at|by|between|do|does|did|are|were|is|was))\s+"
                              r"(?P<a>[^,?]+?)\s+and\s+(?P<b>[^,?]+?),?\s+(?:respectively|each)\s*"
                              r"(?P<tail>[^?]*)\?$", re.I)
_EN_NOT_ITEM = re.compile(r"\b(?:the same|both|between|together|combined)\b", re.I)


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def split_question(question: str) -> list[str]:
    """Self-contained part questions of ``question``, or ``[question]`` when it asks for one thing.

    Two questions in one ("…？…？", "…；另外，…", "… ? And …") come apart at their boundary; a shared
    frame with coordinated items ("A 和 B 分别是…", "2022年和2023年春节档…", "compare X and Y") is
    repeated once per item. Only explicit signs split: a bare 和/and never does.
    """
    text = question.strip()
    if not text:
        return [question]
    parts = _split_sentences(text) or _split_clauses(text)
    if not parts:
        parts = _split_items_zh(text) if is_chinese(text) else _split_items_en(text)
    parts = [p for p in (parts or []) if p]
    if len(parts) < 2:
        return [question]
    # a part that is itself a coordination ("A和B分别…；另外，C？") splits once more
    out: list[str] = []
    for p in parts:
        sub = (_split_items_zh(p) if is_chinese(p) else _split_items_en(p)) or [p]
        out.extend(sub)
    return list(dict.fromkeys(out))[:MAX_PARTS]


def _asks(text: str) -> bool:
    """Whether ``text`` reads as a question of its own (a question word, or it ends in a question mark)."""
    core = text.strip()
    if is_chinese(core):
        return bool(_ZH_QWORD.search(core))
    return bool(_EN_QWORD.search(core)) or core.endswith("?")


def _finish(part: str, zh: bool, whole: str = "") -> str:
    """A part as a sentence of its own; a Chinese part ends in ？ unless the question did not."""
    part = part.strip(" ，,；;、")
    if zh:
        part = _ZH_JOINER.sub("", part).strip(" ，,")
        if whole and not whole.rstrip().endswith(("？", "?")):
            return part
        return part if part.endswith(("？", "?")) else part.rstrip("。.") + "？"
    part = _EN_JOINER.sub("", part).strip(" ,")
    part = part[:1].upper() + part[1:]
    return part if part.endswith("?") else part.rstrip(".") + "?"


def _split_sentences(text: str) -> list[str] | None:
    """"Q1？Q2？" / "Q1；另外，Q2": each piece must be a question of its own."""
    masked = _mask(text)
    cuts = [0, *[m.end() for m in _SENTENCE_SPLIT.finditer(masked)], len(text)]
    pieces = [text[a:b] for a, b in zip(cuts, cuts[1:]) if text[a:b].strip(" ，,；;")]
    if len(pieces) < 2:
        return None
    zh = is_chinese(text)
    joined = [bool((_ZH_JOINER if zh else _EN_JOINER).match(p.strip(" ，,"))) for p in pieces]
    # a piece asks when it ends in ？ or holds a question word; after "；另外，" the first piece may be a
    # DRCD-style fill-in ("…的目的為；另外，…是誰？")
    # after a bare "；" the next piece may be context of the same question ("…攻入哪裡；鄭成功奉敕南下勤王?"):
    # it must hold a question word of its own
    asks = [(p.rstrip().endswith(("？", "?")) and (i == 0 or pieces[i - 1].rstrip().endswith(("？", "?"))
                                                   or joined[i]))
            or _asks(p) or (i + 1 < len(pieces) and joined[i + 1]) for i, p in enumerate(pieces)]
    parts = [_finish(p, zh) for p in pieces]
    if all(len(p) >= MIN_PART_CHARS for p in parts) and all(asks):
        return parts
    return None


def _split_clauses(text: str) -> list[str] | None:
    """"Who chaired …, and when …?" / "谁主持了会议，另外…是什么时候？": two clauses, each asking.

    A bare Chinese comma never splits: "北朝幾個朝代中，哪個朝代…" and "…，為未來幾年…" ask once."""
    if is_chinese(text):
        # not 还有: "除了A、B，还有哪一篇？" asks once
        m = re.search(r"[，,]\s*(另外|此外|并且|並且|同时|同時|而且)[，,]?", _mask(text))
        if m is None:
            return None
        pieces = [text[: m.start()], text[m.end():]]
        if not all(_ZH_QWORD.search(_mask(p)) for p in pieces):
            return None
        parts = [_finish(p, True) for p in pieces]
    else:
        if not _EN_QWORD.search(text):
            return None
        pieces = _EN_CLAUSE_AND.split(text)
        if len(pieces) < 2:
            return None
        parts = [_finish(p, False) for p in pieces]
    if all(len(p) >= MIN_PART_CHARS for p in parts):
        return parts
    return None


_BRACKETS = re.compile(r"《[^》]*》|「[^」]*」|『[^』]*』|“[^”]*”|\"[^\"]*\"|（[^）]*）|\([^)]*\)")


def _mask(text: str) -> str:
    """``text`` with the inside of titles, quotes and brackets blanked (same length), so that a 的, 和 or
    ？ inside 《…》 is not read as the question's own."""
    return _BRACKETS.sub(lambda m: m.group(0)[0] + "\ue000" * (len(m.group(0)) - 2) + m.group(0)[-1], text)


def _conjunctions(masked: str) -> list[re.Match[str]]:
    """和/与/跟/以及/、 used as conjunctions: not inside 共和国, 和平, 参与, 跟随, …"""
    out = []
    for m in re.finditer(_ZH_CONJ, masked):
        before, after = masked[m.start() - 1: m.start()], masked[m.end(): m.end() + 1]
        word = m.group(0)
        if word == "和" and (before in _HE_BEFORE or after in _HE_AFTER):
            continue
        if word in ("与", "與") and (before in "参參赋賦授给給" or after in "会會其"):
            continue
        if word == "跟" and (before in "脚腳高后後" or after in "随隨踪蹤进進着著"):
            continue
        out.append(m)
    return out


_TRADITIONAL = re.compile("[麼們這個為與區別國時對說從會後裡體點學關樣發經過還長開問動當實現張義應]")
_HE_BEFORE = set("共温溫暖柔祥缓緩谦謙随隨附总總调調混应應讲講议議饱飽人平太保和中")
_HE_AFTER = set("平谐諧尚睦蔼藹约約解好服田煦弦声聲美氏善气氣畅暢顺順蔼")


def _split_items_zh(text: str) -> list[str] | None:
    """Coordinated items in one frame, split only with 分别/各, a comparison, or parallel fillers."""
    body = text.rstrip("？?。. ")
    masked = _mask(body)
    for conj in _conjunctions(masked):
        left_text, rest = body[: conj.start()], body[conj.end():]
        # parallel fillers: "2022年和2023年春节档…", "第一条、第二条和第三条的内容…"
        lf = _ZH_FILLER.search(left_text)
        if lf and lf.end() == len(left_text):
            items, after = _fillers(left_text[lf.start():], rest)
            marked = re.search(r"分别|分別|各自", after)
            # without 分别, only a short noun frame: "在1828年與1832年美國國會通過…，…?" asks once
            if items and not _ZH_RANGE_AFTER.match(after) and after.strip() and (marked or "，" not in after):
                prefix = left_text[: lf.start()]
                suffix = re.sub(r"分别|分別|各自", "", after)
                return [_finish(prefix + item + suffix, True, text) for item in items]
            continue
        # plain items: "A、B和C" up to where the shared frame starts
        end = _ZH_ITEM_END.search(masked, conj.end())
        if end is None:
            continue
        clause_start = max(masked.rfind(c, 0, conj.start()) for c in "，,：:") + 1
        lead = _ZH_LEAD.match(masked, clause_start)
        first = lead.end() if lead else clause_start
        cuts = [m for m in _conjunctions(masked) if first <= m.start() and m.end() <= end.start()]
        bounds = [first, *[x for m in cuts for x in (m.start(), m.end())], end.start()]
        items = [body[bounds[i]: bounds[i + 1]].strip() for i in range(0, len(bounds), 2)]
        prefix, after = body[:first], body[end.start():]
        if len(items) < 2 or not all(0 < len(i) <= MAX_ITEM_CHARS and not re.search(r"[，,；;：:。]", i)
                                     for i in items) or re.search(r"[；;]", after):
            return None
        if any(_ZH_QWORD.search(_mask(i)) for i in items) or re.match(r"(其他|其它|别的|別的|其余|其餘)", items[-1]):
            return None  # "哪一種模特兒與展示的…", "A 与其他 B 不同的是…": one question
        # "某公司的男员工和女员工的…": the left item's "…的" is shared by every item
        if "的" in _mask(items[0]):
            cut = _mask(items[0]).rindex("的") + 1
            prefix, items[0] = prefix + items[0][:cut], items[0][cut:]
            if not items[0]:
                return None
        compare = _ZH_COMPARE.search(after)
        if compare and not _ZH_QWORD.search(_mask(after[: compare.start()])):
            frame = after[: compare.start()] + ("有什麼特點" if _TRADITIONAL.search(text) else "有什么特点")
            return [_finish(prefix + item + frame, True, text) for item in items]
        dist = re.search(r"分别|分別|各自|各是|各为|各為|各有|^各", after)
        # the marker may follow a short shared frame: "男子和女子的平均年收入分别是多少"
        if dist and not re.search(r"[，,；;]", after[: dist.start()]):
            suffix = after[: dist.start()] + after[dist.end():]
            if dist.group(0) in ("各是", "各为", "各為", "各有"):
                suffix = after[: dist.start()] + dist.group(0)[1] + after[dist.end():]
            return [_finish(prefix + item + suffix, True, text) for item in items]
        return None
    return None


def _fillers(first: str, rest: str) -> tuple[list[str], str]:
    """``first`` and the fillers of the same kind that follow, joined by 和/与/、 … and the shared rest."""
    items = [first]
    while True:
        m = _ZH_FILLER.match(rest)
        if m is None:
            return ([], rest) if len(items) < 2 or not rest else (items, rest)
        items.append(m.group(0))
        rest = rest[m.end():]
        joiner = re.match(_ZH_CONJ, rest)
        if joiner is None:
            return items, rest
        rest = rest[joiner.end():]


def _split_items_en(text: str) -> list[str] | None:
    """"compare X and Y", "What are X and Y?", "the population of X and Y respectively"."""
    body = text.strip()
    m = _EN_COMPARE.match(body)
    if m:
        a, b = [g for g in m.groups() if g]
        if _EN_NOT_ITEM.search(a + " " + b):
            return None
        return [_finish(f"What is {x.strip()}", False) for x in (a, b)]
    m = _EN_RESPECTIVELY.match(body)
    if m:
        pre, tail = m.group("pre"), m.group("tail")
        return [_finish(f"{pre} {x.strip()} {tail}".strip(), False) for x in (m.group("a"), m.group("b"))]
    m = _EN_WHAT_ARE.match(body)
    if m and m.group("v").lower() in ("are", "were"):
        a, b = m.group("a").strip(), m.group("b").strip()
        # "What are the rules for salt and pepper?" is one thing; "What are X and Y?" two short names
        if len(a.split()) > 5 or len(b.split()) > 5 or re.search(r"\b(of|for|in|on|at|with|between)\b", a + " " + b):
            return None
        # only names ("FAISS and Milvus", "Form W-2 and Form 1099"), never common nouns ("salt and pepper")
        if _EN_NOT_ITEM.search(a + " " + b) or not all(re.search(r"[A-Z0-9]", x) for x in (a, b)):
            return None
        verb = "is" if m.group("v").lower() == "are" else "was"
        return [_finish(f"{m.group('w')} {verb} {x}", False) for x in (a, b)]
    return None


# -- retrieval --------------------------------------------------------------------------------------

SearchFn = Callable[[str, int], list[Source]]


class PartSources(NamedTuple):
    """What ``retrieve_parts`` found: the merged sources, the part questions (``[question]`` for a
    single part) and, for each source, the index of the part it serves (for labels in the prompt)."""

    sources: list[Source]
    parts: list[str]
    serves: list[int]


def retrieve_parts(search: SearchFn, question: str, k: int, *,
                   parts: Sequence[str] | None = None) -> PartSources:
    """Sources for ``question``, searched per part when it asks for several things.

    A single-part question is searched once, unchanged. Otherwise each part is searched for ``k``
    sources and the lists are merged round-robin by rank (every part's best source first), dropping
    chunks already taken, up to ``k + len(parts) - 1`` sources: every part keeps at least its best one
    even when ``k`` is smaller than the number of parts. Each source keeps its own relevance score
    (from its part's search), so the relevance gate and the strength badges mean what they meant.
    """
    parts = list(parts) if parts is not None else split_question(question)
    if len(parts) < 2:
        found = search(question, k)
        return PartSources(found, [question], [0] * len(found))
    limit = k + len(parts) - 1
    ranked = [search(p, k) for p in parts]
    sources: list[Source] = []
    serves: list[int] = []
    seen: set[int] = set()
    for rank in range(max(len(r) for r in ranked)):
        for part, found in enumerate(ranked):
            if rank < len(found) and found[rank].id not in seen and len(sources) < limit:
                seen.add(found[rank].id)
                sources.append(found[rank])
                serves.append(part)
    return PartSources(sources, parts, serves)


def parts_hint(question: str, parts: Sequence[str], serves: Sequence[int] = ()) -> str:
    """An instruction to append to the user message of a multi-part question ("" for one part): answer
    every part, and say which part the documents do not answer, in the question's language.

    With ``serves`` (``retrieve_parts``'s, cut to the sources actually packed: packing keeps their order
    and drops only from the end) each part names its source numbers, "1) A是什么？（资料[1][3]）", so a
    small model looks for each part's answer where it is."""
    if len(parts) < 2:
        return ""
    zh = is_chinese(question)
    listed = []
    for i, part in enumerate(parts):
        numbers = "".join(f"[{n}]" for n, p in enumerate(serves, 1) if p == i)
        where = (f"（资料{numbers}）" if zh else f" (sources {numbers})") if numbers else ""
        listed.append(f"{i + 1}) {part}{where}")
    if zh:
        return f"这个问题有{len(parts)}个部分，请逐一回答：{' '.join(listed)}。资料没有回答的部分，请说明是哪一部分。"
    return (f"This question has {len(parts)} parts; answer each part: {' '.join(listed)}. If the documents "
            "do not answer a part, say which part.")
