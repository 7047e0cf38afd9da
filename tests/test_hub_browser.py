"""A person in Chromium: the login page, JupyterLab, a notebook in the AlertLab
kernel that queries the alert database. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG

pytest_plugins = ["hubfixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(90_000)
        yield page
        browser.close()


def test_login_page_to_jupyterlab_and_the_alertlab_kernel(hub, page, artifacts, alert_objects):
    name = hub.user(f"carol-{TAG}")
    page.goto(hub.url + "hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", "wrong password")
    page.click("#login_submit")
    assert page.locator(".login_error").inner_text().strip() == "Invalid username or password."
    page.screenshot(path=artifacts / "hub-login-error.png")

    page.fill("#username_input", name)
    page.fill("#password_input", hub.passwords[name])
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{name}/lab**")  # the hub starts the server and sends us there
    launcher = page.locator(".jp-Launcher")
    launcher.wait_for()
    page.screenshot(path=artifacts / "hub-jupyterlab.png")

    launcher.locator('.jp-LauncherCard[data-category="Notebook"][title="AlertLab (Python 3)"]').click()
    page.locator(".jp-NotebookPanel-toolbar .jp-KernelName").filter(has_text="AlertLab (Python 3)").wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    cell.click()
    page.keyboard.type(f'import alertlab.client as al\nal.query("{alert_objects["sql"]}")')
    page.keyboard.press("Shift+Enter")
    table = page.locator(".jp-OutputArea-output table.dataframe")
    table.wait_for()
    text = table.inner_text()
    for object_id, ndet in alert_objects["rows"]:
        assert object_id in text and str(ndet) in text
    page.screenshot(path=artifacts / "hub-alertlab-kernel.png")
