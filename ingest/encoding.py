"""Turn a text file's bytes into str by detecting the encoding (BOM, UTF-8, then a CJK-aware detector)."""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator

from ingest.errors import IngestError, missing_package

DEFAULT_MAX_BYTES = 200 * 1024 * 1024

_BOMS = (  # UTF-32 first: its LE BOM starts with the UTF-16 LE BOM
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Legacy encodings worth considering; anything else is more likely a wrong guess than a real file.
_CANDIDATES = ["gb18030", "big5", "cp950", "shift_jis", "euc_kr", "cp1252", "latin_1"]

# Frequent Chinese characters, simplified and traditional. A correct GBK/Big5 decode of real text
# is mostly made of these; decoding with the wrong one of the two yields rare characters instead,
# which detectors often accept for short texts.
_FREQUENT_HANZI = frozenset(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后"
    "小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知"
    "民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新"
    "什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别"
    "处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受"
    "光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃"
    "义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必"
    "城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越"
    "史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视"
    "济喜离虽坏兴按线欢拉列伤曾古乎今天气好午晚朋友们公园吗吧啊请谢您需求系统数据文件用户问题服务产品价格"
    "們個這來說為時國會對學發經過後頭還沒現開樣關長問間點從動將兩實種與體氣當進機話見無電車東軍員門書師記邊"
    "風張難題業麼愛讓認結論義術帶條變聯權運達遠區號畫處總場報馬統價聽寫買賣錢黨視覺親導愛務歡樂語讀識齊語萬"
    "韓華灣臺台灣歲參與間隊際滿傳錄雖壞興線標準網專頁設計據檔案資訊請謝您們"
)
_GOOD_PUNCT = frozenset("，。、；：？！“”‘’（）《》「」『』【】…—·　")


def resolve_max_bytes(max_bytes: int | None) -> int:
    """The size limit to apply: the argument, else ``KB_MAX_FILE_MB`` from the environment, else 200 MB."""
    if max_bytes is not None:
        return max_bytes
    env = os.environ.get("KB_MAX_FILE_MB", "").strip()
    return int(float(env) * 1024 * 1024) if env else DEFAULT_MAX_BYTES


def read_text(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> str:
    """Read a text file, detecting its encoding; newlines come back as ``\\n``."""
    return decode_bytes(read_bytes(path, max_bytes=max_bytes), path=path)[0]


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> bytes:
    """Read a file's bytes, refusing missing, empty or over-large files with an IngestError."""
    check_size(path, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise IngestError(path, f"the file cannot be read ({exc.strerror or exc})", "check the path") from exc
    if not data:
        raise IngestError(path, "the file is empty", "add some text to it or leave it out")
    return data


def check_size(path: str | os.PathLike[str], max_bytes: int | None) -> int:
    """Refuse a file above the size limit before any of it is read; returns its size."""
    limit = resolve_max_bytes(max_bytes)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise IngestError(path, f"the file cannot be read ({exc.strerror or exc})", "check the path") from exc
    if size > limit:
        raise IngestError(
            path,
            f"the file is {size / 1024 / 1024:.1f} MB, above the {limit / 1024 / 1024:.1f} MB limit",
            "split the file into smaller parts, or raise KB_MAX_FILE_MB",
        )
    return size


def decode_bytes(data: bytes, *, path: str | os.PathLike[str] = "<bytes>") -> tuple[str, str]:
    """Decode ``data``, returning ``(text, encoding name)``.

    Order: BOM, UTF-16 without BOM (NUL byte pattern), strict UTF-8, then the best of a few
    legacy encodings, with a frequent-character tie-break between GB18030 and Big5.
    """
    text, encoding = _decode(data, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise IngestError(path, "the file is empty", "add some text to it or leave it out")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\f\v")
    if controls > max(2, len(text) // 20):
        raise _binary(path)
    return text, encoding


def _binary(path: str | os.PathLike[str]) -> IngestError:
    return IngestError(
        path, "the file looks binary, not text", "convert it to a supported document format or leave it out"
    )


def _decode(data: bytes, path: str | os.PathLike[str]) -> tuple[str, str]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding.removesuffix("-sig")), encoding
            except UnicodeDecodeError:
                break  # a BOM followed by garbage: fall through to the other checks
    if b"\x00" in data:
        utf16 = _utf16_without_bom(data)
        if utf16:
            try:
                return data.decode(utf16), utf16
            except UnicodeDecodeError:
                pass
        raise _binary(path)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    chinese = _best_chinese(data)
    if chinese is not None:
        return chinese
    return _detect(data, path)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text in a Latin/CJK mix has NULs concentrated on one byte parity; binary does not."""
    if len(data) < 2 or len(data) % 2:
        return None
    even = data[0::2].count(0)
    odd = data[1::2].count(0)
    half = len(data) // 2
    if odd > half * 0.3 and even < odd * 0.1:
        return "utf-16-le"
    if even > half * 0.3 and odd < even * 0.1:
        return "utf-16-be"
    return None


def chinese_score(text: str) -> float:
    """Share of non-ASCII characters that are frequent hanzi or CJK punctuation (0 if a U+FFFD is present)."""
    if "\ufffd" in text:
        return 0.0
    wide = [ch for ch in text if ord(ch) > 127]
    if not wide:
        return 0.0
    good = sum(1 for ch in wide if ch in _FREQUENT_HANZI or ch in _GOOD_PUNCT)
    return good / len(wide)


def _best_chinese(data: bytes) -> tuple[str, str] | None:
    """Decode with GB18030 and Big5 (cp950); keep the one that reads as real Chinese, if either does."""
    scored = []
    for rank, encoding in enumerate(("gb18030", "cp950")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        scored.append((chinese_score(text), -rank, text, "big5" if encoding == "cp950" else encoding))
    if not scored:
        return None
    score, _, text, encoding = max(scored)
    return (text, encoding) if score >= 0.5 else None


def _detect(data: bytes, path: str | os.PathLike[str]) -> tuple[str, str]:
    try:
        from charset_normalizer import from_bytes
    except ImportError as exc:
        raise missing_package(path, "charset_normalizer", "charset-normalizer") from exc
    best = from_bytes(data, cp_isolation=_CANDIDATES).best()
    if best is None:
        raise IngestError(
            path, "the text encoding could not be detected", "re-save the file as UTF-8 and index it again"
        )
    return str(best), best.encoding


STREAM_BLOCK_BYTES = 4 * 1024 * 1024


def iter_text_blocks(
    path: str | os.PathLike[str], *, block_bytes: int = STREAM_BLOCK_BYTES
) -> Iterator[tuple[int, str]]:
    """Stream a text file as ``(offset, text)`` blocks of about ``block_bytes``, for files too large to
    hold whole. Blocks end on a paragraph (else line) break where there is one; ``offset`` is the
    block's character position in the whole decoded text (newlines normalised, as ``read_text``),
    so offsets stay exact relative to the file. The encoding is detected from the first block that
    is not pure ASCII (ASCII reads the same in every candidate, so a file whose first 4 MB are ASCII
    is judged by its first non-ASCII bytes) and confirmed on every block after: bytes that are not in
    that encoding end the stream with an IngestError naming their offset, never silent U+FFFD.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in the finally below (a generator)
    except OSError as exc:
        raise IngestError(path, f"the file cannot be read ({exc.strerror or exc})", "check the path") from exc
    try:
        head = f.read(block_bytes)
        if not head:
            raise IngestError(path, "the file is empty", "add some text to it or leave it out")
        encoding, skip = _detect_head(head, path)
        undecided = head.isascii()  # nothing but ASCII yet: any ASCII-compatible encoding reads it
        decoder = codecs.getincrementaldecoder(encoding)()
        offset, carry, data, position = 0, "", head[skip:], skip
        while True:
            final = not data
            if undecided and not data.isascii():
                encoding = _detect_head(data, path)[0]
                decoder, undecided = codecs.getincrementaldecoder(encoding)(), False
            text = carry + _decode_block(decoder, data, final, encoding, position, path)
            position += len(data)
            if not final and text.endswith("\r"):  # "\r\n" may straddle the blocks
                text, held = text[:-1], "\r"
            else:
                held = ""
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if final:
                if text:
                    yield offset, text
                return
            cut = _block_end(text, block_bytes // 4)
            if cut:
                yield offset, text[:cut]
                offset += cut
            carry = text[cut:] + held
            data = f.read(block_bytes)
    finally:
        f.close()


def _decode_block(
    decoder: codecs.IncrementalDecoder, data: bytes, final: bool, encoding: str, position: int,
    path: str | os.PathLike[str],
) -> str:
    """One block through the stream's decoder; bytes the encoding cannot read are a clear error."""
    try:
        return str(decoder.decode(data, final=final))
    except UnicodeDecodeError as exc:
        raise IngestError(
            path, f"the bytes near offset {position + exc.start:,} are not {encoding}, the encoding read from "
            "earlier in the file (the file mixes encodings)", "re-save the whole file in one encoding, e.g. UTF-8",
        ) from None


def _block_end(text: str, min_chars: int) -> int:
    """Where to end a streamed block: after the last blank line, else line break, in ``text``;
    0 (carry everything over) when the text is still short or has neither."""
    if len(text) < min_chars:
        return 0
    for sep in ("\n\n", "\n"):
        at = text.rfind(sep)
        if at > 0:
            return at + len(sep)
    return len(text) if len(text) > 4 * min_chars else 0  # one huge line: cut anyway, bounded


def _detect_head(head: bytes, path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(encoding, BOM length)`` from the first block, as ``decode_bytes`` would decide for the whole
    file; a multi-byte character cut at the block's end is tolerated."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding.removesuffix("-sig"), len(bom)
    if b"\x00" in head:
        utf16 = _utf16_without_bom(head[: len(head) // 2 * 2])
        if utf16:
            return utf16, 0
        raise _binary(path)
    trims = [head[: len(head) - t] for t in range(4) if len(head) > t]
    for sample in trims:
        try:
            sample.decode("utf-8")
            return "utf-8", 0
        except UnicodeDecodeError:
            continue
    for sample in trims:
        chinese = _best_chinese(sample)
        if chinese is not None:
            return ("cp950" if chinese[1] == "big5" else chinese[1]), 0
    return _detect(head, path)[1], 0
