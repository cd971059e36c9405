"""Local HTTP servers standing in for Alibaba Cloud SMS and Tencent Cloud SMS.

Each checks the request signature as its provider documents it, computed here independently of
the SDKs (a request whose signature does not verify gets the provider's own auth error), answers
SendSms as the provider does (success, or an error scripted by the test), and serves the receipt
query (Aliyun QuerySendDetails, Tencent PullSmsSendStatus).

- Aliyun, V3 signature ACS3-HMAC-SHA256 (help.aliyun.com/zh/sdk/product-overview/v3-request-structure-
  and-signature), which dysmsapi 4.x sends through tea-openapi's do_request:
  CanonicalRequest = Method \\n CanonicalURI \\n CanonicalQueryString \\n CanonicalHeaders \\n
  SignedHeaders \\n HexSHA256(body); StringToSign = "ACS3-HMAC-SHA256\\n" + HexSHA256(CanonicalRequest);
  Signature = Hex(HMAC-SHA256(AccessKeySecret, StringToSign)). The query's keys and values are
  percent-encoded per RFC 3986 (space %20, ~ kept) and sorted; the headers are host, content-type
  and every x-acs-*, lower-cased names, trimmed values.
- Tencent, TC3-HMAC-SHA256 (cloud.tencent.com/document/api/382/52071): CanonicalRequest = Method
  \\n / \\n query \\n CanonicalHeaders \\n SignedHeaders \\n HexSHA256(payload); StringToSign =
  "TC3-HMAC-SHA256\\n" + timestamp + "\\n" + date/service/tc3_request + "\\n" + HexSHA256(CanonicalRequest);
  the key derived as HMAC("TC3"+SecretKey, date) → service → "tc3_request".

Requests are not logged (Aliyun's carry the number in the query string).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # the query string holds a phone number
        pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class StandIn:
    """A provider on 127.0.0.1:<port> in a thread. `script` holds the answers to the next SendSms
    calls ("ok" when empty); `sent` every SendSms that verified; `rejected_signatures` the others."""

    def __init__(self) -> None:
        self.script: deque[str] = deque()
        self.sent: list[dict] = []
        self.rejected_signatures = 0
        self.receipts: list[dict] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()

    def _app(self, environ, start_response):
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def next_answer(self) -> str:
        return self.script.popleft() if self.script else "ok"


class AliyunStandIn(StandIn):
    KEY_ID, SECRET = "LTAI5tTestKeyId", "test-aliyun-secret-0123456789abc"

    def verify(self, request: Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("ACS3-HMAC-SHA256 "):
            return False
        fields = dict(part.split("=", 1) for part in auth.removeprefix("ACS3-HMAC-SHA256 ").split(","))
        if fields.get("Credential") != self.KEY_ID:
            return False
        signed = fields["SignedHeaders"].split(";")
        if not {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce"} <= set(signed):
            return False
        body = request.get_data()
        payload_hash = _sha256(body)
        if request.headers.get("x-acs-content-sha256") != payload_hash:
            return False
        pairs = sorted(
            (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
            for k, v in parse_qsl(request.query_string.decode(), keep_blank_values=True)
        )
        canonical = "\n".join(
            [
                request.method,
                request.path or "/",
                "&".join(f"{k}={v}" for k, v in pairs),
                "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed),
                ";".join(signed),
                payload_hash,
            ]
        )
        expected = hmac.new(
            self.SECRET.encode(), f"ACS3-HMAC-SHA256\n{_sha256(canonical.encode())}".encode(), hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, fields.get("Signature", ""))

    def handle(self, request: Request) -> Response:
        def answer(body: dict, status: int = 200) -> Response:
            return Response(json.dumps(body), status, content_type="application/json;charset=utf-8")

        if not self.verify(request):
            self.rejected_signatures += 1
            return answer(
                {
                    "Code": "SignatureDoesNotMatch",
                    "Message": "Specified signature is not matched",
                    "RequestId": "r",
                },
                400,
            )
        action = request.headers.get("x-acs-action")
        params = dict(parse_qsl(request.query_string.decode()))
        if action == "SendSms":
            outcome = self.next_answer()
            if outcome == "hang":  # the request went out; the answer never comes in time
                time.sleep(3)
            record = {**params, "TemplateParam": json.loads(params.get("TemplateParam", "{}"))}
            if outcome == "ok":
                biz_id = f"{len(self.sent) + 1}^{int(time.time())}"
                record["BizId"] = biz_id
                self.sent.append(record)
                return answer({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "r"})
            codes = {
                "throttle": ("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控"),
                "permanent": ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
                "hang": ("OK", "OK"),
            }
            code, message = codes[outcome]
            return answer({"Code": code, "Message": message, "RequestId": "r"})
        if action == "QuerySendDetails":
            details = [
                {
                    "SendStatus": 3,
                    "ErrCode": "DELIVERED",
                    "ReceiveDate": "2026-12-01 10:00:05",
                    "SendDate": "2026-12-01 10:00:01",
                    "PhoneNum": params.get("PhoneNumber"),
                    "TemplateCode": sent["TemplateCode"],
                    "OutId": sent.get("OutId"),
                }
                for sent in self.sent
                if sent["BizId"] == params.get("BizId") and sent["PhoneNumbers"] == params.get("PhoneNumber")
            ]
            self.receipts.append(params)
            return answer(
                {
                    "Code": "OK",
                    "Message": "OK",
                    "TotalCount": len(details),
                    "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
                    "RequestId": "r",
                }
            )
        return answer({"Code": "InvalidAction.NotFound", "Message": action or "", "RequestId": "r"}, 404)


class TencentStandIn(StandIn):
    SECRET_ID, SECRET_KEY = "AKIDtestsecretid000000", "test-tencent-secret-key-0123456789"

    def verify(self, request: Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("TC3-HMAC-SHA256 "):
            return False
        fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("TC3-HMAC-SHA256 ").split(","))
        secret_id, date, service, terminator = fields["Credential"].split("/")
        timestamp = request.headers.get("X-TC-Timestamp", "0")
        if secret_id != self.SECRET_ID or terminator != "tc3_request":
            return False
        if datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d") != date:
            return False
        if abs(time.time() - int(timestamp)) > 300:  # Tencent refuses a signature older than 5 minutes
            return False
        signed = fields["SignedHeaders"].split(";")
        if not {"content-type", "host"} <= set(signed):
            return False
        canonical = "\n".join(
            [
                request.method,
                "/",
                request.query_string.decode(),
                "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed),
                ";".join(signed),
                _sha256(request.get_data()),
            ]
        )
        scope = f"{date}/{service}/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{_sha256(canonical.encode())}"
        key = _hmac(_hmac(_hmac(f"TC3{self.SECRET_KEY}".encode(), date), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return service == "sms" and hmac.compare_digest(expected, fields.get("Signature", ""))

    def handle(self, request: Request) -> Response:
        def answer(body: dict) -> Response:
            return Response(
                json.dumps({"Response": {**body, "RequestId": "r"}}), 200, content_type="application/json"
            )

        if not self.verify(request):
            self.rejected_signatures += 1
            return answer({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "签名错误"}})
        action = request.headers.get("X-TC-Action")
        params = json.loads(request.get_data() or b"{}")
        if action == "SendSms":
            outcome = self.next_answer()
            if outcome == "hang":
                time.sleep(3)
            phone = params["PhoneNumberSet"][0]
            status = {
                "PhoneNumber": phone,
                "SessionContext": params.get("SessionContext", ""),
                "IsoCode": "CN",
            }
            if outcome in ("ok", "hang"):  # a hang is sent, its answer late
                serial = f"2640:{len(self.sent) + 1:010d}"
                self.sent.append({**params, "SerialNo": serial})
                status.update(SerialNo=serial, Fee=1, Code="Ok", Message="send success")
            elif outcome == "throttle":
                status.update(
                    SerialNo="",
                    Fee=0,
                    Code="LimitExceeded.PhoneNumberThirtySecondLimit",
                    Message="30秒内限频",
                )
            else:
                status.update(
                    SerialNo="", Fee=0, Code="FailedOperation.PhoneNumberInBlacklist", Message="黑名单"
                )
            return answer({"SendStatusSet": [status]})
        if action == "PullSmsSendStatus":
            pending = [s for s in self.sent if not s.get("pulled")]
            items = []
            for sent in pending[: int(params.get("Limit", 100))]:
                sent["pulled"] = True  # a queue: each receipt handed out once
                items.append(
                    {
                        "UserReceiveTime": str(int(time.time())),
                        "CountryCode": "86",
                        "SubscriberNumber": sent["PhoneNumberSet"][0].removeprefix("+86"),
                        "PhoneNumber": sent["PhoneNumberSet"][0],
                        "SerialNo": sent["SerialNo"],
                        "ReportStatus": "SUCCESS",
                        "Description": "用户短信送达成功",
                        "SessionContext": sent.get("SessionContext", ""),
                    }
                )
            self.receipts.append(params)
            return answer({"PullSmsSendStatusSet": items})
        return answer({"Error": {"Code": "InvalidAction", "Message": action or ""}})
