"""A stand-in for Tencent Cloud SMS on a loopback port: it checks each request's TC3-HMAC-SHA256 signature as the
provider does (recomputed from the request with the secret key it shares with the test) and answers as SendSms does.
Tell it how to answer with `mode`: "ok", "error" (a provider error in the Response), "http500", "slow" (answers
after `delay` seconds), or "garbage" (not JSON)."""

from __future__ import annotations

import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from credits.notifications.tencent import ALGORITHM, SERVICE, signature

SECRET_ID = "AKIDstandin"
SECRET_KEY = "standin-secret-key"


class StandIn:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 2.0
        self.received: list[dict] = []  # accepted messages
        self.refused: list[str] = []  # why requests were refused
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                problem = outer.check(self.headers, body)
                if outer.mode == "slow":
                    time.sleep(outer.delay)
                if outer.mode == "http500":
                    return self.answer(500, b"internal error")
                if outer.mode == "garbage":
                    return self.answer(200, b"<html>gateway</html>")
                if problem:
                    outer.refused.append(problem)
                    return self.answer_json({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": problem}})
                if outer.mode == "error":
                    return self.answer_json({"Error": {"Code": "LimitExceeded.PhoneNumberDailyLimit",
                                                       "Message": "daily limit"}})
                request = json.loads(body)
                outer.received.append(request)
                return self.answer_json({"SendStatusSet": [{"Code": "Ok", "Message": "send success",
                                                            "PhoneNumber": request["PhoneNumberSet"][0],
                                                            "SessionContext": request["SessionContext"]}]})

            def answer_json(self, response: dict) -> None:
                self.answer(200, json.dumps({"Response": {**response, "RequestId": "standin"}}).encode())

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="tencent-standin")

    def check(self, headers, body: bytes) -> str | None:
        """Why the request's signature does not hold, or None when it does."""
        try:
            timestamp = int(headers["X-TC-Timestamp"])
            algorithm, rest = headers["Authorization"].split(" ", 1)
            parts = dict(part.strip().split("=", 1) for part in rest.split(","))
        except (KeyError, TypeError, ValueError):
            return "malformed Authorization"
        if headers.get("X-TC-Action") != "SendSms" or headers.get("Content-Type") != "application/json; charset=utf-8":
            return "wrong action or content type"
        secret_id, date, service, terminal = parts.get("Credential", "").split("/")
        if algorithm != ALGORITHM or secret_id != SECRET_ID or service != SERVICE or terminal != "tc3_request":
            return "wrong credential"
        if parts.get("SignedHeaders") != "content-type;host" or abs(time.time() - timestamp) > 300:
            return "wrong signed headers or stale timestamp"
        expected = signature(secret_key=SECRET_KEY, host=headers["Host"], body=body, timestamp=timestamp)
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "signature mismatch"
        return None

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
