"""Heading paths and tables survive parsing and chunking, for every structured format."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import HEADING_SEPARATOR, ChineseTextSplitter, Chunk, load_file, stream_text
from ingest.structure import TextBuilder, chinese_title_verdict, heading_rank, looks_like_heading
from tests.ingest.docgen import HANDBOOK, write_docx, write_html, write_long_markdown, write_markdown, write_pptx

LEAVE = "员工手册 > 第三章 休假 > 3.2 年假"
SICK = "员工手册 > 第三章 休假 > 3.3 病假"
DEVICES = "员工手册 > 第四章 设备"
TABLE = "| 型号 | 功率 | 价格 |\n| --- | --- | --- |\n| A 型 | 100W | 10元 |\n| B 型 | 200W | 20元 |"


def _chunks(path: Path, size: int = 400) -> list[Chunk]:
    return ChineseTextSplitter(chunk_size=size, chunk_overlap=0).split(load_file(path))


def _squeeze(text: str) -> str:
    return "".join(text.split()).replace("-", "")


def _by_heading(chunks: list[Chunk]) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in chunks:
        out[c.heading] = out.get(c.heading, "") + c.text
    return out


@pytest.mark.parametrize("writer,suffix", [(write_docx, "docx"), (write_html, "html"), (write_markdown, "md")])
def test_heading_paths_and_tables(tmp_path: Path, writer, suffix: str) -> None:  # noqa: ANN001
    chunks = _chunks(writer(tmp_path / f"handbook.{suffix}", HANDBOOK))
    by_heading = _by_heading(chunks)
    assert "带薪年假" in by_heading[LEAVE] and "病假" not in by_heading[LEAVE]  # never across a heading
    assert "医院证明" in by_heading[SICK]
    if suffix == "md":  # Markdown source is kept verbatim (# marks, its own table rule)
        assert _squeeze(TABLE) in _squeeze(by_heading[DEVICES])
    else:
        assert TABLE in by_heading[DEVICES]
        assert by_heading[LEAVE].startswith("3.2 年假")


def test_unstyled_docx_headings_found_by_numbering(tmp_path: Path) -> None:
    """Chinese documents often type headings as plain paragraphs: numbering places them, and a short
    first line is the document's title. A heading with nothing under it is no chunk of its own."""
    chunks = _chunks(write_docx(tmp_path / "plain.docx", HANDBOOK, styled=False))
    by_heading = _by_heading(chunks)
    assert set(by_heading) == {LEAVE, SICK, DEVICES}
    assert "带薪年假" in by_heading[LEAVE]
    assert TABLE in by_heading[DEVICES]


def test_pptx_slide_titles(tmp_path: Path) -> None:
    path = write_pptx(
        tmp_path / "deck.pptx",
        [("季度报告", ["收入增长 15%"], None), ("产品参数", [], [["型号", "功率"], ["B 型", "200W"]])],
    )
    by_heading = _by_heading(_chunks(path))
    assert "收入增长 15%" in by_heading["季度报告"]
    assert "| 型号 | 功率 |\n| --- | --- |\n| B 型 | 200W |" in by_heading["产品参数"]


def test_long_table_split_by_rows_with_header(tmp_path: Path) -> None:
    rows = [["型号", "功率", "价格"]] + [[f"X{i:03d} 型", f"{i * 10}W", f"{i}元"] for i in range(60)]
    chunks = _chunks(write_docx(tmp_path / "table.docx", [("heading", 1, "第一章 参数"), ("table", rows)]), 120)
    table_chunks = [c for c in chunks if "| --- |" in c.text]
    assert len(table_chunks) > 5
    seen = []
    for c in table_chunks:
        lines = c.text.split("\n")
        assert lines[:2] == ["| 型号 | 功率 | 价格 |", "| --- | --- | --- |"]  # header repeated
        assert all(line.startswith("| X") and line.endswith("元 |") for line in lines[2:])  # whole rows
        assert len(c.text) <= 120
        seen += lines[2:]
    assert seen == [f"| X{i:03d} 型 | {i * 10}W | {i}元 |" for i in range(60)]  # every row once, in order


