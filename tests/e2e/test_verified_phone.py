"""Verified phones in the browser (issue 15): a volunteer who forgot the password asks for a code on 忘记密码, reads
it off the phone (the SMS file backend), sets a new password and signs in with it; then moves the account to a new
phone from the account page, with a code sent there. Each page is checked for phone use."""

from __future__ import annotations

import re

from credits.extensions import db
from tests.e2e.conftest import check_phone_page, fresh

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says why, and skips or (on CI) fails
    expect = None

NEW_PASSWORD = "fengcheng-new-2026"


def test_a_forgotten_password_is_reset_with_a_code_and_the_phone_changed_from_the_account_page(
        app, phone, make_user, sms_texts):
    app.config["SMS_CODE_LIMITS"] = "2 per minute; 10 per day"  # two codes within the minute, from one address
    user = make_user(name="王阿姨", phone="13911112345")
    db.session.commit()
    page = phone()
    page.goto("/login")
    page.get_by_role("link", name="忘记密码？").click()
    expect(page.locator("h1")).to_have_text("忘记密码")
    page.get_by_label("手机号").fill(user.phone)
    button = page.locator("main [data-sms-code]")
    button.click()
    expect(page.locator("[data-sms-status]")).to_have_text("验证码已发送，10 分钟内有效。")
    expect(button).to_be_disabled()
    expect(button).to_have_text(re.compile(r"^\d+ 秒后重新获取$"))
    check_phone_page(page, "password-reset")
    page.locator("#f-code").fill(sms_texts.code_for(user.phone))
    page.get_by_label("新密码").fill(NEW_PASSWORD)
    page.locator("main").get_by_role("button", name="重设密码").click()
    expect(page.locator("main .flash").first).to_contain_text("密码已重设")

    page.get_by_label("手机号").fill(user.phone)
    page.get_by_label("密码", exact=True).fill(NEW_PASSWORD)
    page.locator("main").get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("main")).to_contain_text("您好，王阿姨。")

    page.goto("/account")
    page.get_by_role("button", name="更换手机号").click()
    page.get_by_label("新手机号").fill("13922223333")
    page.locator("main [data-sms-code]").click()
    expect(page.locator("[data-sms-status]")).to_have_text("验证码已发送，10 分钟内有效。")
    check_phone_page(page, "change-phone")
    page.locator("#f-code").fill(sms_texts.code_for("13922223333"))
    page.locator("main").get_by_role("button", name="更换", exact=True).click()
    expect(page.locator("main .flash").first).to_contain_text("手机号已更换")
    expect(page.locator("main")).to_contain_text("13922223333")
    assert fresh(user).phone == "13922223333" and user.phone_verified_at is not None


def test_a_second_code_within_the_minute_is_refused_on_the_page(phone, sms_texts):
    page = phone()
    page.goto("/register")
    page.get_by_label("手机号").fill("13933334444")
    button = page.locator("main [data-sms-code]")
    button.click()
    expect(page.locator("[data-sms-status]")).to_have_text("验证码已发送，10 分钟内有效。")
    other = phone()  # another browser on the same address, the same phone
    phone.expect_status("/sms-code")
    other.goto("/register")
    other.get_by_label("手机号").fill("13933334444")
    other.locator("main [data-sms-code]").click()
    expect(other.locator("[data-sms-status]")).to_have_text("操作过于频繁，请稍后再试。")
    expect(other.locator("main [data-sms-code]")).to_be_disabled()
