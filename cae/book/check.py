"""Open every page of the built book in headless Chromium, with the network off, and check that it works.

``python -m cae.book.check _build/html [--charts GLOB ...] [--audio GLOB ...]``

Why a real browser: the book's charts are vega-lite specs drawn by JavaScript (``vegaEmbed`` from the local
``_static/cae-vega.js``), and its audio examples are ``<audio>`` elements with ``data:audio/wav`` sources. A broken
script tag, a spec the bundled vega-lite rejects, a stray CDN link or an empty audio source all leave valid HTML
behind; only running the pages shows them. The check is what a reader without network would see.

Method. One Chromium session (headless, launched by :func:`start_browser`) visits each page through its
``file://`` URL, in order:

* **Network off.** Chromium starts with every host name resolving to nothing (``--host-resolver-rules``) and a
  dead proxy (``--proxy-server=127.0.0.1:9``), and with its own background traffic disabled. Nothing can leave
  the machine; and every request the page *tries* is read from Chrome's performance log
  (``Network.requestWillBeSent``, ``Network.webSocketCreated``). A URL whose scheme is not ``file``, ``data``,
  ``blob`` or ``about`` is reported as "request left the machine" — a page that needs a CDN is broken offline
  even when it happens to look fine.
* **Console.** ``SEVERE`` entries of the browser log are reported: ``console.error`` calls, uncaught
  exceptions and rejected promises (vega-embed's ``.catch(console.error)`` lands here), and local files that
  failed to load. Load failures of external URLs are left out, as they are already reported as requests.
* **Charts.** After the load event the page is polled (up to ``timeout_s``) until every ``div.cae-chart`` holds
  an ``svg`` or ``canvas`` — what vega draws. A chart still empty then is reported by its id, and any error text
  shown in a chart (``.vega-embed .error``, ``.cae-chart .error``) is reported. Pages matched by ``chart_pages``
  must hold at least one chart.
* **Readable.** No code cell with more than :data:`MAX_OPEN_CODE_LINES` lines may be shown open (code belongs
  behind jupyter-book's ``hide-input`` toggle, a ``<details>`` element), no stderr block (``div.output.stderr``)
  and no Python warning (``SomethingWarning: ...`` in a cell's output) may be visible.
* **Audio.** Every ``<audio>`` must have a source (its ``src`` or a ``<source>`` child's); one with a source must
  load at least its metadata (``readyState >= 1``), so a corrupt base64 WAV is caught too. Pages matched by
  ``audio_pages`` must hold at least one ``<audio>`` with a source.

After the checks the browser goes to ``about:blank`` before the logs are read, so that late requests and
messages of a page are counted for that page and not for the next one.

Page globs are relative to the site folder; ``*`` and ``?`` stay within one folder and ``**`` crosses folders.
A ``chart_pages``/``audio_pages`` glob that matches no checked page is itself a problem (a check that checks
nothing should not pass).

Caveats: under ``file://`` Chromium blocks ``fetch``/XHR of other local files (no
``--allow-file-access-from-files`` here, as for a reader opening the files), so specs must carry their data
inline, as altair's HTML does. Needs ``selenium`` and Debian's ``chromium`` + ``chromium-driver``; the driver
path is always given explicitly, so Selenium Manager never tries to download one.

Why one module of about 500 lines: one browser session checks every page, and the rules (charts, audio, console,
requests, warnings, code cells) share its page state; split, each rule would need its own copy of that plumbing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

INSTALL_HINT = "install them with: apt-get install chromium chromium-driver (and pip install selenium)"
DEFAULT_CHART_PAGES: tuple[str, ...] = ("notebooks/*.html",)
DEFAULT_EXCLUDE: tuple[str, ...] = ("genindex.html", "search.html", "_static/**", "_sources/**", "_images/**")
LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about"})
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--mute-audio",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--proxy-server=127.0.0.1:9",
)
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
_DRIVER_NAMES = ("chromedriver",)
_DRIVER_FALLBACKS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
_MAX_MESSAGE = 300
#: A code cell shown open (not behind a toggle) may have at most this many lines.
MAX_OPEN_CODE_LINES = 15

# One round trip: what the charts and audio elements of the page look like now.
_STATE_JS = r"""
const charts = Array.from(document.querySelectorAll('div.cae-chart')).map(d => ({
  id: d.id || '(no id)', rendered: d.querySelector('svg, canvas') !== null,
  failed: d.querySelector('.error') !== null}));
