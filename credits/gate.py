"""Requests refused before any view reads them: bodies that are not what they claim, JSON that would take the
parser down (deep nesting, huge integer literals), NUL bytes, which no database column can hold."""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

from flask import Flask, abort, request
from flask_babel import gettext as _

from credits.errors import InvalidInput

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# No request of the contract nests more than three levels ({"ids": [..]}, a page of errors); Python's parser
# recurses once per level and fails at about a thousand with a RecursionError.
MAX_JSON_DEPTH = 32
# Every number of the contract fits in 64 bits (19 digits); Python refuses to convert past 4,300 digits with a
# ValueError. Longer literals are refused here, shorter ones out of range by the schemas' own bounds.
MAX_NUMBER_DIGITS = 40

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")
_LONG_NUMBER = re.compile(rb"\d{%d,}" % (MAX_NUMBER_DIGITS + 1))
# Opening brackets count +1, closing ones -1 (as signed bytes), so the running sum is the nesting depth.
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_problem(body: bytes) -> str | None:
    """Why a JSON body must not reach the parser, or None. Linear in the body's length and done in C: strings are
    blanked first (a bracket or digit inside one is text), then the brackets' running depth and the longest digit
    run are measured."""
    bare = _STRINGS.sub(b'""', body)
    if _LONG_NUMBER.search(bare):
        return _("数字过长。")
    steps = array("b", _NOT_BRACKETS.sub(b"", bare).translate(_DEPTH_STEPS))
    if steps and max(accumulate(steps)) > MAX_JSON_DEPTH:
        return _("JSON 嵌套过深。")
    return None


def takes_upload(view):
    """Mark a view that reads an uploaded file (multipart) itself: in the API, the one exception to JSON only."""
    view.takes_upload = True
    return view


def _takes_upload(app: Flask) -> bool:
    return request.mimetype == "multipart/form-data" and getattr(
        app.view_functions.get(request.endpoint), "takes_upload", False)


def _has_nul(values) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in values.items(multi=True))


def register_gate(app: Flask) -> None:
    @app.before_request
    def refuse_unreadable_requests():
        if "\x00" in request.path:
            abort(404)  # a path with NUL names nothing
        if _has_nul(request.args):
            raise InvalidInput(fields={"_query": [_("不能包含控制字符。")]})
        if request.method not in WRITE_METHODS:
            return
        if _takes_upload(app):
            return  # the view reads the file, and answers one too large in its own words
        if request.is_json:
            if problem := json_problem(request.get_data(cache=True)):
                raise InvalidInput(fields={"_schema": [problem]})
        elif request.path.startswith("/api/") and request.get_data(cache=True):
            # The API reads JSON only: a body in any other type would be ignored and the write done without it.
            abort(415)
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and (
                _has_nul(request.form)):
            raise InvalidInput(fields={"_form": [_("不能包含控制字符。")]})
