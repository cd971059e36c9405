"""Text search that works for Chinese without a word segmenter.

Chinese has no spaces between words, so text is indexed as overlapping character bigrams
("城关镇" → "城关 关镇") plus lower-cased Latin words and numbers. A query is cut the same way and
every token must match. PostgreSQL answers from a GIN index on to_tsvector('simple', …); SQLite
(the laptop default) falls back to LIKE.
"""

from __future__ import annotations

import re

from sqlalchemy import and_, func
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9A-Za-z]+")


def tokens(text: str) -> list[str]:
    found: list[str] = []
    for run in _CJK_RUN.findall(text):
        found.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
    found.extend(w.lower() for w in _WORD.findall(text))
    return list(dict.fromkeys(found))  # unique, in order


def index_text(*parts: str | None) -> str:
    return " ".join(tokens(" ".join(p for p in parts if p)))


def matches(session: Session, column, query: str) -> ColumnElement[bool] | None:
    wanted = tokens(query)
    if not wanted:
        return None
    if session.get_bind().dialect.name == "postgresql":
        return func.to_tsvector("simple", column).op("@@")(func.plainto_tsquery("simple", " ".join(wanted)))
    return and_(*(column.like(f"%{t}%") for t in wanted))
