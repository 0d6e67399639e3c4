"""A real browser for the tests of web pages (the documentation site, ``fer-bench report``).

Headless Chromium from the system's packages (Debian: ``apt-get install chromium chromium-driver``),
driven by Selenium. Tests that need it take the ``browser`` fixture (``tests/conftest.py``); where
Chromium, its driver or Selenium is missing they are skipped with the reason, never failed.

:func:`console_errors` reads what the page logged at the ``SEVERE`` level (uncaught exceptions,
failed loads), which a page test asserts is empty.
"""

from __future__ import annotations

import shutil
from typing import Any, Optional

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def _which(names: tuple[str, ...]) -> Optional[str]:
    return next((p for p in map(shutil.which, names) if p), None)


def why_unavailable() -> Optional[str]:
    """``None`` when a headless browser can be started, else why not (the skip reason)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if _which(CHROMIUM_NAMES) is None:
        return "no Chromium on PATH (Debian: apt-get install chromium chromium-driver)"
    if _which(DRIVER_NAMES) is None:
        return "no chromedriver on PATH (Debian: apt-get install chromium-driver)"
    return None


def start(offline: bool = False, width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium session; ``offline``: every network request fails (a page must not need one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM_NAMES)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_which(DRIVER_NAMES)))
    if offline:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    return driver


def console_errors(driver: Any) -> list[str]:
    """The messages the page logged at the SEVERE level since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
