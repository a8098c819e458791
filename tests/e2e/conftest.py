"""Fixtures for the browser tests: the real app in a subprocess, and headless Chromium.

The app runs exactly as a user starts it (``streamlit run app.py``) with the real packaged
models, a throw-away data directory and a known admin password. Chromium is Debian's
(``apt-get install -y chromium``); Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.procs import free_port, stop

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_CACHE = REPO_ROOT / ".cache" / "models"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ADMIN_PASSWORD = "e2e-secret"
VIEWPORT = {"width": 1280, "height": 900}
STARTUP_TIMEOUT_S = 120.0
DEFAULT_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class RunningApp:
    """The app under test: where it answers, and where its state and logs live."""

    base_url: str
    home: Path
    log_dir: Path

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's stderr (for failure messages)."""
        path = self.log_dir / "stderr.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def app_env(home: Path) -> dict[str, str]:
    """The shell's environment without any RAG_* setting, plus the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_HOME=str(home),
        RAG_MODEL_CACHE=str(MODEL_CACHE),
        RAG_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log_dir: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = (log_dir / "stderr.log").read_text(errors="replace")
            pytest.fail(f"the app exited with code {proc.returncode} before answering:\n{stderr}", pytrace=False)
        try:
            with urllib.request.urlopen(base_url + "/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    stderr = (log_dir / "stderr.log").read_text(errors="replace")
    pytest.fail(
        f"the app did not answer {base_url}/_stcore/health within {STARTUP_TIMEOUT_S:.0f} s:\n{stderr}", pytrace=False
    )


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """``streamlit run app.py`` on a free localhost port, with a fresh data directory."""
    root = tmp_path_factory.mktemp("e2e")
    home, log_dir = root / "home", root / "logs"
    log_dir.mkdir()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",  # not on the network: the admin password is known
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with (log_dir / "stdout.log").open("wb") as out, (log_dir / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=app_env(home), stdout=out, stderr=err)
    try:
        wait_healthy(proc, base_url, log_dir)
        yield RunningApp(base_url=base_url, home=home, log_dir=log_dir)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Install it with `apt-get install -y chromium` (the Makefile does this).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (so a fresh Streamlit session) per test, 1280x900."""
    context = browser.new_context(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
