"""`kurashi garbage import|check` on hostile input: a --name that is a path (``..``,
``../x``, absolute) never deletes or writes outside the garbage folder, symlinked files are
not followed, and empty CSVs or NUL bytes are errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main

FORMS = Path(__file__).resolve().parent / "fixtures" / "garbage" / "forms"


@pytest.mark.parametrize("name", ["..", "../x", ".", "a/b", "ABSOLUTE", "x..y", ".hidden"])
def test_import_refuses_a_name_that_is_not_a_plain_folder_name(tmp_path, capsys, name) -> None:
    dest = tmp_path / "knowledge" / "garbage"
    dest.mkdir(parents=True)
    (tmp_path / "knowledge" / "keep.yaml").write_text("precious: true\n", encoding="utf-8")
    (tmp_path / "x").mkdir()
    name = str(tmp_path / "evil") if name == "ABSOLUTE" else name
    code = main(["garbage", "import", str(FORMS), "--name", name, "--dest", str(dest), "--force"])
    assert code == 2
    assert "plain folder name" in capsys.readouterr().err
    assert (tmp_path / "knowledge" / "keep.yaml").is_file()          # `--name ..` used to delete knowledge/
    assert sorted(p.name for p in tmp_path.iterdir()) == ["knowledge", "x"]
    assert list(dest.iterdir()) == [] and list((tmp_path / "x").iterdir()) == []
    assert not Path("ABSOLUTE").exists()


def test_import_does_not_follow_a_symlinked_file(tmp_path, capsys) -> None:
    source = tmp_path / "city"
    shutil.copytree(FORMS, source)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the knowledge base\n", encoding="utf-8")
    (source / "README.md").symlink_to(secret)
    dest = tmp_path / "dest"
    code = main(["garbage", "import", str(source), "--name", "city", "--dest", str(dest)])
    assert code == 1
    assert "symbolic link" in capsys.readouterr().err
    assert not (dest / "city").exists()


@pytest.mark.parametrize("file, content, message", [
    ("remarks.csv", b"", "empty file"),
    ("target.csv", b"  \n\n", "empty file"),
    ("center.csv", "名称,休止開始日,休止終了日\nA\x00,,\n".encode(), "NUL byte"),
])
def test_check_refuses_empty_csvs_and_nul_bytes(tmp_path, capsys, file, content, message) -> None:
    source = tmp_path / "city"
    shutil.copytree(FORMS, source)
    (source / file).write_bytes(content)
    assert main(["garbage", "check", str(source)]) == 1
    err = capsys.readouterr().err
    assert file in err and message in err
