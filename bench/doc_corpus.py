"""A structured corpus for bench_documents.py: 42 documents (docx handbooks, pptx product decks, xlsx price
lists, English PDF manuals with an outline, scanned Chinese notices) and 100+ questions whose answer sits
under a specific heading or in a table cell. Deterministic (seeded): every run builds the same files.

Built so the question's discriminating words (company, product line, manual) appear only in a heading
or a table header, as in real documents, while the body text repeats across documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tests.ingest.docgen import write_docx, write_pptx, write_scanned_pdf
from tests.ingest.pdfgen import pdf_from_streams


@dataclass(frozen=True)
class Question:
    text: str
    gold: str  # the answer string a retrieved chunk must contain
    file: str  # the file name it must come from
    kind: str  # heading | table
    fmt: str


COMPANIES = ["星河科技", "蓝海物流", "青松食品", "远航教育", "金石建材", "云帆传媒", "北辰医疗", "东方纺织",
             "南山电子", "锦程旅游", "华彩印务", "天工机械"]  # fmt: skip
SERIES = ["空气净化器", "扫地机器人", "电热水壶", "除湿机", "加湿器", "电风扇", "取暖器", "吸尘器"]
SHOPS = ["文具", "五金", "茶叶", "厨具", "灯具", "玩具", "箱包", "花卉"]
DEPTS = ["行政部", "财务部", "人事部", "研发部", "市场部", "采购部"]

FILLER = [
    "本制度适用于公司全体正式员工及试用期员工，劳务派遣人员参照执行。",
    "各部门负责人应当组织本部门员工学习本制度，并监督执行情况。",
    "员工应当遵守国家法律法规和公司各项规章制度，恪守职业道德。",
    "本制度由人力资源部负责解释，自发布之日起施行，原有规定同时废止。",
    "员工如对本制度有疑问，可通过内部邮件向人力资源部咨询。",
    "公司根据经营情况对本制度进行修订，修订后的版本在内部网站公布。",
]


def _filler(rng: random.Random, n: int) -> str:
    return "".join(rng.sample(FILLER, n))


def handbook(rng: random.Random, company: str, styled: bool, path: Path) -> list[Question]:
    days, pct, hotel = rng.randint(5, 25), rng.choice([60, 70, 75, 80, 85, 90]), rng.choice(range(260, 900, 20))
    start, fare = rng.choice(["八点", "八点半", "九点"]), rng.choice(["二等座", "一等座"])
    blocks = [
        ("heading", 0, f"{company}员工手册"),
        ("heading", 1, "第一章 总则"), ("para", _filler(rng, 3)), ("para", _filler(rng, 2)),
        ("heading", 1, "第二章 考勤"),
        ("heading", 2, "2.1 工作时间"), ("para", f"每天上午{start}上班，午休一小时。" + _filler(rng, 2)),
        ("heading", 2, "2.2 迟到与早退"), ("para", "迟到或早退三十分钟以内的，按规定扣减绩效分。" + _filler(rng, 2)),
        ("heading", 1, "第三章 休假"),
        ("heading", 2, "3.1 法定节假日"), ("para", "法定节假日按国家规定执行。" + _filler(rng, 2)),
        ("heading", 2, "3.2 年假"), ("para", f"员工工作满一年后，每年享有{days}天带薪年假，年假应在当年度内休完。"),
        ("heading", 2, "3.3 病假"), ("para", f"病假期间工资按基本工资的百分之{pct}发放，需提供医院证明。"),
        ("heading", 1, "第四章 出差"),
        ("heading", 2, "4.1 交通"), ("para", f"出差乘坐高铁{fare}，需提前在系统中提交申请。"),
        ("heading", 2, "4.2 住宿"), ("para", f"出差住宿标准为每晚{hotel}元以内，超出部分由员工自行承担。"),
        ("heading", 1, "第五章 附则"), ("para", _filler(rng, 3)),
    ]  # fmt: skip
    write_docx(path, blocks, styled=styled)
    f = path.name
    return [
        Question(f"{company}员工手册规定的年假有几天？", f"{days}天", f, "heading", "docx"),
        Question(f"{company}员工病假期间工资怎么发？", f"百分之{pct}", f, "heading", "docx"),
        Question(f"{company}员工出差的住宿标准是多少？", f"{hotel}元", f, "heading", "docx"),
    ]


def deck(rng: random.Random, series: str, index: int, path: Path) -> list[Question]:
    prefix = "ABCDEFGH"[index] + "X"
    models = [f"{prefix}-{100 + 10 * k}" for k in range(24)]
    rows = [["型号", "额定功率", "噪音", "重量", "参考价格"]]
    for m in models:
        rows.append([m, f"{rng.randint(20, 300) * 10}W", f"{rng.randint(30, 65)}dB", f"{rng.randint(10, 99) / 10}kg",
                     f"{rng.randint(199, 3999)}元"])  # fmt: skip
    warranty = rng.randint(1, 6)
    slides: list[tuple[str, list[str], list[list[str]] | None]] = [
        (f"{series}产品介绍", ["面向家庭与办公场景", "全系支持智能控制"], None),
        (f"{series}规格参数", [], rows[:13]),
        (f"{series}规格参数（续）", [], [rows[0], *rows[13:]]),
        (f"{series}售后服务", [f"整机保修{warranty}年", "全国联保，上门服务"], None),
    ]
    write_pptx(path, slides)
    f = path.name
    picks = rng.sample(range(1, len(rows)), 2)
    return [Question(f"{series} {rows[i][0]} 的额定功率是多少？", rows[i][1], f, "table", "pptx") for i in picks] + [
        Question(f"{series}整机保修多久？", f"保修{warranty}年", f, "heading", "pptx")
    ]


def price_list(rng: random.Random, shop: str, index: int, path: Path) -> list[Question]:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = f"{shop}价格表"
    sheet.append(["商品编号", "商品名称", "单价", "库存"])
    rows = []
    for k in range(40):
        row = [f"{shop[0]}{index}{k:03d}", f"{shop}商品{k}", f"{rng.randint(5, 999)}元", str(rng.randint(0, 500))]
        sheet.append(row)
        rows.append(row)
    book.save(path)
    return [
        Question(f"编号 {rows[i][0]} 的商品单价是多少？", rows[i][2], path.name, "table", "xlsx")
        for i in rng.sample(range(40), 2)
    ]


def _pdf_page(lines: list[str]) -> bytes:
    body = " T* ".join("(" + line.replace("(", "\\(").replace(")", "\\)") + ") Tj" for line in lines)
    return f"BT /F1 11 Tf 14 TL 72 740 Td {body} ET".encode("latin-1")


def manual(rng: random.Random, index: int, path: Path) -> list[Question]:
    from pypdf import PdfReader, PdfWriter

    name = f"Model Z{index + 1}"
    months, years, volts = rng.randint(2, 12), rng.randint(1, 5), rng.choice([110, 220, 230, 240])
    generic = "Read all instructions before use. Keep this manual for future reference. " * 2
    pages = [
        ("1 Introduction", [f"{name} User Manual", "1 Introduction", "Thank you for choosing our product.", generic]),
        ("2 Installation", ["2 Installation", f"Connect the unit to a {volts} V outlet only.", generic]),
        ("3 Maintenance", ["3 Maintenance", f"Replace the filter every {months} months.", generic]),
        ("4 Warranty", ["4 Warranty", f"The warranty period is {years} years from purchase.", generic]),
        ("5 Troubleshooting", ["5 Troubleshooting", "If the unit does not start, check the fuse.", generic]),
    ]
    raw = path.with_suffix(".raw.pdf")
    raw.write_bytes(pdf_from_streams([_pdf_page(lines) for _, lines in pages]))
    writer = PdfWriter(clone_from=PdfReader(raw))
    top = writer.add_outline_item(f"{name} User Manual", 0)
    for number, (title, _) in enumerate(pages):
        writer.add_outline_item(title, number, parent=top)
    with open(path, "wb") as f:
        writer.write(f)
    raw.unlink()
    f = path.name
    return [
        Question(f"How often should the filter of the {name} be replaced?", f"every {months} months", f, "heading",
                 "pdf"),
        Question(f"What is the warranty period of the {name}?", f"{years} years", f, "heading", "pdf"),
        Question(f"Which outlet voltage does the {name} need?", f"{volts} V", f, "heading", "pdf"),
    ]


def notice(rng: random.Random, dept: str, path: Path) -> tuple[list[Question], list[list[str]]]:
    room, month, day = rng.randint(101, 999), rng.randint(1, 12), rng.randint(1, 28)
    budget = rng.randint(2, 90) * 1000
    pages = [
        [f"{dept}关于召开年度会议的通知", "第一条 会议时间", f"会议定于{month}月{day}日上午十点召开。",
         "请各位同事准时参加。"],
        ["第二条 会议地点", f"会议在{room}会议室举行。", "第三条 会议经费", f"本次会议预算为{budget}元。"],
    ]
    write_scanned_pdf(path, [p for p in pages])
    f = path.name
    questions = [
        Question(f"{dept}年度会议在哪个会议室举行？", f"{room}会议室", f, "heading", "scan"),
        Question(f"{dept}年度会议的预算是多少？", f"{budget}元", f, "heading", "scan"),
    ]
    return questions, pages


def build(folder: Path, seed: int = 14) -> tuple[list[Question], dict[str, list[list[str]]]]:
    """Write the corpus into ``folder``; returns the questions and each scan's rendered lines (for CER)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    scans: dict[str, list[list[str]]] = {}
    for i, company in enumerate(COMPANIES):
        questions += handbook(rng, company, styled=i % 2 == 0, path=folder / f"handbook_{i:02d}.docx")
    for i, series in enumerate(SERIES):
        questions += deck(rng, series, i, folder / f"deck_{i:02d}.pptx")
    for i, shop in enumerate(SHOPS):
        questions += price_list(rng, shop, i, folder / f"prices_{i:02d}.xlsx")
    for i in range(8):
        questions += manual(rng, i, folder / f"manual_{i:02d}.pdf")
    for i, dept in enumerate(DEPTS):
        qs, pages = notice(rng, dept, folder / f"notice_{i:02d}.pdf")
        questions += qs
        scans[f"notice_{i:02d}.pdf"] = pages
    return questions, scans
