"""The English catalog is complete and matches the code; the English home page shows no Chinese."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "credits" / "translations"
EN_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
EN_MO = EN_PO.with_suffix(".mo")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def _msgid(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def test_every_message_in_the_english_catalog_is_translated_and_not_fuzzy():
    catalog = _read(EN_PO)
    untranslated = [_msgid(m) for m in catalog if m.id and not (
        all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [_msgid(m) for m in catalog if m.id and m.fuzzy]
    still_chinese = [_msgid(m) for m in catalog if m.id and CJK.search(str(m.string))]
    assert not untranslated, f"untranslated in {EN_PO.name}: {untranslated}"
    assert not fuzzy, f"fuzzy in {EN_PO.name}: {fuzzy}"
    assert not still_chinese, f"translation still contains Chinese: {still_chinese}"
    placeholder_errors = [(_msgid(m), [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not placeholder_errors, f"placeholders differ: {placeholder_errors}"


def test_the_english_catalog_has_every_string_extracted_from_the_code(tmp_path):
    pot = tmp_path / "messages.pot"
    done = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract",
         "-F", "babel.cfg", "-k", "_l", "-o", str(pot), "."],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, f"pybabel extract failed:\n{done.stderr}"
    extracted = [m for m in _read(pot) if m.id]
    assert extracted, "extraction found no messages; is babel.cfg still right?"
    catalog = _read(EN_PO)
    missing = [f"{_msgid(m)!r} ({', '.join(f'{f}:{n}' for f, n in m.locations)})"
               for m in extracted if catalog.get(m.id, context=m.context) is None]
    assert not missing, ("strings in the code missing from the English catalog; run `make extract-messages` "
                         "and translate them in " + str(EN_PO.relative_to(ROOT)) + ":\n" + "\n".join(missing))


def test_home_page_in_english_has_no_chinese_in_main(client):
    assert EN_MO.exists() and EN_MO.stat().st_mtime >= EN_PO.stat().st_mtime, (
        "messages.mo is missing or older than messages.po; run `make translations`")
    client.get("/lang/en")
    page = client.get("/").get_data(as_text=True)
    assert 'lang="en"' in page
    main = re.search(r"<main\b.*?</main>", page, re.S)
    assert main, "no <main> on the home page"
    assert "Public-welfare" in main.group(0)
    chinese = sorted(set(CJK.findall(main.group(0))))
    assert not chinese, f"Chinese left on the English home page: {''.join(chinese)}"
