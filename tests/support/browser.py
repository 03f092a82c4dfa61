"""Headless Chromium from the operating system's packages, driven by Selenium for the console's browser tests.

The browser is skipped only when it is absent outside CI; with ``CI=true`` a missing browser fails the test (CI
installs it: .ci/run). Selenium blocks, and the app under test runs on the test's event loop, so every call
goes through a thread (``Browser``)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def _found(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return next((p for p in extra if os.path.exists(p)), None)


def chromium_paths() -> tuple[str, str]:
    """(browser, driver) paths, or skip (fail under CI) when either is not installed."""
    browser = _found(BROWSERS)
    driver = _found(DRIVERS, ("/usr/lib/chromium/chromedriver",))
    if browser is None or driver is None:
        why = "headless Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    return browser, driver


def new_driver(width: int = 1280, height: int = 900, lang: str = "en") -> webdriver.Chrome:
    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", f"--lang={lang}", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


class Browser:
    """A Chrome session whose blocking calls run in a thread, so the app on this event loop keeps answering."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base.rstrip("/")

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def get(self, path: str) -> None:
        await self._call(self.driver.get, self.base + path)

    async def find(self, css: str) -> WebElement:
        found: WebElement = await self._call(self.driver.find_element, By.CSS_SELECTOR, css)
        return found

    async def all(self, css: str) -> list[WebElement]:
        found: list[WebElement] = await self._call(self.driver.find_elements, By.CSS_SELECTOR, css)
        return found

    async def texts(self, css: str) -> list[str]:
        """The text of every element ``css`` selects."""

        def read() -> list[str]:
            return [str(e.text) for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

        found: list[str] = await self._call(read)
        return found

    async def attrs(self, css: str, name: str) -> list[str]:
        """Attribute ``name`` of every element ``css`` selects ('' where it is absent)."""

        def read() -> list[str]:
            return [e.get_attribute(name) or "" for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

        found: list[str] = await self._call(read)
        return found

    async def text(self, css: str = "body") -> str:
        text: str = await self._call(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text)
        return text

    async def click(self, css: str) -> None:
        """Click what navigates (a link, a form's button) and wait until the next page has loaded."""

        def go() -> None:
            old = self.driver.find_element(By.TAG_NAME, "html")
            self.driver.find_element(By.CSS_SELECTOR, css).click()
            wait = WebDriverWait(self.driver, 15)
            wait.until(lambda _: _detached(old))
            wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

        await self._call(go)

    async def type(self, css: str, value: str) -> None:
        element = await self.find(css)
        await self._call(element.send_keys, value)

    async def path(self) -> str:
        url: str = await self._call(lambda: self.driver.current_url)
        return url[len(self.base) :] if url.startswith(self.base) else url

    async def script(self, source: str, *args: Any) -> Any:
        return await self._call(self.driver.execute_script, source, *args)

    async def cookies(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call(self.driver.get_cookies)
        return found

    async def screenshot(self, path: str) -> None:
        await self._call(self.driver.save_screenshot, path)


@pytest.fixture
def chrome() -> Iterator[webdriver.Chrome]:
    driver = new_driver()
    try:
        yield driver
    finally:
        driver.quit()


def _detached(element: WebElement) -> bool:
    """The page ``element`` belonged to is gone. Chromium reports a replaced document's node either as stale or as
    "Node with given id does not belong to the document" (an inspector error): both mean it is gone."""
    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException among them
        return True
    return False
