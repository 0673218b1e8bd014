"""`kurashi garbage import|check|next|item` (subprocess, real entry point)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from knowledge.garbage import load_garbage_set

REPO = Path(__file__).resolve().parents[2]
FORMS = Path(__file__).resolve().parent / "fixtures" / "garbage" / "forms"
BROKEN = Path(__file__).resolve().parent / "fixtures" / "garbage" / "broken"
REF = REPO / ".." / "shared" / "reference" / "5374"


def run_kurashi(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "kurashi"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=120, check=False)


def test_garbage_import_copies_a_validated_calendar_and_prints_a_summary(tmp_path):
    result = run_kurashi("garbage", "import", str(FORMS), "--name", "testcity", "--dest", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "4 areas, 4 categories, 3 items, 2 remarks, 2 centres" in result.stdout
    copied = load_garbage_set(tmp_path / "testcity")
    assert copied.primary.next_collections("週二回", "資源", date(2023, 1, 1), 1) == [date(2023, 1, 10)]
    # A second import without --force refuses to overwrite.
    again = run_kurashi("garbage", "import", str(FORMS), "--name", "testcity", "--dest", str(tmp_path))
    assert again.returncode == 1 and "--force" in again.stderr


def test_garbage_import_rejects_a_bad_file_with_file_and_line(tmp_path):
    source = tmp_path / "bad"
    shutil.copytree(FORMS, source)
    shutil.copytree(BROKEN / "bad_token", source, dirs_exist_ok=True)
    result = run_kurashi("garbage", "import", str(source), "--dest", str(tmp_path / "dest"))
    assert result.returncode == 1
    assert f"{source / 'area_days.csv'}:3: error:" in result.stderr
    assert not (tmp_path / "dest" / "bad").exists()


@pytest.mark.skipif(not REF.is_dir(), reason="../shared/reference/5374 (real 5374 data) is absent")
def test_garbage_import_keeps_language_directories_of_nonoichi(tmp_path):
    result = run_kurashi("garbage", "import", str(REF / "nonoichi"), "--dest", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "languages ja, en" in result.stdout
    assert (tmp_path / "nonoichi" / "en-US" / "target.csv").is_file()
    item = run_kurashi("garbage", "item", "Frying pans", "--root", str(tmp_path), "--lang", "en")
    assert item.stdout.splitlines()[0].startswith("Frying pans → Non-burnable, Cans, Bottles, Plastic Containers")


def test_garbage_next_prints_days_per_category_and_says_sample():
    result = run_kurashi("garbage", "next", "湯田", "--from", "2026-12-01", "-n", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("SAMPLE")
    assert "燃やせるごみ: 2026-12-03" in lines


def test_garbage_import_defaults_to_the_configured_knowledge_dir(tmp_path):
    script = Path(sys.executable).parent / "kurashi"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    env = {**os.environ, "KNOWLEDGE_DIR": str(tmp_path)}
    result = subprocess.run([*command, "garbage", "import", str(FORMS), "--name", "town"], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "garbage" / "town" / "area_days.csv").is_file()


def test_garbage_item_readme_example_finds_the_category_of_a_frying_pan():
    """README: `kurashi garbage item "frying pan" --lang en` (an alias of calendar.yaml)."""
    done = run_kurashi("garbage", "item", "frying pan", "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(
        "'frying pan' = Metal items and small appliances → Metal & small appliances (金属・小型家電)")
    vi = run_kurashi("garbage", "item", "pin bỏ thế nào", "--lang", "vi")
    assert vi.returncode == 0 and "乾電池 → 拠点回収" in vi.stdout


def test_an_item_alias_for_an_item_the_data_does_not_have_is_an_error(tmp_path):
    shutil.copytree(Path("knowledge/garbage/yamaguchi-sample"), tmp_path / "city")
    meta = tmp_path / "city" / "calendar.yaml"
    meta.write_text(meta.read_text(encoding="utf-8") + "  ない品目:\n    en: [nothing]\n", encoding="utf-8")
    done = run_kurashi("garbage", "check", str(tmp_path / "city"))
    assert done.returncode != 0 and "ない品目" in (done.stdout + done.stderr)
