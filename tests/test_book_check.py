"""`cae.book.check` on tiny built sites: real headless Chromium, network off, the local vega bundle."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

if not (shutil.which("chromium") or Path("/usr/bin/chromium").is_file()) or not (
        shutil.which("chromedriver") or Path("/usr/bin/chromedriver").is_file()):
    pytest.skip("needs Chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("selenium")
vl_convert = pytest.importorskip("vl_convert")

from cae.book.check import check_site, main, start_browser

SPEC = ('{"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": [{"x": 1, "y": 2}, '
        '{"x": 2, "y": 3}]}, "mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"}, '
        '"y": {"field": "y", "type": "quantitative"}}}')


def chart(name: str) -> str:
    """A chart as the book emits it."""
    return (f'<div class="cae-chart" id="cae-chart-{name}"></div>\n<script type="text/javascript">'
            f'vegaEmbed("#cae-chart-{name}", {SPEC}, {{"actions": false}}).catch(console.error);</script>')


def audio(data: bytes | None = None) -> str:
    """An audio example as IPython.display.Audio writes it (a 0.1 s WAV unless ``data`` is given)."""
    if data is None:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
            w.writeframes(bytes(1600))
        data = buf.getvalue()
    src = base64.b64encode(data).decode()
    return (f'<audio controls="controls"><source src="data:audio/wav;base64,{src}" type="audio/wav" />'
            'Your browser does not support the audio element.</audio>')


@pytest.fixture(scope="module")
def bundle() -> str:
    return vl_convert.javascript_bundle()


@pytest.fixture(scope="module")
def session():
    browser = start_browser(timeout_s=10)
    yield browser
    browser.quit()


@pytest.fixture()
def site(tmp_path: Path, bundle: str):
    """``site({"page.html": body, ...})`` writes a built site (with index.html) under tmp_path and returns it."""

    def make(pages: dict[str, str]) -> Path:
        root = tmp_path / "html"
        (root / "_static").mkdir(parents=True, exist_ok=True)
        (root / "_static" / "cae-vega.js").write_text(bundle)
        for rel, body in {"index.html": "<p>Index</p>", **pages}.items():
            up = "../" * rel.count("/")
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{rel}</title>'
                            f'<script src="{up}_static/cae-vega.js"></script></head><body>{body}</body></html>')
        return root

    return make


GOOD = {"notebooks/good.html": f"<h1>Good</h1>{chart('a')}{audio()}"}


def test_good_page_passes_and_is_counted(site, session):
    root = site({**GOOD,
                 # never checked: Sphinx's generated pages and static folders
                 "genindex.html": '<img src="http://example.com/g.png">',
                 "search.html": '<script>console.error("search")</script>',
                 "_static/x.html": '<img src="http://example.com/s.png">'})
    report = check_site(root, chart_pages=["notebooks/*.html"], audio_pages=["notebooks/*.html"],
                        session=session, timeout_s=10)
    assert report.ok, report.all_problems
    assert [p.page for p in report.pages] == ["index.html", "notebooks/good.html"]
    good = report.pages[1]
    assert (good.charts, good.charts_rendered, good.audio) == (1, 1, 1)
    assert any(u.endswith("/_static/cae-vega.js") for u in good.requests)
    assert good.summary().startswith("OK")


def test_request_off_the_machine_is_flagged(site, session):
    root = site({"notebooks/cdn.html": f'{chart("a")}<img src="http://example.com/x.png">'})
    report = check_site(root, session=session, timeout_s=10)
    page = report.pages[1]
    assert page.problems == ["notebooks/cdn.html: request left the machine: http://example.com/x.png"]
    assert page.charts_rendered == 1


def test_console_error_and_uncaught_exception_are_flagged(site, session):
    root = site({"a.html": '<script>console.error("boom")</script>',
                 "b.html": '<script>throw new Error("kaboom")</script>'})
    report = check_site(root, chart_pages=(), session=session, timeout_s=10)
    a, b = report.pages[0], report.pages[1]
    assert len(a.problems) == 1 and "console error" in a.problems[0] and '"boom"' in a.problems[0]
    assert len(b.problems) == 1 and b.problems[0].startswith("b.html:") and "kaboom" in b.problems[0]


def test_chart_that_never_renders_is_flagged(site, session):
    root = site({"notebooks/dead.html": f'{chart("ok")}<div class="cae-chart" id="cae-chart-dead"></div>'})
    report = check_site(root, session=session, timeout_s=1)
    page = report.pages[1]
    assert (page.charts, page.charts_rendered) == (2, 1)
    assert len(page.problems) == 1 and "chart cae-chart-dead did not render" in page.problems[0]


def test_required_chart_and_audio_and_audio_sources(site, session):
    root = site({"notebooks/empty.html": "<p>no chart, no audio</p>",
                 "sounds.html": f"<audio controls></audio>{audio(b'not a wav file')}"})
    report = check_site(root, chart_pages=["notebooks/*.html", "missing/*.html"],
                        audio_pages=["notebooks/*.html"], session=session, timeout_s=5)
    assert report.problems == [f"--charts glob 'missing/*.html' matched no checked page under {root}"]
    empty, sounds = report.pages[1], report.pages[2]
    assert [p.split(": ", 1)[1] for p in empty.problems] == [
        "no chart (div.cae-chart) on a page that should have charts",
        "no audio element with a source on a page that should have audio"]
    assert sounds.audio == 2
    assert "sounds.html: audio #1 has no source" in sounds.problems
    assert any("audio #2 could not be loaded" in p for p in sounds.problems)


def code_cell(lines: int, collapsed: bool) -> str:
    """A code cell as myst-nb renders it: collapsed cells sit in a closed <details> (the hide-input tag)."""
    body = "\n".join(f"x{i} = {i}" for i in range(lines))
    cell = f'<div class="cell_input docutils container"><div class="highlight"><pre>{body}\n</pre></div></div>'
    if collapsed:
        cell = f'<details class="hide above-input"><summary>Show code cell source</summary>{cell}</details>'
    return f'<div class="cell docutils container">{cell}<div class="cell_output docutils container"></div></div>'


def test_readable_pages_long_open_code_stderr_and_warnings_are_flagged(site, session):
    root = site({
        "fine.html": code_cell(40, collapsed=True) + code_cell(15, collapsed=False),
        "long.html": code_cell(16, collapsed=False),
        "stderr.html": '<div class="output stderr"><div class="highlight"><pre>Loading weights: 100%</pre></div></div>',
        "warn.html": '<div class="cell_output docutils container"><div class="output text_plain"><pre>'
                     '/x/y.py:3: FutureWarning: `foo` is deprecated\n</pre></div></div>',
        "hidden.html": '<details><summary>s</summary><div class="output stderr"><pre>progress</pre></div>'
                       '<div class="cell_output"><pre>UserWarning: hidden</pre></div></details>',
    })
    report = check_site(root, chart_pages=(), session=session, timeout_s=5)
    pages = {p.page: p for p in report.pages}
    assert pages["fine.html"].ok and pages["hidden.html"].ok, report.all_problems
    assert len(pages["long.html"].problems) == 1 and "code cell of 16 lines is shown open" in pages["long.html"].problems[0]
    assert pages["stderr.html"].problems == ["stderr.html: a stderr block is shown: 'Loading weights: 100%'"]
    assert pages["warn.html"].problems == ["warn.html: a Python warning is shown: FutureWarning: `foo` is deprecated"]


def test_cli_exit_codes(site, tmp_path, capsys):
    good = site(GOOD)
    assert main([str(good), "--audio", "notebooks/*.html", "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert "OK    notebooks/good.html  (charts 1/1, audio 1, requests" in out and "0 with problems" in out

    (good / "notebooks" / "bad.html").write_text('<img src="https://cdn.example.org/v.png">')
    assert main([str(good), "--timeout", "10"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  notebooks/bad.html" in out and "https://cdn.example.org/v.png" in out

    assert main([str(good), "--browser", str(tmp_path / "no-chromium")]) == 2
    assert "apt-get install chromium chromium-driver" in capsys.readouterr().err


def test_cli_without_index_exits_2(tmp_path):
    (tmp_path / "page.html").write_text("<p>no index</p>")
    done = subprocess.run([sys.executable, "-m", "cae.book.check", str(tmp_path)], check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no index.html" in done.stderr
