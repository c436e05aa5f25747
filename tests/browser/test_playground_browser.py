"""Drives the playground like a person: Python that prints and plots (the text shows
while it runs, the image renders), JavaScript, a timeout, an interrupted cell, a
stateful sandbox used twice. Screenshots of each state are saved as artefacts."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait


def _wait(driver, predicate, timeout, message):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: predicate(d), message=message)


@pytest.fixture
def page(browser, service):
    browser.set_window_size(1280, 860)
    browser.get(service.base_url + "/")
    _wait(browser, lambda d: d.find_element(By.ID, "st-sandboxes").text.isdigit(), 10,
          "the status strip never showed /health numbers")
    return browser


def set_code(driver, code: str):
    driver.execute_script("document.getElementById('code').value = arguments[0];", code)


def choose(driver, language: str, mode: str = "oneshot", timeout_s: int = 30):
    Select(driver.find_element(By.ID, "language")).select_by_value(language)
    driver.find_element(By.CSS_SELECTOR, f"input[name=mode][value={mode}]").click()
    field = driver.find_element(By.ID, "timeout")
    field.clear()
    field.send_keys(str(timeout_s))


def state(driver) -> str:
    return driver.execute_script("return document.body.dataset.state")


def output(driver) -> str:
    return driver.find_element(By.ID, "output").text


def verdict(driver) -> str:
    return driver.find_element(By.ID, "verdict").get_attribute("data-verdict") or ""


def finished_runs(driver) -> int:
    return int(driver.execute_script("return document.body.dataset.runs || '0'"))


def run_and_wait(driver, timeout=60):
    before = finished_runs(driver)
    driver.find_element(By.ID, "run").click()
    _wait(driver, lambda d: finished_runs(d) > before, timeout, "the run never finished")


def shot(driver, artifacts, name):
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000, f"screenshot {path} is empty"


def test_python_prints_while_running_and_plots(page, artifacts):
    choose(page, "python")
    set_code(page, "\n".join([
        "import time",
        "import matplotlib.pyplot as plt",
        "print('tick 0', flush=True)",
        "time.sleep(1.5)",
        "print('tick 1', flush=True)",
        "plt.plot([1, 2, 3, 4], [1, 4, 9, 16])",
        "plt.title('squares')",
        "plt.show()",
        "sum(range(10))",
    ]))
    page.find_element(By.ID, "run").click()
    # The first line shows while the cell still sleeps: streamed, not at the end.
    _wait(page, lambda d: "tick 0" in output(d), 20, "stdout never streamed")
    assert state(page) == "running" and "tick 1" not in output(page), output(page)
    _wait(page, lambda d: state(d) == "idle", 60, "the run never finished")
    assert verdict(page) == "ok", page.find_element(By.ID, "verdict").text
    assert "tick 1" in output(page)
    img = page.find_element(By.CSS_SELECTOR, "#results img")
    _wait(page, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100,
          10, "the PNG never rendered")
    assert "45" in page.find_element(By.ID, "results").text
    assert "wall" in page.find_element(By.ID, "usage").text and "peak memory" in page.find_element(By.ID, "usage").text
    shot(page, artifacts, "python-plot")


def test_html_table(page, artifacts):
    choose(page, "python")
    set_code(page, "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, 19.0]})")
    run_and_wait(page)
    assert verdict(page) == "ok"
    frame = page.find_element(By.CSS_SELECTOR, "#results iframe")
    assert frame.get_attribute("sandbox") == "", "HTML results must run without scripts"
    page.switch_to.frame(frame)
    try:
        cells = [td.text for td in page.find_elements(By.CSS_SELECTOR, "td")]
    finally:
        page.switch_to.default_content()
    assert "Oslo" in cells and "19.0" in cells, cells
    shot(page, artifacts, "html-table")


def test_javascript(page, artifacts):
    choose(page, "javascript")
    set_code(page, "console.log('from node', process.version.startsWith('v'));\n[1, 2, 3].map((n) => n * n)")
    run_and_wait(page)
    assert verdict(page) == "ok"
    assert "from node true" in output(page)
    assert "[ 1, 4, 9 ]" in page.find_element(By.ID, "results").text
    shot(page, artifacts, "javascript")


def test_error_with_traceback(page, artifacts):
    choose(page, "python")
    set_code(page, "def f():\n    return 1 / 0\n\nf()")
    run_and_wait(page)
    assert verdict(page) == "error"
    error = page.find_element(By.ID, "error")
    assert error.is_displayed()
    assert "ZeroDivisionError" in page.find_element(By.ID, "error-title").text
    assert "line 2" in page.find_element(By.ID, "error-traceback").text
    shot(page, artifacts, "error")


def test_timeout_verdict(page, artifacts):
    choose(page, "python", timeout_s=1)
    set_code(page, "print('spinning', flush=True)\nwhile True:\n    pass")
    run_and_wait(page, timeout=30)
    assert verdict(page) == "timeout", page.find_element(By.ID, "verdict").text
    assert "TimeoutError" in page.find_element(By.ID, "error-title").text
    assert "spinning" in output(page)
    shot(page, artifacts, "timeout")


def test_stateful_sandbox_twice_then_interrupt(page, artifacts):
    choose(page, "python", mode="sandbox")
    assert page.find_element(By.ID, "sandbox-bar").is_displayed()
    set_code(page, "x = 41\nprint('stored')")
    run_and_wait(page)
    assert verdict(page) == "ok" and "stored" in output(page)
    sandbox_id = page.find_element(By.ID, "sandbox-id").text
    assert sandbox_id and " " not in sandbox_id, sandbox_id
    set_code(page, "x + 1")
    run_and_wait(page)
    assert verdict(page) == "ok"
    assert "42" in page.find_element(By.ID, "results").text
    assert page.find_element(By.ID, "sandbox-id").text == sandbox_id, "the same sandbox"

    # A long cell, stopped from the page: interrupted, the sandbox keeps its state.
    set_code(page, "import time\nfor i in range(600):\n    print('working', i, flush=True)\n    time.sleep(0.1)")
    page.find_element(By.ID, "run").click()
    _wait(page, lambda d: "working 2" in output(d), 20, "the long cell never printed")
    stop = page.find_element(By.ID, "stop")
    assert stop.is_enabled()
    stop.click()
    _wait(page, lambda d: state(d) == "idle", 15, "Stop did not end the cell")
    assert "KeyboardInterrupt" in page.find_element(By.ID, "error-title").text
    assert "working 599" not in output(page)
    shot(page, artifacts, "interrupted")
    set_code(page, "x + 1")
    run_and_wait(page)
    assert "42" in page.find_element(By.ID, "results").text, "state kept after the interrupt"
    page.find_element(By.ID, "sandbox-kill").click()
    _wait(page, lambda d: not d.find_element(By.ID, "sandbox-kill").is_enabled(), 5, "kill did nothing")


def test_stop_one_shot(page):
    choose(page, "python")
    set_code(page, "import time\nprint('long', flush=True)\ntime.sleep(60)")
    page.find_element(By.ID, "run").click()
    _wait(page, lambda d: "long" in output(d), 20, "never printed")
    page.find_element(By.ID, "stop").click()
    _wait(page, lambda d: state(d) == "idle", 10, "Stop did not end the one-shot run")
    assert verdict(page) == "killed"
    # The next run works (a new WebSocket).
    set_code(page, "print('again')")
    run_and_wait(page)
    assert verdict(page) == "ok" and "again" in output(page)


def test_keyboard_and_labels(page):
    unlabeled = page.execute_script("""
        return Array.from(document.querySelectorAll('input, select, textarea, button'))
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !(el.tagName === 'BUTTON' && el.textContent.trim()))
          .map(el => el.outerHTML.slice(0, 80));""")
    assert unlabeled == [], unlabeled
    choose(page, "python")
    editor = page.find_element(By.ID, "code")
    set_code(page, "")
    editor.click()
    editor.send_keys("if True:", Keys.ENTER, Keys.TAB, "print('keyboard')")
    assert "    print('keyboard')" in editor.get_attribute("value")
    editor.send_keys(Keys.CONTROL, Keys.ENTER)
    _wait(page, lambda d: "keyboard" in output(d) and state(d) == "idle", 30, "Ctrl+Enter did not run")


def test_narrow_screen(page, artifacts):
    page.set_window_size(420, 900)
    _wait(page, lambda d: d.execute_script("return window.innerWidth") <= 420, 5, "the window did not shrink")
    overflow = page.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 420px window"
    shot(page, artifacts, "narrow")
