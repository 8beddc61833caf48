"""Encoding detection round-trips on awkward text."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from ingest import IngestError, decode_bytes, read_text

CHINESE = "人工智能是计算机科学的一个分支。我们今天讨论数据和文件的处理问题，请大家准备好。"
TRADITIONAL = "這是一個測試文件，我們來看看繁體中文的處理。臺灣的朋友們好！"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("hello 世界 🎉".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "带BOM的文本".encode(), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "小端 UTF-16 text".encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + "大端 UTF-16 text".encode("utf-16-be"), "utf-16-be"),
        (codecs.BOM_UTF32_LE + "UTF-32 文本".encode("utf-32-le"), "utf-32-le"),
        ("plain utf-16 without a BOM, mostly ASCII".encode("utf-16-le"), "utf-16-le"),
        (CHINESE.encode("gb18030"), "gb18030"),
        (CHINESE.encode("gbk"), "gb18030"),
        ("今天天气很好，我们去公园。".encode("gbk"), "gb18030"),
        ("中文测试文件".encode("gb2312"), "gb18030"),
        (TRADITIONAL.encode("big5"), "big5"),
        ("繁體中文測試".encode("big5"), "big5"),
        ("Mixed 中英文 text，价格3.14元。".encode("gbk"), "gb18030"),
        ("Café déjà vu — naïve résumé".encode("cp1252"), None),
    ],
)
def test_decode_round_trip(data: bytes, expected: str | None) -> None:
    text, encoding = decode_bytes(data)
    original = data
    for bom in (codecs.BOM_UTF32_LE, codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if original.startswith(bom):
            original = original[len(bom) :]
            break
    if expected is not None:
        assert encoding == expected
        assert text == original.decode(expected.replace("-sig", ""))
    else:
        assert text == "Café déjà vu — naïve résumé"


def test_read_text_normalises_newlines(tmp_path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes("第一行\r\n第二行\rthird\n".encode("gbk"))
    assert read_text(path) == "第一行\n第二行\nthird\n"


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_empty_file(tmp_path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(IngestError, match="empty") as info:
        read_text(path)
    assert "empty.txt" in str(info.value)


def test_binary_file(tmp_path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(IngestError, match="binary"):
        read_text(path)


def test_too_large(tmp_path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000)
    with pytest.raises(IngestError, match="KB_MAX_FILE_MB") as info:
        read_text(path, max_bytes=1000)
    assert info.value.path == str(path)
    assert "\n" not in str(info.value)


def test_error_message_shape() -> None:
    err = IngestError("/x/report.pdf", "the PDF is corrupt", "re-save it")
    assert str(err) == "cannot index report.pdf: the PDF is corrupt — re-save it"
    assert (err.path, err.reason, err.hint) == ("/x/report.pdf", "the PDF is corrupt", "re-save it")


def _streamed(path: Path, block: int) -> str:
    from ingest.encoding import iter_text_blocks

    out = ""
    for offset, text in iter_text_blocks(path, block_bytes=block):
        assert offset == len(out)
        out += text
    return out


@pytest.mark.parametrize("encoding", ["gb18030", "big5", "utf-8"])
def test_streamed_file_is_judged_by_its_first_non_ascii_bytes_not_its_first_block(
    tmp_path: Path, encoding: str
) -> None:
    """A log whose first blocks are ASCII and whose Chinese comes later is read in the right encoding."""
    ascii_part = "".join(f"line {i}: ok\n" for i in range(400))  # ~5 kB, several blocks of 1 kB
    chinese = "\n\n".join(["員工每年享有十五天帶薪年假，請向人事部門申請。" if encoding == "big5"
                           else "员工每年享有十五天带薪年假，请向人事部门申请。"] * 40)
    path = tmp_path / "late.txt"
    path.write_bytes((ascii_part + chinese).encode(encoding))
    assert _streamed(path, 1024) == ascii_part + chinese


def test_streamed_file_that_changes_encoding_later_is_a_clear_error(tmp_path: Path) -> None:
    """UTF-8 Chinese first, GBK bytes after the first block: an error naming the offset, not U+FFFD."""
    first = "\n\n".join(["员工每年享有十五天带薪年假。"] * 60).encode("utf-8")
    path = tmp_path / "mixed.txt"
    path.write_bytes(first + b"\n\n" + "报销须在三十天内提交。".encode("gbk") * 20)
    with pytest.raises(IngestError, match=r"near offset [\d,]+ are not utf-8.*one encoding"):
        _streamed(path, 1024)
