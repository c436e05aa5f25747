"""The playground page in headless Chromium from Debian (chromium + chromium-driver,
driven by python3-selenium) against the real binary. Screenshots go to
$CODEEXEC_ARTIFACTS (CTest: build/artifacts/browser), else a temporary directory."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from helpers import Service, assert_nothing_left  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("CODEEXEC_ARTIFACTS") or tempfile.mkdtemp(prefix="codeexec-browser-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def service(artifacts):
    svc = Service(log_path=artifacts / "service.log", name="codeexec-browser").start()
    yield svc
    code = svc.stop(timeout=30)
    svc.close_log()
    assert code == 0, f"service exited with {code}:\n{svc.log_tail(40)}"
    assert_nothing_left()


@pytest.fixture(scope="session")
def browser(artifacts):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are required: scripts/deps --test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    profile = tempfile.mkdtemp(prefix="codeexec-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,860"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
