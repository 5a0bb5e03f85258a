"""Posters: size, a QR that decodes to the right page, Chinese text that is drawn and stays in its box, who may
have which poster, the cache, and the rate limit."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import zxingcpp
from PIL import Image, ImageChops

from credits.extensions import db
from credits.merchants.models import Service
from credits.projects import services as projects
from credits.share import content, posters
from credits.timeutil import utcnow

FONT = posters.find_cjk_font()


@pytest.fixture(autouse=True)
def poster_cache(app, tmp_path):
    """Each test draws into its own cache, so one test's posters are not another's cache hits."""
    app.config["POSTER_CACHE_DIR"] = str(tmp_path / "posters")


@pytest.fixture
def in_request(app):
    """Posters drawn directly need a request for their URLs and language, as in a view."""
    with app.test_request_context("/"):
        yield


def _image(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/png"
    return Image.open(io.BytesIO(response.data))


def _qr_texts(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image.convert("L"))]


def _published(coordinator, title="健康加油站", **extra):
    now = utcnow()
    project = projects.create_project(
        {"title": title, "category": "健康服务", "location": "奉城镇社区服务中心", "capacity": 20,
         "starts_at": now + timedelta(days=3), "ends_at": now + timedelta(days=3, hours=2), **extra},
        actor=coordinator)
    projects.publish(project, actor=coordinator, publish_at=now + timedelta(days=1))
    db.session.commit()
    return project


def _shop(make_merchant, coordinator, services=3):
    shop = make_merchant(name="奉城老街洗车行")
    for i in range(services):
        db.session.add(Service(merchant_id=shop.id, name=f"精致洗车{i + 1}", price=10 + i))
    db.session.commit()
    return shop


def test_project_poster_is_1080_wide_and_its_qr_opens_the_project_page(client, coordinator):
    project = _published(coordinator)
    image = _image(client.get(f"/api/v1/projects/{project.id}/poster.png"))
    assert image.size == (posters.WIDTH, posters.HEIGHT)
    assert _qr_texts(image) == [f"http://localhost/projects/{project.id}"]


def test_qr_and_share_card_use_the_configured_public_base_url(app, client, coordinator):
    app.config["PUBLIC_BASE_URL"] = "https://gongyi.fengcheng.example/"
    project = _published(coordinator)
    image = _image(client.get(f"/projects/{project.id}/poster.png"))
    assert _qr_texts(image) == [f"https://gongyi.fengcheng.example/projects/{project.id}"]


def test_merchant_poster_lists_its_services_and_its_qr_opens_the_shop_page(app, client, coordinator, make_merchant):
    shop = _shop(make_merchant, coordinator, services=9)
    image = _image(client.get(f"/api/v1/merchants/{shop.id}/poster.png"))
    assert image.width == 1080
    assert _qr_texts(image) == [f"http://localhost/merchants/{shop.id}"]
    with app.test_request_context("/"):
        poster = posters.draw(content.merchant_poster(shop), FONT)
    # Title, address, the first six services and the line counting the other three, all above the QR.
    assert len(poster.text_boxes) == 1 + 1 + content.SERVICES_SHOWN + 1
    assert max(box.bottom for box in poster.text_boxes) < poster.qr.y


def test_the_shop_page_the_qr_opens_shows_the_shop(client, coordinator, make_merchant):
    shop = _shop(make_merchant, coordinator)
    page = client.get(f"/merchants/{shop.id}").get_data(as_text=True)
    assert "奉城老街洗车行" in page and "精致洗车1" in page


def test_another_organisations_coordinator_gets_no_checkin_sheet(client, login, coordinator, make_user, make_org):
    project = _published(coordinator)
    other = make_user("coordinator", name="别的协调员", organization=make_org("别的组织"))
    login(other)
    assert client.get(f"/coordinate/projects/{project.id}/checkin-sheet.png").status_code == 403


def test_checkin_sheet_qr_opens_the_checkin_page(browser, coordinator):
    project = _published(coordinator)
    signed_in = browser(coordinator)
    image = _image(signed_in.get(f"/coordinate/projects/{project.id}/checkin-sheet.png"))
    assert image.size == posters.A4
    assert _qr_texts(image) == [f"http://localhost/checkin/{project.id}"]


def test_text_area_of_a_poster_is_not_blank(coordinator, in_request):
    with_title = posters.draw(content.project_poster(_published(coordinator, title="变废为宝")), FONT)
    box = with_title.title.box
    region = with_title.image.crop((box.x, box.y, box.right, box.bottom))
    blank = Image.new("RGB", region.size, posters.PAPER)
    inked = ImageChops.difference(region, blank).convert("L").point(lambda v: 255 if v > 60 else 0)
    # 变废为宝 at 76 px: thousands of dark pixels, where a missing font would leave boxes or nothing.
    assert inked.getbbox() is not None
    assert inked.histogram()[255] > 3000


def test_a_40_character_title_stays_inside_its_box(coordinator, in_request):
    title = "奉城镇党建引领社区健康加油站暨垃圾分类变废为宝啄木鸟行动志愿服务项目二期主题活动"
    assert len(title) == 40
    drawn = posters.draw(content.project_poster(_published(coordinator, title=title)), FONT)
    block = drawn.title
    assert 1 < len(block.lines) <= 3 and not block.truncated
    assert "".join(block.lines) == title
    for left, top, right, bottom in block.extents:
        assert block.box.x <= left and right <= block.box.right
        assert block.box.y <= top and bottom <= block.box.bottom


def test_an_absurd_title_is_cut_with_an_ellipsis_inside_its_box():
    block = posters.layout_text("公益" * 500, FONT, posters.Box(80, 200, 920, 290), (76, 60, 46), 3)
    assert len(block.lines) <= 3 and block.truncated
    for left, _top, right, bottom in block.extents:
        assert left >= 80 and right <= 1000 and bottom <= 490


def test_emoji_and_control_characters_are_dropped_not_drawn_as_boxes(client, coordinator):
    assert posters.printable("🎉健康\u200d加油站🚀\x07  第 2 期") == "健康加油站 第 2 期"
    project = _published(coordinator, title="🎉🎉🎉健康加油站🚀" + "😀" * 30)
    assert _image(client.get(f"/api/v1/projects/{project.id}/poster.png")).width == 1080


def test_a_long_latin_word_is_split_to_fit():
    block = posters.layout_text("W" * 200, FONT, posters.Box(0, 0, 500, 1000), (40,), 30)
    assert all(right <= 500 for _, _, right, _ in block.extents)


def test_a_draft_has_no_poster_for_the_public_but_has_one_for_its_coordinator(
        client, browser, token_for, coordinator, volunteer):
    now = utcnow()
    draft = projects.create_project(
        {"title": "草稿项目", "category": "健康服务", "location": "奉城", "capacity": 5,
         "starts_at": now + timedelta(days=3), "ends_at": now + timedelta(days=3, hours=1)}, actor=coordinator)
    db.session.commit()
    assert client.get(f"/api/v1/projects/{draft.id}/poster.png").status_code == 404
    assert client.get(f"/projects/{draft.id}/poster.png").status_code == 404
    assert client.get(f"/api/v1/projects/{draft.id}/poster.png",
                      headers=token_for(volunteer)).status_code == 404
    mine = client.get(f"/api/v1/projects/{draft.id}/poster.png", headers=token_for(coordinator))
    assert _image(mine).width == 1080
    assert "public" not in mine.headers["Cache-Control"]
    assert browser(coordinator).get(f"/projects/{draft.id}/poster.png").status_code == 200


def test_a_cancelled_project_poster_is_stamped(client, coordinator):
    project = _published(coordinator)
    before = _image(client.get(f"/api/v1/projects/{project.id}/poster.png")).convert("RGB")
    projects.cancel_project(project, actor=coordinator)
    db.session.commit()
    after = _image(client.get(f"/api/v1/projects/{project.id}/poster.png")).convert("RGB")
    # The stamp is red across the middle, where the uncancelled poster had none.
    middle = (200, 500, 880, 1000)

    def red(image):
        data = image.crop(middle).tobytes()
        return sum(1 for i in range(0, len(data), 3) if data[i] > 150 and data[i + 1] < 90 and data[i + 2] < 90)

    assert red(after) > red(before) + 5000


def test_a_changed_project_gets_a_new_poster_and_an_unchanged_one_answers_304(client, coordinator, volunteer):
    project = _published(coordinator)
    first = client.get(f"/api/v1/projects/{project.id}/poster.png")
    etag = first.headers["ETag"]
    again = client.get(f"/api/v1/projects/{project.id}/poster.png", headers={"If-None-Match": etag})
    assert again.status_code == 304
    projects.update_project(project, {"location": "奉城镇文化活动中心"}, actor=coordinator)
    db.session.commit()
    changed = client.get(f"/api/v1/projects/{project.id}/poster.png", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_posters_are_drawn_once_and_then_read_from_the_cache(app, client, coordinator, monkeypatch):
    project = _published(coordinator)
    drawn = []
    real = posters.draw
    monkeypatch.setattr(posters, "draw", lambda *a: drawn.append(1) or real(*a))
    for _ in range(3):
        assert client.get(f"/api/v1/projects/{project.id}/poster.png").status_code == 200
    assert len(drawn) == 1


def test_a_poster_storm_is_rate_limited(app, client, coordinator):
    app.config["POSTER_RATE_LIMIT"] = "5 per minute"
    project = _published(coordinator)
    statuses = [client.get(f"/api/v1/projects/{project.id}/poster.png").status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3
    assert client.get(f"/api/v1/projects/{project.id}/poster.png").json["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("path", ["/api/v1/projects/999999/poster.png", "/api/v1/merchants/999999/poster.png",
                                  "/projects/999999/poster.png", "/merchants/999999"])
def test_unknown_ids_are_404(client, path):
    assert client.get(path).status_code == 404


def test_no_font_is_a_clear_error(tmp_path):
    with pytest.raises(posters.FontMissing):
        posters.find_cjk_font(str(tmp_path / "none.ttf"))


def test_coordinators_and_staff_have_download_buttons_that_work(browser, coordinator, make_merchant, volunteer):
    from tests.merchants.helpers import make_staff

    project = _published(coordinator)
    as_coordinator = browser(coordinator)
    page = as_coordinator.get(f"/projects/{project.id}").get_data(as_text=True)
    for path in (f"/projects/{project.id}/poster.png", f"/coordinate/projects/{project.id}/checkin-sheet.png"):
        assert f'href="{path}"' in page
        assert as_coordinator.get(path).status_code == 200
    assert "checkin-sheet.png" not in browser(volunteer).get(f"/projects/{project.id}").get_data(as_text=True)
    shop = _shop(make_merchant, coordinator)
    staff = make_staff(shop, coordinator)
    assert f'href="/merchants/{shop.id}/poster.png"' in browser(staff).get("/shop").get_data(as_text=True)
    assert f'href="/merchants/{shop.id}/poster.png"' in as_coordinator.get(
        f"/coordinate/merchants/{shop.id}").get_data(as_text=True)


def test_the_page_and_the_api_count_against_one_poster_limit(app, client, coordinator):
    app.config["POSTER_RATE_LIMIT"] = "4 per minute"
    project = _published(coordinator)
    for path in ("/api/v1/projects/{}/poster.png", "/projects/{}/poster.png") * 2:
        assert client.get(path.format(project.id)).status_code == 200
    assert client.get(f"/projects/{project.id}/poster.png").status_code == 429


def test_a_host_without_a_chinese_font_answers_503_not_500_and_says_why_in_the_log(app, client, coordinator, caplog):
    project = _published(coordinator)
    app.config["POSTER_FONT"] = "/nonexistent/font.ttf"
    response = client.get(f"/api/v1/projects/{project.id}/poster.png")
    assert response.status_code == 503 and response.json["error"]["code"] == "unavailable"
    assert "POSTER_FONT /nonexistent/font.ttf is not a file" in caplog.text
