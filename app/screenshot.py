"""Start the dashboard on a local port and take screenshots of its views in headless Chromium.

    python -m app.screenshot --out assets/screenshots            # every view, light and dark
    python -m app.screenshot --out shots --views states --themes dark

Needs Debian's chromium at CHROMIUM (override with --chromium) and Playwright's Python package;
no browser is downloaded. The browser test uses running_dashboard() and launch_browser() too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRY = REPO_ROOT / "app" / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# URL path of each view, as st.navigation derives it from the page file's name.
VIEW_PATHS = {"states": "", "trajectories": "trajectories", "routing": "routing", "gates": "gates", "summary": "summary"}
STARTUP_TIMEOUT_S = 90.0  # Streamlit imports torch and plotly before it responds
RENDER_TIMEOUT_MS = 60_000


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (chosen by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_dashboard(port: int, *, theme: str | None = None, app_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Run `streamlit run app/streamlit_app.py` on 127.0.0.1:port; yield its URL, stop it after.

    Raises RuntimeError with the server's output if it exits or does not respond in time.
    """
    command = [
        sys.executable, "-m", "streamlit", "run", str(ENTRY),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
    ]
    if theme is not None:
        command += ["--theme.base", theme]
    if app_args:
        command += ["--", *app_args]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}

    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(server, url, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_healthy(server: subprocess.Popen, url: str, log) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
            raise RuntimeError(f"the dashboard exited with code {server.returncode} before serving:\n{output}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    log.seek(0)
    output = log.read().decode("utf-8", "replace")
    raise RuntimeError(f"the dashboard did not respond at {url} within {STARTUP_TIMEOUT_S:.0f} s:\n{output}")


@contextlib.contextmanager
def launch_browser(profile: Path, chromium: Path = CHROMIUM, *, width: int = 1440, height: int = 900):
    """Yield a Playwright browser context of headless system Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium),
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height},
            device_scale_factor=1,
        )
        try:
            yield context
        finally:
            context.close()


def wait_for_view(page) -> None:
    """Wait until the script run has finished and every chart on the page is drawn."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=RENDER_TIMEOUT_MS
    )
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_timeout(1500)  # Plotly finishes its layout after the first paint


def take_screenshots(
    out: Path, views: list[str], themes: list[str], chromium: Path, *, width: int = 1440, height: int = 900
) -> list[Path]:
    """Save out/<view>-<theme>.png of each view in each theme; return the files written.

    Streamlit scrolls inside its main container, so the picture shows one viewport of
    width × height pixels; pass a larger height to see a whole view.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for theme in themes:
        with running_dashboard(free_port(), theme=theme) as url, tempfile.TemporaryDirectory() as profile:
            with launch_browser(Path(profile), chromium, width=width, height=height) as browser:
                page = browser.new_page()
                for view in views:
                    page.goto(f"{url}/{VIEW_PATHS[view]}")
                    wait_for_view(page)
                    path = out / f"{view}-{theme}.png"
                    page.screenshot(path=str(path))
                    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--views", nargs="+", choices=sorted(VIEW_PATHS), default=list(VIEW_PATHS))
    parser.add_argument("--themes", nargs="+", choices=("light", "dark"), default=["light", "dark"])
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="Chromium executable to drive")
    parser.add_argument("--width", type=int, default=1440, help="viewport width in pixels")
    parser.add_argument("--height", type=int, default=900, help="viewport height in pixels")
    args = parser.parse_args(argv)
    if not args.chromium.exists():
        parser.error(f"--chromium {args.chromium} does not exist; install Debian's chromium package.")
    for path in take_screenshots(args.out, args.views, args.themes, args.chromium, width=args.width, height=args.height):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
