"""Domain errors, and the one handler that answers JSON under /api/ and a friendly page elsewhere."""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, IntegrityError
from werkzeug.exceptions import HTTPException

from credits.database import rollback
from credits.extensions import limiter

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A broken business rule. Subclasses name the code and HTTP status of SPEC 3.2."""

    code = "invalid_state"
    status = 409
    message: Any = _l("此操作在当前状态下不允许。")

    def __init__(self, message: Any = None, *, fields: dict | None = None, **details: Any) -> None:
        super().__init__(str(message or self.message))
        if message is not None:
            self.message = message
        self.fields = fields
        self.details = details


class Unauthorized(DomainError):
    code, status, message = "unauthorized", 401, _l("请先登录。")


class Forbidden(DomainError):
    code, status, message = "forbidden", 403, _l("您没有权限执行此操作。")


# What a 404 names, by the kind of thing looked for: NotFound(what="voucher").
NOT_FOUND_MESSAGES = {"project": _l("找不到这个项目。"), "claim": _l("找不到这条认领记录。"),
                      "record": _l("找不到这条时长记录。"), "certificate": _l("找不到这份证明。"),
                      "review": _l("找不到这次评审。"), "candidate": _l("该项目不是本次评审的候选项目。"),
                      "merchant": _l("找不到这个商户。"),
                      "service": _l("找不到这项服务。"), "voucher": _l("找不到这张兑换券。"),
                      "user": _l("找不到这个用户。"), "organization": _l("找不到这个组织。")}


class NotFound(DomainError):
    code, status, message = "not_found", 404, _l("找不到该对象。")

    def __init__(self, message: Any = None, *, what: str | None = None, **kwargs: Any) -> None:
        super().__init__(NOT_FOUND_MESSAGES[what] if message is None and what else message, **kwargs)


class InvalidInput(DomainError):
    code, status, message = "validation_error", 422, _l("输入有误，请检查后重试。")


class RateLimited(DomainError):
    code, status, message = "rate_limited", 429, _l("操作过于频繁，请稍后再试。")

    def __init__(self, message: Any = None, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InvalidState(DomainError):
    code, status = "invalid_state", 409


class InsufficientBalance(DomainError):
    code, status, message = "insufficient_balance", 409, _l("公益币余额不足。")


class IdempotencyConflict(DomainError):
    code, status, message = "idempotency_conflict", 409, _l("该幂等键已用于另一个不同的请求。")


class Unavailable(DomainError):
    code, status, message = "unavailable", 503, _l("服务暂时不可用，请稍后再试。")


# What a person reads on an error page: werkzeug's descriptions are English and written for developers.
PAGE_MESSAGES = {400: _l("请求无效：页面可能已过期。请返回上一页，刷新后再试。"),
                 403: _l("您没有权限打开这个页面。如有需要，请联系协调员或管理员。"),
                 404: _l("找不到这个页面：链接可能有误，或内容已被删除。"),
                 405: _l("这个页面不能这样打开，请从页面上的链接或按钮进入。"),
                 413: _l("提交的内容太大了，请减少后再试。")}

HTTP_CODES = {400: "validation_error", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "validation_error", 422: "validation_error",
              429: "rate_limited"}


def wants_json() -> bool:
    """The API, the health check, and a page's JSON endpoint that says so (`g.answers_json`, set by the view, so
    an expired CSRF token checked before it still goes back to the page)."""
    return request.path.startswith("/api/") or request.path == "/healthz" or g.get("answers_json", False)


# marshmallow's own messages, in the user's language: each English pattern → a message through Babel.
_MARSHMALLOW_MESSAGES: list[tuple[re.Pattern, Any]] = [(re.compile(pattern), message) for pattern, message in [
    (r"^Missing data for required field\.$", lambda: _("请填写此项。")),
    (r"^Field may not be null\.$", lambda: _("不能为空。")),
    (r"^Unknown field\.$", lambda: _("无法识别的字段。")),
    (r"^Invalid (input )?type\.$", lambda: _("输入的类型不正确。")),
    (r"^Invalid JSON body\.$", lambda: _("请求内容不是有效的 JSON。")),
    (r"^Not a valid integer\.$", lambda: _("请输入整数。")),
    (r"^Not a valid string\.$", lambda: _("请输入文字。")),
    (r"^Not a valid boolean\.$", lambda: _("请输入是或否。")),
    (r"^Not a valid (datetime|date)\.$", lambda: _("日期或时间的格式不正确。")),
    (r"^Not a valid list\.$", lambda: _("应为一个列表。")),
    (r"^Shorter than minimum length (?P<n>\d+)\.$", lambda n: _("至少 %(n)s 个字符。", n=n)),
    (r"^Longer than maximum length (?P<n>\d+)\.$", lambda n: _("最多 %(n)s 个字符。", n=n)),
    (r"^Length must be between (?P<a>\d+) and (?P<b>\d+)\.$",
     lambda a, b: _("长度须在 %(a)s 到 %(b)s 之间。", a=a, b=b)),
    (r"^Must be greater than or equal to (?P<a>\S+) and less than or equal to (?P<b>\S+)\.$",
     lambda a, b: _("须在 %(a)s 到 %(b)s 之间。", a=a, b=b)),
    (r"^Must be greater than or equal to (?P<a>\S+)\.$", lambda a: _("不能小于 %(a)s。", a=a)),
    (r"^Must be less than or equal to (?P<b>\S+)\.$", lambda b: _("不能大于 %(b)s。", b=b)),
    (r"^Must be one of: (?P<choices>.+)\.$", lambda choices: _("须为以下之一：%(choices)s。", choices=choices)),
]]


def localize(messages: Any) -> Any:
    """Field errors with marshmallow's built-in English messages put into the user's language."""
    if isinstance(messages, dict):
        return {key: localize(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [localize(value) for value in messages]
    text = str(messages)
    for pattern, message in _MARSHMALLOW_MESSAGES:
        if match := pattern.match(text):
            return message(**match.groupdict())
    return text


def _flatten_messages(messages: Any) -> dict:
    """webargs nests field errors under the location ("json", "query"); callers want the fields."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "headers", "view_args"}:
        merged: dict = {}
        for part in messages.values():
            merged.update(part if isinstance(part, dict) else {"_schema": part})
        return localize(merged)
    return localize(messages if isinstance(messages, dict) else {"_schema": messages})


