"""Open the built site in headless Chromium and check that it renders (`make docs-check`).

The site (build/site, from `make docs`) is served on 127.0.0.1 at an
ephemeral port; Debian's chromedriver drives Debian's chromium through the
W3C WebDriver protocol (plain JSON over HTTP, no client library). Checked:

- the start page: the theme's CSS applied (header coloured, the navigation
  sidebar laid out and visible), every top-level nav section present, a
  highlighted code block, the search box;
- search works: typing a name into the search box lists results, one of
  them a link into the API reference;
- an API page (``reference/handle/``): the ``typedmaps.MapHandle`` heading,
  a rendered signature, method entries, the navigation;
- no broken images or stylesheet loads on either page.

Screenshots of both pages go to build/docs-check/start.png and
build/docs-check/api.png. Exit status 0 when every check passes; each
failure is printed on one line.

    .venv/bin/python tools/docs_check.py [--site build/site] [--out build/docs-check]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# As root, in a machine with no network beyond package registries: no sandbox,
# no GPU, and none of Chromium's background connections.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1280,900",
]
TIMEOUT = 20.0


class CheckFailed(Exception):
    pass


def nav_titles(config: Path = ROOT / "mkdocs.yml") -> list[str]:
    """Every title in mkdocs.yml's nav (sections and pages), in order.

    A line-based read of the ``nav:`` block, which is plain ``- Title: page``
    YAML: the check needs no YAML library of its own.
    """
    titles: list[str] = []
    inside = False
    for line in config.read_text().splitlines():
        if line.startswith("nav:"):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        m = re.match(r"^\s+- (?:\"([^\"]+)\"|([^:]+)):", line)
        if inside and m:
            titles.append(m.group(1) or m.group(2).strip())
    return titles


class WebDriver:
    """The few W3C WebDriver commands this check needs."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise CheckFailed(
                f"webdriver {method} {path}: HTTP {exc.code}: {detail[:300]}"
            ) from None
        return answer.get("value")

    def start(self, user_data_dir: str) -> None:
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, method: str, path: str, body: Any = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def quit(self) -> None:
        if self.session:
            with contextlib.suppress(CheckFailed, OSError):
                self.s("DELETE", "")
            self.session = ""

    def go(self, url: str) -> None:
        self.s("POST", "/url", {"url": url})
        self.wait("document.readyState === 'complete'", "the page to load")

    def js(self, script: str, *args: Any) -> Any:
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, condition: str, what: str, timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(f"return ({condition});")
            if value:
                return value
            if time.monotonic() > deadline:
                raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    def screenshot(self, path: Path) -> None:
        png = base64.b64decode(self.s("GET", "/screenshot"))
        if png[:8] != b"\x89PNG\r\n\x1a\n":
            raise CheckFailed(f"{path.name}: the screenshot is not a PNG")
        path.write_bytes(png)


# Runs in the page: what the checks look at, as plain JSON.
PAGE_FACTS = r"""
const q = (s) => document.querySelector(s);
const visible = (el) => {
  if (!el) return false;
  const r = el.getBoundingClientRect(), st = getComputedStyle(el);
  return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.display !== 'none';
};
const nav = q('nav.md-nav--primary');
const sidebar = q('.md-sidebar--primary');
const header = q('header.md-header');
const links = nav ? [...nav.querySelectorAll('.md-nav__link')].map(a => a.textContent.trim()) : [];
const code = [...document.querySelectorAll('.md-content .highlight pre code')];
return {
  title: document.title,
  header_bg: header ? getComputedStyle(header).backgroundColor : null,
  sidebar_width: sidebar ? sidebar.getBoundingClientRect().width : 0,
  sidebar_visible: visible(sidebar),
  nav_links: links,
  code_blocks: code.length,
  highlighted_tokens: code.reduce((n, c) => n + c.querySelectorAll('span[class]').length, 0),
  search_input: visible(q('input.md-search__input')) || visible(q('label.md-search__icon')),
  search_form: !!q('form.md-search__form'),
  broken_images: [...document.images]
    .filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
  stylesheets: [...document.styleSheets].length,
  headings: [...document.querySelectorAll('.md-content h1, .md-content h2')]
    .map(h => h.id || h.textContent.trim()).slice(0, 60),
  doc_objects: document.querySelectorAll('.doc.doc-object').length,
  signatures: document.querySelectorAll('.doc-signature').length,
  text_length: (q('.md-content') || document.body).innerText.length,
};
"""