def test_xlsx_rows_keep_header_value_pairs(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "价格表"
    sheet.append(["型号", "功率"])
    for i in range(50):
        sheet.append([f"M{i}", f"{i}W"])
    book.save(tmp_path / "p.xlsx")
    chunks = _chunks(tmp_path / "p.xlsx", 100)
    assert len(chunks) > 3 and {c.heading for c in chunks} == {"价格表"}
    rows = [line for c in chunks for line in c.text.split("\n") if line != "价格表"]
    assert rows == [f"型号: M{i}; 功率: {i}W" for i in range(50)]


def test_chinese_heading_rules() -> None:
    assert heading_rank("第三章 休假") == 2 and heading_rank("第二节 年假") == 3
    assert heading_rank("3.2 年假") == 5 and heading_rank("一、适用范围") == 4
    assert looks_like_heading("（二）报销标准")
    assert not looks_like_heading("3.2 年假应当在当年休完。")
    assert chinese_title_verdict("员工出差应当提前三天提交申请，经部门负责人批准后方可出行") is False
    assert chinese_title_verdict("附则") is True and chinese_title_verdict("Travel policy") is None


def test_unstructured_classifier_corrected_on_chinese() -> None:
    """unstructured calls "第四章 出差" narrative text and an unpunctuated sentence a Title."""
    pytest.importorskip("unstructured")
    from ingest.elements import configure_unstructured
    from ingest.office import build_from_elements

    configure_unstructured()
    from unstructured.partition.text import partition_text

    text = "第四章 出差\n\n员工出差应当提前三天提交申请，经部门负责人批准后方可出行\n\n4.1 交通\n\n乘坐高铁二等座。"
    elements = partition_text(text=text)
    assert [type(e).__name__ for e in elements][:2] == ["NarrativeText", "Title"]  # what it gets wrong
    builder = TextBuilder()
    build_from_elements(elements, builder)
    full = builder.text()
    paths = {full[s.start : s.end]: s.headings for s in builder.sections}
    assert paths == {
        "第四章 出差\n\n员工出差应当提前三天提交申请，经部门负责人批准后方可出行": ("第四章 出差",),
        "4.1 交通\n\n乘坐高铁二等座。": ("第四章 出差", "4.1 交通"),
    }


@pytest.mark.parametrize("fmt", ["odt", "rtf", "epub"])
def test_pandoc_formats_through_unstructured(tmp_path: Path, fmt: str) -> None:
    """odt, rtf and epub (written here by pandoc itself) keep their heading paths and tables."""
    pypandoc = pytest.importorskip("pypandoc")
    pytest.importorskip("unstructured")
    source = write_markdown(tmp_path / "handbook.md", HANDBOOK).read_text(encoding="utf-8")
    path = tmp_path / f"handbook.{fmt}"
    pypandoc.convert_text(source, fmt, format="md", outputfile=str(path), extra_args=["--standalone"])
    by_heading = _by_heading(_chunks(path))
    assert by_heading[LEAVE].startswith("3.2 年假") and "带薪年假" in by_heading[LEAVE]
    assert TABLE in by_heading[DEVICES]


def test_bad_structured_input(tmp_path: Path) -> None:
    """A deck of pictures only is one clear line; a 50,000-row table is split between rows, none lost."""
    from PIL import Image

    from ingest import IngestError

    picture = tmp_path / "p.png"
    Image.new("RGB", (50, 50), "red").save(picture)
    import pptx

    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[6]).shapes.add_picture(str(picture), 0, 0)
    deck.save(str(tmp_path / "pictures.pptx"))
    with pytest.raises(IngestError, match="no text to index"):
        load_file(tmp_path / "pictures.pptx")

    rows = "\n".join(f"R{i},{i * 3}" for i in range(50_000))
    (tmp_path / "big.csv").write_text("编号,数量\n" + rows, encoding="utf-8")
    chunks = _chunks(tmp_path / "big.csv", 500)
    lines = [line for c in chunks for line in c.text.split("\n")]
    assert len(lines) == 50_000 and lines[-1] == "编号: R49999; 数量: 149997"
    assert max(len(c.text) for c in chunks) <= 500


def test_sections_of_a_text_layer_kept_as_is() -> None:
    """PDF pages without an outline: numbered Chinese heading lines give paths across pages, the text
    is not touched, English numbered lines (list items) are left alone."""
    builder = TextBuilder()
    page1 = "规章制度汇编\n第一章 总则\n本制度适用于全体员工。\n1. Connect the cable\n第二章 休假\n"
    page2 = "2.1 年假\n员工每年享有五天带薪年假。\n2.2 病假\n需提供医院证明。\n"
    first, second = builder.sections_of(page1), builder.sections_of(page2)
    assert [(page1[s.start : s.end], s.headings) for s in first] == [
        ("规章制度汇编\n", ()),
        ("第一章 总则\n本制度适用于全体员工。\n1. Connect the cable\n", ("第一章 总则",)),
    ]  # "第二章 休假" alone at the page end is no section, but heads the next page
    assert [(page2[s.start : s.end], s.headings) for s in second] == [
        ("2.1 年假\n员工每年享有五天带薪年假。\n", ("第二章 休假", "2.1 年假")),
        ("2.2 病假\n需提供医院证明。\n", ("第二章 休假", "2.2 病假")),
    ]


def test_streamed_markdown_keeps_heading_paths_across_blocks(tmp_path: Path) -> None:
    path = write_long_markdown(tmp_path / "long.md")
    (whole,) = load_file(path)
    splitter = ChineseTextSplitter(chunk_size=120, chunk_overlap=0)

    def path_at(pos: int) -> str:
        (section,) = [s for s in whole.sections if s.start <= pos < s.end]
        return HEADING_SEPARATOR.join(section.headings)

    blocks = list(stream_text(path, block_bytes=2048))
    assert len(blocks) > 20  # headings and code fences open across many block boundaries
    headings = set()
    for offset, doc in blocks:
        for chunk in splitter.split_document(doc):
            assert chunk.heading == path_at(offset + chunk.start), chunk.text
            headings.add(chunk.heading)
    assert "员工手册 > 第5章 制度5 > 5.3 条款" in headings
    assert not any("注释" in h for h in headings)  # "# ..." lines inside a code fence are no headings
