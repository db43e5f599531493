"""Issue 17: a real browser (Debian's chromium via selenium) against the real page and server."""

import os
import shutil
from pathlib import Path

import pytest

from dalle.server.app import create_app
from dalle.server.models import ModelRegistry, load_model

from .test_openai_client import LiveServer

selenium = pytest.importorskip("selenium", reason="selenium is a test dependency")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = pytest.mark.skipif(
    CHROMEDRIVER is None or CHROMIUM is None,
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1100,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def live():
    registry = ModelRegistry()
    registry.add(load_model("shapes"))
    server = LiveServer(create_app(registry))
    yield server
    server.stop()


def test_the_page_draws_images_and_says_what_went_wrong(browser, live, tmp_path):
    browser.get(live.base + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#model option")] == ["shapes"]
    prompt = browser.find_element(By.ID, "prompt")
    prompt.send_keys("a small red circle to the left of a large blue square")
    n = browser.find_element(By.ID, "n")
    n.clear()
    n.send_keys("2")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .card a[download]")) == 2)
    images = browser.find_elements(By.CSS_SELECTOR, "#results .card img")
    assert all(img.get_attribute("src").startswith("data:image/png;base64,") for img in images)
    assert browser.find_element(By.ID, "error").text == ""
    shot = (
        DOCS / "server-page.png" if os.environ.get("DALLE_UPDATE_DOCS") else tmp_path / "page.png"
    )
    browser.save_screenshot(str(shot))  # DALLE_UPDATE_DOCS=1 refreshes the one in docs/
    # an error from the API is shown in words
    browser.execute_script("document.getElementById('prompt').value = 'x'.repeat(20000)")
    browser.find_element(By.ID, "go").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "error"), "'prompt'"))
    assert "characters" in browser.find_element(By.ID, "error").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#results .card")


def test_an_uploaded_image_of_another_size_is_fitted_and_inpainted(browser, live, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains

    photo = Image.new("RGB", (150, 90), (200, 40, 40))
    photo.paste((30, 30, 220), (30, 0, 120, 90))  # the centred square is blue
    path = tmp_path / "photo.png"
    photo.save(path)
    browser.get(live.base + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    browser.find_element(By.ID, "upload").send_keys(str(path))
    wait.until(lambda d: d.find_element(By.ID, "editor").is_displayed())
    size = browser.execute_script(
        "const c = document.getElementById('base'); return [c.width, c.height]"
    )
    assert size == [64, 64]  # the shapes pipeline's size, whatever the upload's
    centre = browser.execute_script(
        "return Array.from(document.getElementById('base').getContext('2d')"
        ".getImageData(32, 32, 1, 1).data.slice(0, 3))"
    )
    assert abs(centre[0] - 30) < 8 and abs(centre[2] - 220) < 8  # the centred square, scaled
    mask = browser.find_element(By.ID, "mask")
    ActionChains(browser).move_to_element(mask).click_and_hold().move_by_offset(
        10, 5
    ).release().perform()
    browser.find_element(By.ID, "edit-prompt").clear()
    browser.find_element(By.ID, "edit-prompt").send_keys("a red circle")
    browser.find_element(By.ID, "inpaint").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .card img")
               or d.find_element(By.ID, "error").text)  # fmt: skip
    assert browser.find_element(By.ID, "error").text == ""
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results .card img")) >= 1


def test_one_drawing_at_a_time_and_a_cancel_that_frees_the_page(browser, live):
    browser.get(live.base + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    browser.find_element(By.ID, "prompt").send_keys("a red circle")
    n = browser.find_element(By.ID, "n")
    n.clear()
    n.send_keys("10")
    go, cancel = browser.find_element(By.ID, "go"), browser.find_element(By.ID, "cancel")
    assert not cancel.is_displayed()
    browser.execute_script("document.getElementById('go').click(); "
                           "document.getElementById('go').click();")  # fmt: skip
    assert go.get_attribute("disabled") is not None and cancel.is_displayed()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results .card")) == 10  # one request
    cancel.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Cancelled."))
    assert go.get_attribute("disabled") is None and not cancel.is_displayed()
    assert browser.find_element(By.ID, "error").text == ""
    # the page draws again at once
    n.clear()
    n.send_keys("1")
    go.click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .card a[download]")) == 1)