const errors = Array.from(new Set(document.querySelectorAll('.vega-embed .error, .cae-chart .error')))
  .map(e => e.textContent.trim()).filter(t => t);
const audio = Array.from(document.querySelectorAll('audio')).map(a => {
  const srcs = [a.getAttribute('src') || ''].concat(
    Array.from(a.querySelectorAll('source')).map(s => s.getAttribute('src') || ''));
  const src = srcs.map(s => s.trim()).find(s => s) || '';
  return {id: a.id, src: src.length > 48 ? src.slice(0, 45) + '...' : src, ready: a.readyState,
          failed: a.error !== null || a.networkState === 3};
});
const shown = e => e.closest('details:not([open])') === null;
const code = Array.from(document.querySelectorAll('div.cell_input')).filter(shown).map(c => {
  const text = (c.querySelector('pre') || c).textContent.replace(/\n+$/, '');
  return {lines: text.split('\n').length, first: text.split('\n')[0].slice(0, 60)};
});
const stderr = Array.from(document.querySelectorAll('div.output.stderr')).filter(shown).map(
  e => e.textContent.trim().split('\n')[0].slice(0, 80));
const warnings = Array.from(document.querySelectorAll('div.cell_output')).filter(shown).flatMap(
  o => (o.textContent.match(/\b[A-Z]\w*Warning: [^\n]*/g) || []));
return {charts: charts, errors: errors, audio: audio, code: code, stderr: stderr, warnings: warnings};
"""


class SetupError(RuntimeError):
    """The check cannot run: no browser or driver, no selenium, or no built site."""


@dataclass
class PageReport:
    """What one page did in the browser.

    Attributes:
        page: path of the page relative to the site folder, with ``/`` separators.
        charts: number of ``div.cae-chart`` elements on the page.
        charts_rendered: how many of them hold an ``svg`` or ``canvas``.
        audio: number of ``<audio>`` elements.
        requests: every URL the page requested, in order (local ones included).
        problems: human-readable problems, each starting with ``page``; empty when the page is fine.
    """

    page: str
    charts: int = 0
    charts_rendered: int = 0
    audio: int = 0
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the page has no problem."""
        return not self.problems

    def add(self, problem: str) -> None:
        """Record ``problem``, prefixed with the page name."""
        self.problems.append(f"{self.page}: {_shorten(problem)}")

    def summary(self) -> str:
        """One line: status, page, and its counts.

        >>> PageReport("a.html", charts=2, charts_rendered=1, audio=3, requests=["file:///a.html"]).summary()
        'OK    a.html  (charts 1/2, audio 3, requests 1)'
        """
        status = "OK" if self.ok else "FAIL"
        return (f"{status:<5} {self.page}  (charts {self.charts_rendered}/{self.charts}, audio {self.audio}, "
                f"requests {len(self.requests)})")


@dataclass
class SiteReport:
    """The result of :func:`check_site`.

    Attributes:
        html_dir: the site folder that was checked.
        pages: one report per checked page, sorted by path.
        problems: site-level problems (a page glob that matched no page).
    """

    html_dir: Path
    pages: list[PageReport]
    problems: list[str] = field(default_factory=list)

    @property
    def all_problems(self) -> list[str]:
        """Site-level problems, then every page's problems."""
        return [*self.problems, *(p for page in self.pages for p in page.problems)]

    @property
    def ok(self) -> bool:
        """True when neither the site nor any page has a problem."""
        return not self.all_problems

    def summary(self) -> str:
        """One line of totals over all pages."""
        bad = sum(not p.ok for p in self.pages)
        return (f"{len(self.pages)} pages checked, {len(self.pages) - bad} OK, {bad} with problems, "
                f"{len(self.all_problems)} problems in all; charts rendered "
                f"{sum(p.charts_rendered for p in self.pages)}/{sum(p.charts for p in self.pages)}, "
                f"audio {sum(p.audio for p in self.pages)}, requests {sum(len(p.requests) for p in self.pages)}")


@lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    tokens = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(tokens.get(p, re.escape(p)) for p in parts))


def glob_match(path: str, pattern: str) -> bool:
    """Whether a relative ``/``-separated path matches a glob: ``*`` and ``?`` stay in one folder, ``**`` crosses.

    Args:
        path: path relative to the site folder, e.g. ``"notebooks/a.html"``.
        pattern: glob relative to the site folder, e.g. ``"notebooks/*.html"`` or ``"_static/**"``.

    Returns:
        True when the whole of ``path`` matches ``pattern``.

    >>> glob_match("notebooks/a.html", "notebooks/*.html"), glob_match("notebooks/x/a.html", "notebooks/*.html")
    (True, False)
    >>> glob_match("_static/a/b.html", "_static/**"), glob_match("x/genindex.html", "genindex.html")
    (True, False)
    >>> glob_match("a.html", "**/*.html"), glob_match("x/y/a.html", "**/*.html")
    (True, True)
    """
    return _glob_regex(pattern).fullmatch(path) is not None


def site_pages(html_dir: str | Path, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> list[str]:
    """The pages to check: every ``*.html`` under ``html_dir`` not matched by an ``exclude`` glob.

    Args:
        html_dir: the built site folder.
        exclude: globs relative to ``html_dir`` (see :func:`glob_match`).

    Returns:
        Relative ``/``-separated paths, sorted.
    """
    root = Path(html_dir)
    rels = (p.relative_to(root).as_posix() for p in root.rglob("*.html") if p.is_file())
    patterns = tuple(exclude)
    return sorted(r for r in rels if not any(glob_match(r, g) for g in patterns))


def is_external(url: str) -> bool:
    """Whether a request for ``url`` would leave the machine (its scheme is not file, data, blob or about).

    >>> [is_external(u) for u in ("file:///x.js", "data:image/png;base64,AA", "about:blank", "https://cdn.x/v.js")]
    [False, False, False, True]
    """
    return urlsplit(url).scheme.lower() not in LOCAL_SCHEMES


def _find(given: str | Path | None, names: Sequence[str], fallbacks: Sequence[str], what: str) -> str:
    if given is not None:
        path = Path(given)
        if path.is_file():
            return str(path)
        found = shutil.which(str(given))
        if found:
            return found
        raise SetupError(f"{what} not found at {given}; {INSTALL_HINT}")
    for candidate in [*(shutil.which(n) for n in names), *fallbacks]:
        if candidate and Path(candidate).is_file():
            return candidate
    raise SetupError(f"{what} not found (looked for {', '.join(names)}); {INSTALL_HINT}")


def start_browser(browser: str | Path | None = None, driver: str | Path | None = None, *,
                  timeout_s: float = 30.0) -> WebDriver:
    """Launch headless Chromium with the network off and the performance and browser logs on.

    Args:
        browser: Chromium binary (path or command name); None looks for chromium on ``PATH``.
        driver: chromedriver binary; None looks for chromedriver on ``PATH`` and in Debian's places. It is always
            passed explicitly, so Selenium Manager never runs (it would try the network).
        timeout_s: page load timeout in seconds.

    Returns:
        A selenium ``WebDriver``; the caller must ``quit()`` it.

    Raises:
        SetupError: selenium, Chromium or chromedriver is missing, or Chromium does not start.
    """
    browser_path = _find(browser, _BROWSER_NAMES, ("/usr/bin/chromium",), "Chromium")
    driver_path = _find(driver, _DRIVER_NAMES, _DRIVER_FALLBACKS, "chromedriver")
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise SetupError(f"selenium is not installed ({e}); {INSTALL_HINT}") from e
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    try:
        session = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except WebDriverException as e:
        raise SetupError(f"could not start {browser_path} with {driver_path}: {e.msg or e}") from e
    session.set_page_load_timeout(timeout_s)
    return session


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _requests(performance_log: list[dict[str, Any]]) -> list[str]:
    """URLs requested, from the ``message`` JSON of Chrome performance log entries."""
    urls: list[str] = []
    for entry in performance_log:
        message = json.loads(entry["message"]).get("message", {})
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(params.get("request", {}).get("url", ""))
        elif message.get("method") == "Network.webSocketCreated":
            urls.append(params.get("url", ""))
    return [u for u in urls if u and not u.startswith("about:")]


def _console_problems(browser_log: list[dict[str, Any]], site_url: str) -> list[str]:
    """``SEVERE`` browser log messages, minus load failures of external URLs (reported as requests)."""
    problems: list[str] = []
    for entry in browser_log:
        if entry.get("level") != "SEVERE":
            continue
        message = str(entry.get("message", ""))
        if entry.get("source") == "network" and is_external(message.split(" ", 1)[0]):
            continue
        message = message.replace(site_url, "")
        if entry.get("source") == "network":
            problems.append(f"failed to load: {message}")
        else:
            problems.append(f"console error: {message}")
    return problems


def _settled(state: dict[str, Any]) -> bool:
    charts_done = all(c["rendered"] or c["failed"] for c in state["charts"])
    audio_done = all(not a["src"] or a["ready"] >= 1 or a["failed"] for a in state["audio"])
    return charts_done and audio_done


def check_page(session: WebDriver, html_dir: str | Path, page: str, *, needs_chart: bool = False,
               needs_audio: bool = False, timeout_s: float = 30.0) -> PageReport:
    """Load one page in ``session`` and check it (see the module docstring for what is checked).

    Args:
        session: a browser from :func:`start_browser` (its flags keep the network off and its logs on).
        html_dir: the site folder.
        page: the page's path relative to ``html_dir``.
        needs_chart: the page must hold at least one ``div.cae-chart``.
        needs_audio: the page must hold at least one ``<audio>`` with a source.
        timeout_s: seconds to wait for the charts and audio to finish after the load event.

    Returns:
        The page's report. Browser errors (a load timeout, a crashed tab) become problems, not exceptions.
    """
    from selenium.common.exceptions import TimeoutException, WebDriverException

    root = Path(html_dir).resolve()
    report = PageReport(page)
    for log in ("performance", "browser"):  # drop anything left from before
        session.get_log(log)
    state: dict[str, Any] = {"charts": [], "errors": [], "audio": []}
    try:
        try:
            session.get((root / page).as_uri())
        except TimeoutException:
            report.add(f"page did not finish loading within {timeout_s:g} s")
        deadline = time.monotonic() + timeout_s
        state = session.execute_script(_STATE_JS)
        while not _settled(state) and time.monotonic() < deadline:
            time.sleep(0.1)
            state = session.execute_script(_STATE_JS)
        session.get("about:blank")  # end the page before reading its logs: late messages stay with it
        performance, browser_log = session.get_log("performance"), session.get_log("browser")
    except WebDriverException as e:
        report.add(f"browser error: {e.msg or e}")
        return report

    report.requests = _requests(performance)
    for url in report.requests:
        if is_external(url):
            report.add(f"request left the machine: {url}")
    for problem in _console_problems(browser_log, root.as_uri() + "/"):
        report.add(problem)

    report.charts = len(state["charts"])
    report.charts_rendered = sum(c["rendered"] for c in state["charts"])
    for chart in state["charts"]:
        if not chart["rendered"]:
            why = "" if chart["failed"] else f" (no svg or canvas after {timeout_s:g} s)"
            report.add(f"chart {chart['id']} did not render{why}")
    for error in state["errors"]:
        report.add(f"chart error shown: {error}")
    if needs_chart and not state["charts"]:
        report.add("no chart (div.cae-chart) on a page that should have charts")

    report.audio = len(state["audio"])
    for i, audio in enumerate(state["audio"], start=1):
        name = f"audio #{i}" + (f" ({audio['id']})" if audio["id"] else "")
        if not audio["src"]:
            report.add(f"{name} has no source")
        elif audio["ready"] < 1:
            how = "could not be loaded" if audio["failed"] else f"did not load within {timeout_s:g} s"
            report.add(f"{name} {how} (source {audio['src']})")
    if needs_audio and not any(a["src"] for a in state["audio"]):
        report.add("no audio element with a source on a page that should have audio")

    for cell in state.get("code", []):
        if cell["lines"] > MAX_OPEN_CODE_LINES:
            report.add(f"a code cell of {cell['lines']} lines is shown open (more than {MAX_OPEN_CODE_LINES}; "
                       f"collapse it with the hide-input tag): {cell['first']!r}")
    for block in state.get("stderr", []):
        report.add(f"a stderr block is shown: {block!r}")
    for warning in state.get("warnings", []):
        report.add(f"a Python warning is shown: {warning}")
    return report


def check_site(html_dir: str | Path, *, chart_pages: Iterable[str] = DEFAULT_CHART_PAGES,
               audio_pages: Iterable[str] = (), exclude: Iterable[str] = DEFAULT_EXCLUDE, timeout_s: float = 30.0,
               browser: str | Path | None = None, driver: str | Path | None = None,
               session: WebDriver | None = None) -> SiteReport:
    """Check every page of a built site in one headless Chromium session with the network off.

    Args:
        html_dir: the built site folder (e.g. ``_build/html``); it must hold ``index.html``.
        chart_pages: globs (relative to ``html_dir``) of pages that must hold at least one chart.
        audio_pages: globs of pages that must hold at least one ``<audio>`` with a source.
        exclude: globs of ``*.html`` files not to check (Sphinx's index and search pages, static folders).
        timeout_s: per-page limit in seconds, for the load and again for the charts and audio to finish.
        browser: Chromium binary; None finds it on ``PATH``.
        driver: chromedriver binary; None finds it on ``PATH``.
        session: an open browser from :func:`start_browser` to reuse (it is left open); None starts one and
            quits it at the end.

    Returns:
        The site report: per-page reports, plus a site problem for each chart/audio glob that matched no page.

    Raises:
        SetupError: ``html_dir`` has no ``index.html``, or the browser cannot be started.
    """
    root = Path(html_dir)
    if not (root / "index.html").is_file():
        raise SetupError(f"{root} has no index.html: build the book first (make book)")
    pages = site_pages(root, exclude)
    chart_globs, audio_globs = tuple(chart_pages), tuple(audio_pages)
    report = SiteReport(root, [])
    for kind, globs in (("--charts", chart_globs), ("--audio", audio_globs)):
        for g in globs:
            if not any(glob_match(p, g) for p in pages):
                report.problems.append(f"{kind} glob {g!r} matched no checked page under {root}")

    own = session is None
    session = start_browser(browser, driver, timeout_s=timeout_s) if session is None else session
    try:
        for page in pages:
            report.pages.append(check_page(
                session, root, page, timeout_s=timeout_s,
                needs_chart=any(glob_match(page, g) for g in chart_globs),
                needs_audio=any(glob_match(page, g) for g in audio_globs)))
    finally:
        if own:
            session.quit()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check a built site and print one line per page, its problems, and a summary.

    Args:
        argv: arguments without the program name; None reads ``sys.argv``.

    Returns:
        0 when every page is fine, 1 when any problem was found, 2 when the check could not run (no
        ``index.html``, no Chromium/chromedriver/selenium).
    """
    parser = argparse.ArgumentParser(
        prog="python -m cae.book.check",
        description="Open every page of a built book in headless Chromium with the network off and check "
                    "requests, console errors, charts and audio.")
    parser.add_argument("html_dir", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--charts", action="append", metavar="GLOB",
                        help=f"pages that must hold a chart (repeatable; default {' '.join(DEFAULT_CHART_PAGES)})")
    parser.add_argument("--audio", action="append", default=[], metavar="GLOB",
                        help="pages that must hold an audio element (repeatable)")
    parser.add_argument("--exclude", action="append", metavar="GLOB",
                        help=f"pages not to check (repeatable; default {' '.join(DEFAULT_EXCLUDE)})")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-page limit (default 30)")
    parser.add_argument("--browser", help="Chromium binary (default: chromium on PATH)")
    parser.add_argument("--driver", help="chromedriver binary (default: chromedriver on PATH)")
    args = parser.parse_args(argv)
    try:
        report = check_site(
            args.html_dir, chart_pages=args.charts if args.charts is not None else DEFAULT_CHART_PAGES,
            audio_pages=args.audio, exclude=args.exclude if args.exclude is not None else DEFAULT_EXCLUDE,
            timeout_s=args.timeout, browser=args.browser, driver=args.driver)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"SITE  {problem}")
    for page in report.pages:
        print(page.summary())
        for problem in page.problems:
            print(f"      - {problem}")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
