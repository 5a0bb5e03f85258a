"""Tencent Cloud SMS (SendSms, API version 2021-01-11) signed with TC3-HMAC-SHA256, as Tencent Cloud's "Signature
v3" documents it: a canonical request (method, URI, query, the signed headers content-type and host, the body's
SHA-256), a string to sign (algorithm, timestamp, credential scope date/sms/tc3_request, the canonical request's
SHA-256), and a key derived by HMAC-SHA256 from "TC3" + SecretKey over the date, the service and "tc3_request".

Keys and the sender's settings come from the environment (Config: TENCENT_SMS_*). Mainland SMS must use an approved
template: TENCENT_SMS_TEMPLATE_ID names one whose only parameter {1} carries the whole text. Standard library HTTP
only (urllib), with a time-out, so a slow provider holds a delivery for at most SMS_PROVIDER_TIMEOUT seconds; any
failure raises, and the delivery is retried with backoff (delivery.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

SERVICE = "sms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"


class ProviderError(Exception):
    """The provider refused the message (its error code and message), or answered what is not its API."""


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signature(*, secret_key: str, host: str, body: bytes, timestamp: int) -> str:
    """The TC3-HMAC-SHA256 signature of a POST / with a JSON body (shared with the tests' stand-in server)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(["POST", "/", "", f"content-type:{CONTENT_TYPE}\nhost:{host}\n", "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), SERVICE), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class TencentChannel:
    def __init__(self, config) -> None:
        self.endpoint = config["TENCENT_SMS_ENDPOINT"]
        self.secret_id = config["TENCENT_SECRET_ID"]
        self.secret_key = config["TENCENT_SECRET_KEY"]
        self.app_id = config["TENCENT_SMS_APP_ID"]
        self.sign_name = config["TENCENT_SMS_SIGN"]
        self.template_id = config["TENCENT_SMS_TEMPLATE_ID"]
        self.region = config["TENCENT_SMS_REGION"]
        self.timeout = config["SMS_PROVIDER_TIMEOUT"]
        if not (self.secret_id and self.secret_key and self.app_id and self.template_id):
            raise ValueError("SMS_BACKEND=tencent needs TENCENT_SECRET_ID, TENCENT_SECRET_KEY, TENCENT_SMS_APP_ID "
                             "and TENCENT_SMS_TEMPLATE_ID")

    def send(self, *, key: str, to: str, kind: str, text: str) -> None:
        # The API has no idempotency token: SessionContext carries the key back in its answer and in the
        # provider's records, so a message sent twice after a crash can be traced to one delivery.
        body = json.dumps({"PhoneNumberSet": [f"+86{to}"], "SmsSdkAppId": self.app_id, "SignName": self.sign_name,
                           "TemplateId": self.template_id, "TemplateParamSet": [text], "SessionContext": key},
                          ensure_ascii=False).encode()
        host = urlsplit(self.endpoint).netloc
        timestamp = int(time.time())
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        signed = signature(secret_key=self.secret_key, host=host, body=body, timestamp=timestamp)
        authorization = (f"{ALGORITHM} Credential={self.secret_id}/{date}/{SERVICE}/tc3_request, "
                         f"SignedHeaders=content-type;host, Signature={signed}")
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers={
            "Authorization": authorization, "Content-Type": CONTENT_TYPE, "Host": host, "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp), "X-TC-Version": VERSION, "X-TC-Region": self.region})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ProviderError(f"HTTP {exc.code}") from exc
        except ValueError as exc:
            raise ProviderError("not JSON") from exc
        result = answer.get("Response") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise ProviderError("no Response")
        if "Error" in result:
            raise ProviderError(f"{result['Error'].get('Code')}: {result['Error'].get('Message')}")
        statuses = result.get("SendStatusSet") or []
        if not statuses or statuses[0].get("Code") != "Ok":
            status = statuses[0] if statuses else {}
            raise ProviderError(f"{status.get('Code')}: {status.get('Message')}")
