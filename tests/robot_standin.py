"""A local stand-in for the WeCom group robot and the DingTalk custom robot webhooks.

It checks each request as the providers document it, with its own code (not the app's):
- DingTalk (`POST /robot/send?access_token=…[&timestamp=…&sign=…]`): the token must be a known
  robot's; a robot with a 加签 secret needs `timestamp` (ms, within an hour of now) and `sign` =
  urlencode(base64(HMAC-SHA256(secret, "timestamp\\nsecret"))), else errcode 310000 as DingTalk
  answers; a robot without one must find its keyword in the message (310000 too).
- WeCom (`POST /cgi-bin/webhook/send?key=…`): the key must be a known robot's, else 93000.
Both answer `{"errcode": 0, "errmsg": "ok"}` on success; `script` queues answers to give first
(a rate limit, a 5xx) so the tests can drive retries and dead letters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_SKEW_MS = 3600 * 1000  # DingTalk: a timestamp more than an hour from now is refused


@dataclass
class Post:
    """A request the stand-in accepted (checked and answered errcode 0)."""

    kind: str  # wecom | dingtalk
    credential: str
    query: dict[str, str]
    body: dict[str, Any]
    raw: str


@dataclass
class RobotStandIn:
    dingtalk: dict[str, str | None] = field(default_factory=dict)  # access_token → secret (None: keyword)
    wecom: set[str] = field(default_factory=set)  # known keys
    keyword: str = "码上监督"
    posts: list[Post] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # (kind, errcode) of refused requests
    script: list[tuple[int, dict[str, Any]]] = field(
        default_factory=list
    )  # (HTTP status, answer) to give first
    port: int = 0

    def url(self, kind: str, credential: str) -> str:
        if kind == "dingtalk":
            return f"http://127.0.0.1:{self.port}/robot/send?access_token={credential}"
        return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key={credential}"

    # -- checks, as documented -----------------------------------------------------------------

    def _dingtalk(self, query: dict[str, str], raw: str) -> tuple[int, str]:
        token = query.get("access_token", "")
        if token not in self.dingtalk:
            return 300001, "token is not exist"
        secret = self.dingtalk[token]
        if secret is None:
            return (0, "ok") if self.keyword in raw else (310000, "keywords not in content")
        try:
            timestamp = int(query["timestamp"])
        except (KeyError, ValueError):
            return 310000, "sign not match, timestamp missing"
        if abs(time.time() * 1000 - timestamp) > MAX_SKEW_MS:
            return 310000, "sign not match, timestamp is more than one hour from now"
        expected = base64.b64encode(
            hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        # parse_qsl has already url-decoded `sign` (the '+' of base64 arrives as %2B).
        if not hmac.compare_digest(query.get("sign", ""), expected):
            return 310000, "sign not match"
        return 0, "ok"

    def _wecom(self, query: dict[str, str]) -> tuple[int, str]:
        return (0, "ok") if query.get("key") in self.wecom else (93000, "invalid webhook url")

    def handle(self, path: str, raw_query: str, raw_body: bytes) -> tuple[int, dict[str, Any]]:
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        kind = {"/robot/send": "dingtalk", "/cgi-bin/webhook/send": "wecom"}.get(path)
        if kind is None:
            return 404, {"errcode": 404, "errmsg": "not found"}
        if self.script:
            return self.script.pop(0)
        raw = raw_body.decode("utf-8")
        body = json.loads(raw)
        code, message = self._dingtalk(query, raw) if kind == "dingtalk" else self._wecom(query)
        if code:
            self.refused.append((kind, code))
        else:
            credential = query.get("access_token") or query.get("key", "")
            self.posts.append(Post(kind, credential, query, body, raw))
        return 200, {"errcode": code, "errmsg": message}

    # -- serving ---------------------------------------------------------------------------------

    def start(self) -> ThreadingHTTPServer:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                status, answer = standin.handle(parts.path, parts.query, self.rfile.read(length))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # the URLs hold keys: not in the test log
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
