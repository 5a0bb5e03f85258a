"""Journeys in a real browser: the app served on a loopback port from the test's own database, Debian's Chromium
driven by Playwright at phone size, and checks of what a phone shows (width, tap targets, labels, contrast, focus).

Without Chromium or Playwright the journeys skip, saying why; with CI or CREDITS_E2E_REQUIRED=1 set they fail
instead, so a CI machine that lost its browser cannot pass by running none of them.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from credits.extensions import db
from tests.e2e.axe import check_axe

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CREDITS_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


E2E_REQUIRED = _flag("CI") or _flag("CREDITS_E2E_REQUIRED")
TAKE_SCREENSHOTS = _flag("CREDITS_SCREENSHOTS")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = _missing()
    if reason:
        if E2E_REQUIRED:
            pytest.fail(f"browser journeys cannot run: {reason}; CI/CREDITS_E2E_REQUIRED forbids skipping them")
        pytest.skip(f"browser journeys need a browser: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Chromium's sandbox refuses to start as root, which CI and these machines are.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The test's app on a free port of 127.0.0.1, one thread per request, as a browser reaches it."""
    db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    # The test body reads the database between the browser's requests. Outside a request every SQLite
    # transaction begins IMMEDIATE (credits/database.py) and would hold the write lock the server's requests
    # wait for; as a GET it begins deferred, and WAL lets its reads run beside the server's writes.
    with app.test_request_context("/", method="GET"):
        yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def phone(browser, live_server):
    """open_phone() → a new page in its own browser context (its own cookies: one person's phone), 390 × 844.

    JavaScript errors and console errors (a CSP refusal, a missing asset) fail the test when it ends; a test that
    opens a 4xx page on purpose says so first with open_phone.expect_status("/its/path")."""
    contexts, problems, expected = [], [], set()

    def open_phone(*, init_script: str | None = None, **options):
        """`options` for the browser context (a user agent), `init_script` run in each page before its own."""
        context = browser.new_context(**{
            "base_url": live_server, "viewport": PHONE, "device_scale_factor": 1, "is_mobile": True,
            "has_touch": True, "locale": "zh-CN", "timezone_id": "Asia/Shanghai", **options})
        if init_script:
            context.add_init_script(init_script)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append((f"{page.url}: {error}", None)))
        page.on("console", lambda message: message.type == "error" and problems.append(
            (f"{page.url}: console: {message.text}", message.location.get("url"))))
        return page

    open_phone.expect_status = expected.add
    yield open_phone
    for context in contexts:
        context.close()
    # A 4xx page the journey opened on purpose logs its status as a console error; that is not a fault. Anything
    # else that answered 4xx (a static file that is not there) is.
    faults = [text for text, url in problems
              if not (url and urlsplit(url).path in expected
                      and re.search(r"Failed to load resource: the server responded with a status of 4\d\d", text))]
    assert not faults, "errors in the browser:\n" + "\n".join(faults)


def fresh(obj):
    """`obj` as the database has it now: the server's threads commit what the test body then reads."""
    db.session.rollback()
    db.session.refresh(obj)
    return obj


# --- what a phone shows -------------------------------------------------------------------------------------

# Measured in the page: anything wider than the screen, anything tappable lower than 44 px (links inside a line of
# text excepted, as WCAG 2.5.8 does), fields without a label, an id used twice, and text below WCAG AA contrast
# against the colour actually behind it (4.5:1; 3:1 for large text). Disabled controls are exempt, as in WCAG 1.4.3.
PHONE_CHECKS = (Path(__file__).parent / "phone_checks.js").read_text()

# Tab from the top of the page: every control reached must show where the focus is (an outline ≥ 2 px in a colour
# one can see, or a visible ring it does not wear unfocused), and Tab must not leave the focus on <body> before the
# page's last control.
FOCUS_CHECK = (Path(__file__).parent / "focus_check.js").read_text()


