"""Hostile strings from a tenant in every field the pages show, opened by an admin in a real
headless Chromium: nothing a tenant wrote runs, and every string reads as literal text."""

import json
from urllib.parse import quote

import pytest
import requests

from tests.conftest import API_KEY, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat, openai_error
from tests.keyring import issue
from tests.test_dashboard_browser import browser as chromium
from tests.test_dashboard_browser import text_of, visible

pytestmark = pytest.mark.slow
browser = chromium  # the dashboard test's fixture: Debian's chromium, headless
# Each would set window.__pwned (or the title) if it ever reached the DOM as markup.
HOSTILE = [
    "<img src=x onerror=\"window.__pwned=1;document.title='pwned'\">",
    '"><script>window.__pwned=2</script>',
    '</td></tr><svg onload="window.__pwned=3"><td>',
    "<iframe srcdoc=\"<script>parent.__pwned=4</script>\"></iframe>'-window.__pwned=5-'",
]
FAILURE = "<img src=y onerror=window.__pwned=6>vendor says no"
HOOK = 'http://127.0.0.1:9/hook?q="><img/src=x/onerror=window.__pwned=7>'
# Markup a page of ours never has; any of these in the DOM came from a tenant's string.
INJECTED = "img, svg, iframe, script:not([src]):not([type='application/json']), [onerror], [onload]"


def submit(base: str, key: str, vendor: FakeServer, model: str) -> str:
    body = {
        "provider": "openai_compatible",
        "model": model,
        "prompt": model,
        "metadata": {"note": model},
        "webhook_url": HOOK,
        "options": {"base_url": f"{vendor.url}/v1"},
    }
    answer = requests.post(
        f"{base}/api/v1/tasks", json=body, timeout=10, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["task_id"]


def start_batch(base: str, key: str) -> str:
    """A batch whose file name, metadata, custom ids and models are hostile."""
    headers = {"Authorization": f"Bearer {key}"}
    lines = [
        {
            "custom_id": model,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": f"openai_compatible/{model}",
                "messages": [{"role": "user", "content": model}],
            },
        }
        for model in HOSTILE
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    name = "<img src=x onerror=window.__pwned=9>.jsonl"
    uploaded = requests.post(
        f"{base}/v1/files",
        headers=headers,
        data={"purpose": "batch"},
        files={"file": (name, content)},
        timeout=10,
    )
    assert uploaded.status_code == 200, uploaded.text
    body = {
        "input_file_id": uploaded.json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"note": HOSTILE[1]},
    }
    made = requests.post(f"{base}/v1/batches", headers=headers, json=body, timeout=10)
    assert made.status_code == 200, made.text
    return made.json()["id"]


def assert_nothing_ran(browser, page: str, *, markup: bool = True) -> None:
    """No tenant handler ran, no CSP refusal; `markup`: none of INJECTED is on the page."""
    from selenium.webdriver.common.by import By

    assert browser.execute_script("return window.__pwned") is None, page
    assert browser.title != "pwned", page
    if markup:
        found = browser.find_elements(By.CSS_SELECTOR, INJECTED)
        assert [e.get_attribute("outerHTML") for e in found] == [], page
    refused = [
        e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]
    ]
    assert refused == [], f"{page}: the CSP refused something the page needed: {refused}"


def body_text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


def finished(base: str, task_id: str) -> bool:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    task = requests.get(f"{base}/api/v1/tasks/{task_id}", headers=headers, timeout=5).json()
    return task["status"] in ("completed", "failed")


@pytest.fixture
def vendor():
    with FakeServer() as fake:
        fake.reply(
            Reply(200, openai_chat(HOSTILE[0], model=HOSTILE[1])),  # a vendor is the tenant's too
            openai_error(400, FAILURE),
            Reply(200, openai_chat(HOSTILE[2], model=HOSTILE[3])),
        )
        yield fake


def sign_in(browser, base: str, page: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/signin/?next={page}")
    browser.find_element(By.NAME, "api_key").send_keys(API_KEY)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_hostile_strings_from_a_tenant_show_as_text_on_the_dashboard(processes, browser, vendor):
    base = processes.web(OPENAI_COMPATIBLE_BASE_URL=f"{vendor.url}/v1")
    _, tenant = issue("tasks", name="tenant")
    sign_in(browser, base, "/monitor/")
    wait_for(lambda: text_of(browser, "conn") == "live", what="the live socket")
    ids = [submit(base, tenant, vendor, model) for model in HOSTILE]
    batch = start_batch(base, tenant)
    wait_for(lambda: batch in text_of(browser, "batches"), what="the batch on the dashboard")
    for model in HOSTILE:  # queued: no remote worker yet
        wait_for(lambda m=model: visible(m) in visible(text_of(browser, "queue")), what=model)
    assert_nothing_ran(browser, "the dashboard's queue")
    processes.worker("remote", OPENAI_COMPATIBLE_BASE_URL=f"{vendor.url}/v1")
    wait_for(lambda: all(finished(base, i) for i in ids), what="the tasks to finish")
    wait_for(lambda: text_of(browser, "queue") == "empty", what="the queue to empty")
    shown = [f"openai_compatible / {visible(m)}" for m in HOSTILE]
    wait_for(lambda: visible(text_of(browser, "cur-model")) in shown, what="the task's model")
    wait_for(lambda: visible(FAILURE) in visible(text_of(browser, "logs")), what="the failure")
    assert "task.completed" in text_of(browser, "events")
    assert_nothing_ran(browser, "the dashboard after the run")


def test_hostile_strings_from_a_tenant_show_as_text_on_the_api_pages(processes, browser, vendor):
    base = processes.web()
    processes.worker("remote")
    _, tenant = issue("tasks", name="tenant")
    ids = [submit(base, tenant, vendor, model) for model in HOSTILE]
    wait_for(lambda: all(finished(base, i) for i in ids), what="the tasks to finish")
    sign_in(browser, base, "/api/v1/usage")
    pages = [f"/api/v1/tasks/{i}" for i in ids] + ["/api/v1/usage", "/api/v1/monitor/logs"]
    for page in pages:
        browser.get(f"{base}{page}")
        wait_for(lambda: body_text(browser), what=page)
        assert_nothing_ran(browser, page)
    for task_id, model in zip(ids, HOSTILE, strict=True):
        browser.get(f"{base}/api/v1/tasks/{task_id}")
        wait_for(lambda m=model: json.dumps(m) in body_text(browser), what=f"{model} on its page")
        assert json.dumps(HOOK) in body_text(browser)
        assert_nothing_ran(browser, task_id)


def test_a_hostile_next_on_the_sign_in_page_stays_a_value(processes, browser):
    from selenium.webdriver.common.by import By

    base = processes.web()
    hostile = '/"><script>window.__pwned=8</script><input value="'
    browser.get(f"{base}/signin/?next={quote(hostile)}")
    assert browser.find_element(By.NAME, "next").get_attribute("value") == hostile
    assert_nothing_ran(browser, "/signin/")


def test_swagger_ui_and_the_browsable_api_work_under_the_csp(processes, browser):
    from selenium.webdriver.common.by import By

    base = processes.web()
    sign_in(browser, base, "/api/docs/")
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"),
        what="Swagger UI's operations",
    )
    assert "SOP LLM API" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info").text
    assert_nothing_ran(browser, "/api/docs/", markup=False)  # its own icons
    browser.get(f"{base}/api/v1/keys")
    wait_for(lambda: '"keys"' in body_text(browser), what="the keys page")
    assert browser.execute_script("return typeof window.jQuery") == "function"  # its scripts ran
    assert_nothing_ran(browser, "/api/v1/keys")
