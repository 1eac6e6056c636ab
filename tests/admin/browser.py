"""A real browser for the admin tests: Debian's chromium, headless, through the system
chromedriver (Selenium Manager is kept offline and never downloads anything). Selenium's calls
block, so each runs in a thread while the site under test keeps serving on the event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "the browser tests need Debian's chromium and chromium-driver: "
    "apt-get install -y chromium chromium-driver (.ci/run installs them)"
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
T = TypeVar("T")


def start_chromium() -> WebDriver:
    """Headless chromium at 1280×900, with nothing that would reach the network by itself."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise RuntimeError(INSTALL_HINT)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never look anything up
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


class Browser:
    """Async wrappers for what the tests do with the page."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self._run(self.driver.get, self.base + path)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base)

    async def type(self, element_id: str, text: str) -> None:
        element = await self._run(self.driver.find_element, By.ID, element_id)
        await self._run(element.clear)
        await self._run(element.send_keys, text)

    async def submit(self, element_id: str) -> None:
        """Click a submit button and wait for the next page to load."""
        await self.follow(f"#{element_id}")

    async def follow(self, css: str) -> None:
        """Click a link or button and wait for the next page to load."""
        old = await self._run(self.driver.find_element, By.TAG_NAME, "html")
        target = await self._run(self.driver.find_element, By.CSS_SELECTOR, css)
        await self._run(target.click)

        def reloaded(_driver: WebDriver) -> bool:
            try:
                old.is_enabled()  # raises once the old page is gone
            except Exception:
                return self.driver.execute_script("return document.readyState") == "complete"
            return False

        await self._run(WebDriverWait(self.driver, 20).until, reloaded)

    async def script(self, code: str, *args: Any) -> Any:
        return await self._run(self.driver.execute_script, code, *args)

    async def text(self, css: str = "main") -> str:
        element = await self._run(self.driver.find_element, By.CSS_SELECTOR, css)
        return await self._run(lambda: element.text)

    async def count(self, css: str) -> int:
        return len(await self._run(self.driver.find_elements, By.CSS_SELECTOR, css))

    @property
    def title(self) -> str:
        return self.driver.title

    async def page_width(self, window_width: int) -> int:
        """How wide the page lays itself out in a window this wide (a phone: 390)."""

        def measure() -> int:
            self.driver.set_window_size(window_width, 900)
            width = int(self.driver.execute_script("return document.documentElement.scrollWidth"))
            self.driver.set_window_size(1280, 900)
            return width

        return await self._run(measure)

    async def screenshot(self, name: str, *, width: int = 1280) -> Path:
        """A PNG of the whole page under tests/artifacts/ (its path is printed)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"

        def shoot() -> None:
            self.driver.set_window_size(width, 900)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width, min(int(height) + 100, 8000))
            self.driver.save_screenshot(str(path))
            self.driver.set_window_size(1280, 900)

        await self._run(shoot)
        print(f"screenshot: {path}")
        return path
