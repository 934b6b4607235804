"""The live dashboard in a real headless Chromium: a task's tokens arrive while it runs."""

import os
import shutil

import pytest
import requests

from tests.conftest import API_KEY, ROOT, wait_for

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver (make browser installs them)")
        pytest.skip("chromium/chromedriver not installed (make browser installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP refusals are logged
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def text_of(browser, element_id: str) -> str:
    """An element's text, or "" while the page that has it is still loading."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return browser.find_element(By.ID, element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def visible(text: str) -> str:
    """What a page shows of a text (WebDriver drops zero-width characters, folds spaces)."""
    return " ".join(text.replace("\u200b", "").split())


def test_the_dashboard_streams_a_running_task_s_tokens(processes, browser):
    from selenium.webdriver.common.by import By

    base = processes.web()
    processes.worker("gpu", gpu=True)
    requests.post(
        f"{base}/api/v1/models/load",
        json={"model": "gemma"},
        timeout=60,
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    browser.get(f"{base}/signin/?next=/monitor/")
    browser.find_element(By.NAME, "api_key").send_keys(API_KEY)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: text_of(browser, "conn") == "live", what="the live socket")
    task_id = requests.post(
        f"{base}/api/v1/tasks",
        timeout=5,
        json={
            "provider": "local",
            "model": "gemma",
            "prompt": "Once upon a time, in a small village,",
            "params": {"max_tokens": 160, "temperature": 0.7, "seed": 5},
        },
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).json()["task_id"]

    def task():
        return requests.get(
            f"{base}/api/v1/tasks/{task_id}",
            timeout=5,
            headers={"Authorization": f"Bearer {API_KEY}"},
        ).json()

    def tokens() -> str:
        return text_of(browser, "tokens")

    early = wait_for(lambda: len(tokens()) > 20 and tokens(), what="tokens on the page")
    assert task()["status"] == "processing"  # they arrived while it was still generating
    assert text_of(browser, "cur-id") == task_id
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "dashboard-streaming.png"))
    wait_for(lambda: task()["status"] == "completed", what="the task to finish", timeout=60)
    wait_for(
        lambda: text_of(browser, "cur-status") == "completed", what="the page to show completion"
    )
    final = tokens()
    assert len(final) > len(early) and final.startswith(early[:20])
    assert visible(final) == visible(task()["result"]["text"])
    browser.save_screenshot(str(SCREENSHOTS / "dashboard-completed.png"))
    print(f"screenshots: {SCREENSHOTS}")
