from pathlib import Path

import pytest

from kb_assistant.errors import KBError
from kb_assistant.uploads import safe_filename, save_upload

ALLOWED = {".txt", ".pdf"}


@pytest.mark.parametrize(
    "name, expected",
    [("../../evil.txt", "evil.txt"), ("..\\..\\win.txt", "win.txt"), ("/etc/passwd", "passwd"),
     ("年假 制度.txt", "年假 制度.txt"), ("<script>.txt", "_script_.txt"), ("..", "upload"), (".bashrc", "bashrc")],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_save_upload_stays_inside_and_keeps_both_versions(tmp_path: Path) -> None:
    up = tmp_path / "uploads"
    a = save_upload(up, "../../evil.txt", b"one", allowed=ALLOWED, max_bytes=100)
    assert a.parent == up.resolve() and a.read_bytes() == b"one"
    assert not (tmp_path.parent / "evil.txt").exists()
    same = save_upload(up, "evil.txt", b"one", allowed=ALLOWED, max_bytes=100)
    assert same == a  # a duplicate upload reuses the stored file
    other = save_upload(up, "evil.txt", b"two", allowed=ALLOWED, max_bytes=100)
    assert other != a and a.read_bytes() == b"one" and other.read_bytes() == b"two"


def test_save_upload_refuses_type_and_size(tmp_path: Path) -> None:
    with pytest.raises(KBError, match="cannot be indexed"):
        save_upload(tmp_path, "x.exe", b"MZ", allowed=ALLOWED, max_bytes=100)
    with pytest.raises(KBError, match="over the"):
        save_upload(tmp_path, "big.txt", b"x" * 101, allowed=ALLOWED, max_bytes=100)