def error_response(status: int, code: str, message: str, fields: dict | None = None,
                   details: dict | None = None):
    if wants_json():
        body: dict = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        if details:
            body.update(details)
        return jsonify(error=body), status
    if status == 401:
        if request.method != "GET":  # a form posted after the session ended: back to it after signing in
            back = came_from()
            keep_form_for(back, _("登录已过期，请重新登录。您填写的内容已保留，确认后再提交一次。"))
            return redirect(url_for("auth.login", next=back))
        return redirect(url_for("auth.login", next=request.full_path))
    return render_template("errors/error.html", status=status, code=code, message=message,
                           fields=fields or {}), status


def handle_domain_error(exc: DomainError):
    rollback()
    response = error_response(exc.status, exc.code, str(exc.message), exc.fields, exc.details)
    if getattr(exc, "retry_after", None):
        return *response, {"Retry-After": str(exc.retry_after)}
    return response


def handle_validation_error(exc: ValidationError):
    rollback()
    return error_response(422, "validation_error", str(InvalidInput.message),
                          _flatten_messages(exc.messages))


def came_from() -> str:
    """The page a form was posted from (its Referer, when on this site), else the home page."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host or not referrer.path.startswith("/") or referrer.path.startswith("//"):
        return "/"
    return referrer.path + (f"?{referrer.query}" if referrer.query else "")


def keep_form_for(path: str, message: str) -> None:
    """The form on `path` gets back what was typed into it (kept by app.js in the tab's sessionStorage; passwords
    never): the next time that page is shown, and the person is told why."""
    session["restore_form"] = urlsplit(path).path
    flash(message, "warning")


def handle_csrf_error(exc: CSRFError):
    """A form whose page expired (its CSRF token is older than the session, or the session ended): back to that
    page, what was typed kept, rather than a dead end."""
    rollback()
    if wants_json():
        return handle_http_exception(exc)
    back = came_from()
    keep_form_for(back, _("页面已过期。您填写的内容已保留，请确认后再提交一次。"))
    return redirect(back, 303)


def handle_http_exception(exc: HTTPException):
    rollback()
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if "messages" in data:  # webargs parse failure, including malformed JSON
        return error_response(422, "validation_error", str(InvalidInput.message),
                              _flatten_messages(data["messages"]))
    if status == 429:
        body, status = error_response(429, "rate_limited", str(RateLimited.message))
        return body, status, _retry_after()
    if wants_json():
        message = exc.description or exc.name
    elif status >= 500:
        message = str(Unavailable.message)
    else:
        message = str(PAGE_MESSAGES.get(status, _l("无法完成这个请求，请返回上一页再试。")))
    response = error_response(status, HTTP_CODES.get(status, "error"), message)
    if status == 405 and isinstance(response, tuple):
        return response[0], status, {"Allow": ", ".join(exc.valid_methods or [])}
    return response


def _retry_after() -> dict[str, str]:
    """Seconds until the breached limit's window resets (the limiter adds no headers of its own)."""
    current = limiter.current_limit
    if not current:
        return {}
    try:
        seconds = current.reset_at - int(time.time())
    except RedisError:
        # The limit was counted in Redis, which went away before the window could be read (found by faults.py):
        # the whole window is the longest the client can have to wait.
        seconds = current.limit.get_expiry()
    return {"Retry-After": str(max(1, seconds))}


def handle_database_error(exc: DBAPIError):
    """A database that does not answer (or stays locked past every retry) is a 503, not a 500."""
    rollback()
    if isinstance(exc, IntegrityError):  # the schema refused a write the checks let through (a race)
        log.info("integrity error on %s %s: %s", request.method, request.path, exc.orig)
        return error_response(409, InvalidState.code, str(_l("与已有数据冲突，请刷新后重试。")))
    if exc.connection_invalidated or "database is locked" in str(exc.orig) or _is_connection_error(exc):
        log.warning("database unavailable: %s", exc.orig)
        # The page's header would read the person (roles, 长辈模式, unread messages) from the database that is
        # away: the 503 page is drawn as for a visitor, from nothing that needs a query.
        g._login_user = AnonymousUserMixin()
        return error_response(503, Unavailable.code, str(Unavailable.message))
    return handle_unexpected(exc)


def _is_connection_error(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"} or (
        exc.__class__.__name__ == "OperationalError" and sqlstate == "")


def handle_unexpected(exc: Exception):
    rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", str(_l("服务器出错了，我们已记录此问题。")))


def register_errorhandlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
