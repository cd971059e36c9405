"""Input no handler should ever see: NUL bytes, lone UTF-16 surrogates, JSON nested past reason.

PostgreSQL refuses a NUL in text and a lone surrogate cannot be encoded as UTF-8, so either one in
any field or query parameter used to end as a 500 deep in a query; JSON nested 100,000 deep blew
Python's recursion limit. They are refused here, before any view runs, with the same 400 answer
(JSON error shape on /api/, the error page elsewhere) whatever the endpoint.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, request

from supervise.errors import DomainError
from supervise.i18n import N_

BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
MAX_JSON_DEPTH = 32


class BadInput(DomainError):
    status = 400
    code = "bad_request"


def _nesting_within(raw: bytes, limit: int) -> bool:
    """Brackets outside strings never go deeper than `limit` (a cheap scan before json.loads)."""
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def _clean(value: Any) -> bool:
    if isinstance(value, str):
        return BAD_CHARACTERS.search(value) is None
    if isinstance(value, dict):
        return all(_clean(k) and _clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v) for v in value)
    return True


def install(app: Flask) -> None:
    @app.before_request
    def _refuse_unusable_input() -> None:
        texts = [*request.args.values(), *request.args.keys(), request.path]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            texts += [*request.form.values(), *request.form.keys()]
        if not all(_clean(t) for t in texts):
            raise BadInput(N_("提交的内容包含无效字符"), {"_": [N_("提交的内容包含无效字符")]})
        if request.is_json and request.content_length:
            raw = request.get_data(cache=True)
            if not _nesting_within(raw, MAX_JSON_DEPTH):
                raise BadInput(N_("提交的数据嵌套过深"), {"_": [N_("提交的数据嵌套过深")]})
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                return  # the view's own parser answers malformed JSON as it always has
            if not _clean(parsed):
                raise BadInput(N_("提交的内容包含无效字符"), {"_": [N_("提交的内容包含无效字符")]})