def check_page(facts: dict[str, Any], page: str, problems: list[str]) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{page}: {what} (facts: {json.dumps(facts)[:400]})")

    need(
        bool(facts["header_bg"]) and facts["header_bg"] not in ("rgba(0, 0, 0, 0)", "transparent"),
        "the header has no background colour: the theme's CSS did not load",
    )
    need(facts["stylesheets"] >= 2, "fewer than two stylesheets loaded")
    need(
        facts["sidebar_visible"] and facts["sidebar_width"] > 150,
        "the navigation sidebar is not laid out",
    )
    for title in nav_titles():
        need(title in facts["nav_links"], f"the navigation lacks {title!r}")
    need(facts["search_form"] and facts["search_input"], "no search box")
    need(not facts["broken_images"], f"broken images: {facts['broken_images']}")
    need(facts["text_length"] > 200, "the page has almost no text")


def run_checks(wd: WebDriver, base: str, out: Path) -> list[str]:
    problems: list[str] = []

    wd.go(f"{base}/")
    start = wd.js(PAGE_FACTS)
    check_page(start, "start page", problems)
    if start["code_blocks"] < 1 or start["highlighted_tokens"] < 5:
        problems.append(f"start page: no highlighted code block ({start['code_blocks']} blocks)")
    wd.screenshot(out / "start.png")

    # Search: type into the box; the theme's worker answers from the search index.
    if start["search_form"]:
        check_search(wd, problems)

    wd.go(f"{base}/reference/handle/")
    api = wd.js(PAGE_FACTS)
    check_page(api, "API page", problems)
    if "typedmaps.MapHandle" not in api["headings"] and not wd.js(
        "return !!document.getElementById('typedmaps.MapHandle');"
    ):
        problems.append("API page: no typedmaps.MapHandle heading")
    if api["doc_objects"] < 10 or api["signatures"] < 5:
        problems.append(
            f"API page: {api['doc_objects']} documented objects and {api['signatures']} "
            "signatures; the reference did not render"
        )
    if not wd.js("return !!document.getElementById('typedmaps.MapHandle.lookup_batch');"):
        problems.append("API page: MapHandle.lookup_batch is not documented")
    wd.screenshot(out / "api.png")
    return problems


def check_search(wd: WebDriver, problems: list[str]) -> None:
    """Type a method name into the search box; results must link into the API reference."""
    wd.js("const l = document.querySelector('label.md-search__icon'); if (l) l.click();")
    found = wd.s("POST", "/element", {"using": "css selector", "value": "input.md-search__input"})
    element = next(iter(found.values()))
    wd.s("POST", f"/element/{element}/value", {"text": "lookup_batch"})
    results = "[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)"
    try:
        hrefs = wd.wait(f"{results}.length > 0 && {results}", "search results")
    except CheckFailed as exc:
        problems.append(f"search: {exc}")
        return
    if not any("/reference/" in h for h in hrefs):
        problems.append(f"search: no result in the API reference for 'lookup_batch': {hrefs[:5]}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="docs-check-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def chromedriver() -> Iterator[str]:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists():
            raise CheckFailed(f"{exe} is missing: apt-get install chromium chromium-driver")
    proc = subprocess.Popen(
        [CHROMEDRIVER, "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        port = None
        deadline = time.monotonic() + TIMEOUT
        seen = ""
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            m = re.search(r"started successfully on port (\d+)", line)
            if m:
                port = int(m.group(1))
        if port is None:
            raise CheckFailed(f"chromedriver did not start: {seen.strip()[:300]}")
        # Keep reading its output so that it never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=ROOT / "build" / "site")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "docs-check")
    args = ap.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(
            f"docs-check: {args.site}/index.html is missing: run `make docs` first", file=sys.stderr
        )
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="typedmaps-docs-check-")
    try:
        with serve(args.site) as base, chromedriver() as driver:
            wd = WebDriver(driver)
            wd.start(profile)
            try:
                problems = run_checks(wd, base, args.out)
            finally:
                wd.quit()
    except CheckFailed as exc:
        problems = [str(exc)]
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    for p in problems:
        print(f"docs-check: FAIL: {p}", file=sys.stderr)
    if problems:
        return 1
    for name in ("start.png", "api.png"):
        print(f"docs-check: screenshot {args.out / name}")
    print("docs-check: OK (navigation, highlighted code, search, API reference rendered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