def check_phone_page(page, name: str = "", *, tabs: int = 6) -> None:
    """Assert the page reads on a phone: no sideways scrolling, tap targets ≥ 44 px, labelled fields, AA contrast,
    no serious or critical axe-core violation, a visible focus, a header on one line; and, with
    CREDITS_SCREENSHOTS=1, keep a screenshot of it as docs/screenshots/<name>.png when it has a name."""
    page.wait_for_load_state("load")
    name = name or page.url
    check_axe(page, name)
    problems = page.evaluate(PHONE_CHECKS, PHONE["width"])
    assert not problems, f"{name} ({page.url}) on a phone:\n" + "\n".join(problems)
    items = page.locator("header.topbar nav > ul > li")
    boxes = [items.nth(i).bounding_box() for i in range(items.count())]
    assert max(b["y"] for b in boxes) < min(b["y"] + b["height"] for b in boxes), f"{name}: the header wraps"
    if TAKE_SCREENSHOTS and not name.startswith("http"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    # From the top: a blur alone leaves Tab's starting point at the control that had the focus (a field the test
    # filled), so focus a mark at the top of the page and take it away again.
    page.evaluate("""() => {
        const top = document.createElement("span");
        top.tabIndex = -1;
        document.body.prepend(top);
        top.focus();
        top.remove();
        window.scrollTo(0, 0);
    }""")
    for pressed in range(1, tabs + 1):
        page.keyboard.press("Tab")
        problem = page.evaluate(FOCUS_CHECK, pressed)
        assert not problem, f"{name}: {problem}"
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


# --- the words a person reads, in each language ----------------------------------------------------------------

# What the English pages say where the Chinese ones say the key: the journeys assert the words a person reads.
EN = {
    "English": "English",
    "请填写此项。": "Please fill this in.",
    "枚": "coins",
    "%s 枚": "%s coins",
    "登录": "Log in",
    "手机号": "Mobile number",
    "密码": "Password",
    "姓名": "Name",
    "注册": "Sign up",
    "注册成为志愿者": "Sign up as a volunteer",
    "注册成功，欢迎加入！": "Registration successful. Welcome aboard!",
    "您好，%s。": "Hello, %s.",
    "菜单": "Menu",
    "项目": "Projects",
    "即将开放": "Opening soon",
    "认领中": "Open for claims",
    "查看详情": "View details",
    "立即认领": "Claim now",
    "认领成功！您已获得一个名额，请按时参加。": "Claimed! You have a place; please attend on time.",
    "已确认": "Confirmed",
    "组织项目": "Organise projects",
    "管理项目": "Manage project",
    "签到屏": "Check-in screen",
    "签到 / 签退": "Check in / out",
    "六位签到码": "Six-digit check-in code",
    "签到": "Check in",
    "签退": "Check out",
    "签到成功！": "Checked in!",
    "正在服务中": "on duty",
    "已自动通过，获得 %s 公益币": "approved automatically. You earned %s Public-welfare coins",
    "钱包": "Wallet",
    "发放": "Issued",
    "公益币兑换": "Spend coins",
    "领券": "Get voucher",
    "处理中…": "Working…",
    "兑换成功！到店时出示下面的二维码或券码。": "Done! Show the QR code or the code below at the shop.",
    "待使用": "Ready to use",
    "已使用": "Used",
    "核销": "Redeem",
    "券码": "Code",
    "查询": "Look up",
    "确认核销": "Confirm redemption",
    "核销成功：%s，%s 公益币（%s）。": "Redeemed: %s, %s coins (%s).",
    "今日与对账": "Today & statement",
    "共 %s 张，%s 公益币": "%s vouchers, %s coins in all",
    "新建项目": "New project",
    "项目名称": "Project name",
    "类别": "Category",
    "介绍": "Description",
    "地点": "Location",
    "开始时间": "Start time",
    "结束时间": "End time",
    "名额": "Places",
    "保存为草稿": "Save as draft",
    "草稿已保存。": "Draft saved.",
    "开放认领时间": "Claims open at",
    "发布": "Publish",
    "已发布，将于": "Published. Claims open at",
    "认领名单": "Claim roster",
    "已确认（按认领先后）": "Confirmed (in order of claiming)",
    "候补（按排队顺序）": "Waiting list (in queue order)",
    "候补 %s": "Waiting %s",
    "审核时长": "Review hours",
    "补录": "Added manually",
    "待审核": "Pending review",
    "通过": "Approve",
    "已通过 %s 的 %s，发放 %s 公益币。": "Approved %s for %s and issued %s Public-welfare coins.",
    "没有符合条件的记录。": "No matching records.",
    "页面不存在": "Page not found",
    "回到首页": "Back to home",
    "没有权限": "Permission denied",
    "您还没有认领项目。": "You have not claimed any projects yet.",
    "去认领项目": "Find projects to claim",
    "报表": "Reports",
    "报表概览": "Reports overview",
    "开始日期": "Start date",
    "结束日期": "End date",
    "查看": "Show",
    "核定时长": "Approved hours",
    "%s 小时": "%s h",
    "发布的项目": "Projects held",
    "认领率": "Fill rate",
    "%s / %s 个名额": "%s of %s places",
    "项目统计": "Projects",
    "已核定时长（小时）": "Approved hours",
    "导出 CSV": "Export CSV",
    "还没有人认领这个项目。": "Nobody has claimed this project yet.",
    "我的时长": "My hours",
    "补录时长": "Add hours manually",
    "说明（选填）": "Note (optional)",
    "提交补录": "Submit hours",
    "补录已提交，等待协调员审核。": "Hours submitted, awaiting coordinator review.",
    # the tour's pages (test_tour.py)
    "我的认领": "My claims",
    "我的兑换券": "My vouchers",
    "通过所选": "Approve selected",
    "驳回所选": "Reject selected",
    "忘记签到？补录时长": "Forgot to check in? Add hours manually",
    "志愿服务证明": "Volunteer service certificate",
    "已出具的证明": "Issued certificates",
    "我的账号": "My account",
    "服务管理": "Services",
    "商户": "Merchants",
    "服务": "Service",
    "店员": "Staff",
    "优秀服务项目评审": "Outstanding project review",
    "候选项目": "Candidate projects",
    "评审人": "Reviewers",
    "进行中": "Open",
    "用户": "Users",
    "政策设置": "Policy settings",
    "审计记录": "Audit log",
    "价格（公益币）": "Price (coins)",
    "每人同时进行中的认领上限": "Maximum active claims per person",
}


class Words:
    """The words of one language: words("登录") is what the page shows in it."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, chinese: str, *args) -> str:
        text = chinese if self.lang == "zh_CN" else EN[chinese]
        return text % args if args else text

    @property
    def screenshots(self) -> bool:
        """Screenshots show the default, Chinese UI."""
        return self.lang == "zh_CN"


@pytest.fixture(params=["zh_CN", "en"], ids=["zh", "en"])
def words(request) -> Words:
    return Words(request.param)


@pytest.fixture
def sms_texts(app, tmp_path):
    """Registration needs the SMS code, as outside tests; the texts go to a file, and sms_texts.code_for(phone)
    waits for the newest code sent to the phone and returns it, as a person reads it off their phone."""
    from credits.notifications.channels import read_file_backend

    path = tmp_path / "sms.jsonl"
    app.config["SMS_BACKEND"] = f"file:{path}"
    app.config["PHONE_VERIFICATION_DEFAULT"] = "required"

    class Texts:
        def code_for(self, phone: str, timeout: float = 10) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                sent = [t for t in read_file_backend(str(path)) if t["to"] == phone]
                if sent:
                    return re.search(r"\d{6}", sent[-1]["text"]).group()
                time.sleep(0.1)
            raise AssertionError(f"no SMS code reached {phone}")

    return Texts()
