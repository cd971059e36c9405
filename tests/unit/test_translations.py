"""The English catalog covers every message and the compiled .mo matches the .po.

After changing a Chinese UI string: `pybabel extract -F babel.cfg -k N_ -k _ --no-location
-o supervise/translations/messages.pot .`, `pybabel update -i supervise/translations/messages.pot
-d supervise/translations`, translate, then `pybabel compile -d supervise/translations`.
"""

import gettext
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
EN = ROOT / "supervise/translations/en/LC_MESSAGES"


def test_every_message_has_an_english_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "--quiet",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "-k",
            "_",
            "--no-location",
            "-o",
            str(pot),
            str(ROOT),
        ]
    )
    with pot.open("rb") as fh:
        wanted = {m.id for m in read_po(fh) if m.id}
    with (EN / "messages.po").open("rb") as fh:
        translated = {m.id: m.string for m in read_po(fh) if m.id}
    missing = sorted(m for m in wanted if not translated.get(m))
    assert missing == [], f"untranslated: {missing}"


def test_compiled_catalog_matches_the_po():
    # Keyed by (context, msgid): pgettext("weekday", "一") and a plain "一" are different entries.
    with (EN / "messages.po").open("rb") as fh:
        po = {(m.context, m.id): m.string for m in read_po(fh) if m.id and m.string}
    with (EN / "messages.mo").open("rb") as fh:
        mo = gettext.GNUTranslations(fh)
    compiled = {(c, k): mo.pgettext(c, k) if c else mo.gettext(k) for c, k in po}
    assert compiled == po
