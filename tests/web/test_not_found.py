"""A 404 says what was not found, on the API (code not_found) and on the page."""

from __future__ import annotations

import pytest

API = "/api/v1"


@pytest.mark.parametrize(("role", "method", "path", "message"), [
    ("volunteer", "get", "/projects/999999", "找不到这个项目。"),
    ("volunteer", "post", "/claims/999999/cancel", "找不到这条认领记录。"),
    ("volunteer", "post", "/vouchers/999999/cancel", "找不到这张兑换券。"),
    ("coordinator", "post", "/hours/999999/approve", "找不到这条时长记录。"),
    ("coordinator", "get", "/reviews/999999", "找不到这次评审。"),
    ("coordinator", "post", "/merchants/999999/services", "找不到这个商户。"),
])
def test_the_api_names_what_it_did_not_find(client, token_for, volunteer, coordinator, role, method, path, message):
    headers = token_for(volunteer if role == "volunteer" else coordinator)
    body = {"name": "洗车", "price": 5} if path.endswith("/services") else ({} if method == "post" else None)
    response = getattr(client, method)(f"{API}{path}", headers=headers, json=body)
    assert response.status_code == 404, response.json
    assert response.json["error"] == {"code": "not_found", "message": message}


@pytest.mark.parametrize(("path", "message"), [("/projects/999999", "找不到这个项目"),
                                               ("/certificates/FC-NOPE", "找不到这份证明"),
                                               ("/me/vouchers/999999", "找不到这张兑换券")])
def test_the_page_names_what_it_did_not_find(browser, volunteer, path, message):
    response = browser(volunteer).get(path)
    assert response.status_code == 404
    assert message in response.get_data(as_text=True)
