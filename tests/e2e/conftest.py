"""Journeys in a real browser: the app served on a loopback port from the test's own database, Debian's Chromium
driven by Playwright at phone size, and checks of what a phone shows (width, tap targets, labels, contrast, focus).

Without Chromium or Playwright the journeys skip, saying why; with CI or CREDITS_E2E_REQUIRED=1 set they fail
instead, so a CI machine that lost its browser cannot pass by running none of them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from credits.extensions import db

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

    def open_phone():
        context = browser.new_context(base_url=live_server, viewport=PHONE, device_scale_factor=1, is_mobile=True,
                                      has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai")
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
    a visible focus, a header on one line; and, with CREDITS_SCREENSHOTS=1, keep a screenshot of it as
    docs/screenshots/<name>.png when it has a name."""
    page.wait_for_load_state("load")
    name = name or page.url
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
