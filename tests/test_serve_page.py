"""The broker's page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) loads ``/``,
submits a need, sees results with their reasons, shortlists two and downloads the shortlist as XLSX and CSV; then
``/docs`` renders the API from the packaged Swagger UI.

A screenshot is kept at ``out/serve_page.png``. ``make test`` installs Chromium and its driver (``browser-deps``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the [serve] extra)")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not "
                                "installed (make test installs them: apt-get install chromium chromium-driver)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from serve_util import REPO, Server, build_index  # noqa: E402

SHOT = REPO / "out" / "serve_page.png"


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1100", "--lang=zh-CN"):
        opts.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait_file(folder: Path, suffix: str, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done:
            time.sleep(0.2)
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} file downloaded into {folder}: {list(folder.iterdir())}")


def test_page_matches_a_need_and_downloads_the_shortlist(tmp_path, achievements, browser):
    import openpyxl

    idx = build_index(achievements, tmp_path / "idx")
    with Server(idx) as srv:
        browser.get(srv.url + "/")
        wait = WebDriverWait(browser, 30)
        assert "成果" in browser.title
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#f-chain option")) > 10)  # options loaded
        browser.find_element(By.ID, "title").send_keys("集成电路芯片封装测试")
        browser.find_element(By.ID, "description").send_keys("需要晶圆级封装工艺，提高芯片良率。")
        browser.find_element(By.ID, "need-region").send_keys("西安市")
        browser.find_element(By.ID, "need-industry").send_keys("C3973")
        Select(browser.find_element(By.ID, "f-region")).select_by_value("关中")
        browser.find_element(By.ID, "submit").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results .result")))
        results = browser.find_elements(By.CSS_SELECTOR, "#results .result")
        assert results[0].get_attribute("data-id") == "A01"
        text = results[0].text
        assert "集成电路芯片封装测试工艺" in text and "共同关键词" in text and "封装" in text
        assert "同城" in text and "小类一致" in text  # agreement in words: same city, same 小类 (C3973)
        for r in results[:2]:
            r.find_element(By.CSS_SELECTOR, "button.add").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#shortlist li")) == 2)
        SHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SHOT))
        browser.find_element(By.ID, "download-xlsx").click()
        xlsx = _wait_file(browser.downloads, ".xlsx")
        rows = list(openpyxl.load_workbook(xlsx).active.iter_rows(values_only=True))
        assert rows[0][:3] == ("need_id", "achievement_id", "rank") and [r[1] for r in rows[1:]] == \
            [r.get_attribute("data-id") for r in results[:2]]
        browser.find_element(By.ID, "download-csv").click()
        csv = _wait_file(browser.downloads, ".csv")
        assert "A01" in csv.read_text(encoding="utf-8-sig")
        # nothing came from anywhere but the service itself
        origins = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
        assert set(origins) <= {srv.url}
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        # the offline API docs render the OpenAPI document (Swagger UI from the package, no CDN)
        browser.get(srv.url + "/docs")
        wait.until(lambda d: "/v1/match" in d.find_element(By.TAG_NAME, "body").text)
        assert "qcy-match" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info").text
        origins = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
        assert set(origins) <= {srv.url}
