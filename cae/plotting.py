"""Charts for the book: altair (vega-lite) charts that stay interactive and render with no network.

**Offline rendering.** altair's default HTML output loads vega from a CDN, so charts are blank offline.
:func:`enable` registers and turns on the ``"cae"`` renderer, whose HTML output is a ``<div class="cae-chart">``
plus one call to ``vegaEmbed``; the vega, vega-lite and vega-embed code comes once per page from a local file,
``_static/cae-vega.js``, written by :func:`write_vega_bundle` from the pinned ``vl-convert-python`` package (the
book's ``_config.yml`` loads it in every page's head). The bundle also carries the vega-lite MIME type, so
JupyterLab renders the same chart natively. Tooltips are on every chart; ``actions`` (export menu) are off.

**Charts.** Small builders over the tidy tables of :mod:`cae.study` (``mean``/``ci_low``/``ci_high`` columns from
bootstrap CIs): :func:`line_ci` (a line per group with a CI band or error bars), :func:`curve_chart` (Δℓ_t around
the onset, with the perturbation shaded), :func:`box_chart` (distributions per group), :func:`audio` (an inline
player).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "audio", "box_chart", "curve_chart", "detection_chart", "enable", "feature_chart", "interval_chart", "line_ci",
    "mel_frames", "render_html", "spectrogram_chart", "write_vega_bundle",
]

#: File name of the JavaScript bundle under the book's ``_static`` folder.
BUNDLE_NAME = "cae-vega.js"
RENDERER = "cae"


def write_vega_bundle(path: str | Path) -> Path:
    """Write the vega + vega-lite + vega-embed bundle (``window.vegaEmbed``) to ``path`` if it differs.

    The bundle comes from ``vl_convert.javascript_bundle()`` (no network), matching altair's vega-lite version.
    It is wrapped in a function scope: its top-level names (``_``, ``t`` ...) would otherwise collide with the
    page's other scripts; it publishes ``window.vegaEmbed``, ``window.vega`` and ``window.vegaLite`` itself.
    """
    import vl_convert as vlc

    path = Path(path)
    text = "(function () {\n" + vlc.javascript_bundle() + "\n})();\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def render_html(spec: dict[str, Any]) -> str:
    """The chart's HTML: a ``div.cae-chart`` and a ``vegaEmbed`` call (needs ``window.vegaEmbed`` on the page).

    >>> html = render_html({"mark": "point", "data": {"values": []}})
    >>> html.startswith('<div class="cae-chart" id="cae-chart-') and "vegaEmbed(" in html
    True
    """
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    cid = "cae-chart-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    # "</" inside a JSON string would end the <script> element early
    text = text.replace("</", "<\\/")
    return (
        f'<div class="cae-chart" id="{cid}"></div>\n'
        f'<script type="text/javascript">(function() {{\n'
        f'  var el = document.getElementById("{cid}");\n'
        f'  if (typeof window.vegaEmbed !== "function") {{\n'
        f'    el.textContent = "(chart needs {BUNDLE_NAME}: build the book with make book)"; return; }}\n'
        f'  window.vegaEmbed(el, {text}, {{"actions": false, "renderer": "svg"}}).catch(console.error);\n'
        f'}})();</script>'
    )


def _renderer(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    import altair as alt

    major = alt.SCHEMA_VERSION.lstrip("v").split(".")[0]
    return {"text/html": render_html(spec), f"application/vnd.vegalite.v{major}+json": spec,
            "text/plain": "<altair chart>"}


def enable() -> None:
    """Register and enable the offline ``"cae"`` renderer (and lift altair's 5000-row limit)."""
    import altair as alt

    alt.renderers.register(RENDERER, _renderer)
    alt.renderers.enable(RENDERER)
    alt.data_transformers.disable_max_rows()


def _tooltip(df: pd.DataFrame, fields: Sequence[str]) -> list[Any]:
    import altair as alt

    out = []
    for f in fields:
        if f not in df.columns:
            continue
        kind = "quantitative" if pd.api.types.is_numeric_dtype(df[f]) else "nominal"
        out.append(alt.Tooltip(f, type=kind, format=".3f") if kind == "quantitative" and
                   pd.api.types.is_float_dtype(df[f]) else alt.Tooltip(f, type=kind))
    return out


def _facet(chart: Any, column: str | None, row: str | None, wrap: int) -> Any:
    """Facet by ``column`` (wrapped into rows of ``wrap`` panels, so wide grids fit the page) and/or ``row``."""
    import altair as alt

    if column and row:
        return chart.facet(column=alt.Column(column, type="nominal"), row=alt.Row(row, type="nominal"))
    if column:
        return chart.facet(facet=alt.Facet(column, type="nominal"), columns=wrap)
    if row:
        return chart.facet(row=alt.Row(row, type="nominal"))
    return chart


def line_ci(df: pd.DataFrame, *, x: str, y: str = "mean", low: str = "ci_low", high: str = "ci_high",
            color: str | None = None, column: str | None = None, row: str | None = None, band: bool = False,
            x_title: str | None = None, y_title: str | None = None, x_scale: str = "linear",
            title: str | None = None, width: int = 250, height: int = 220, tooltip: Sequence[str] = (),
            zero_line: bool = True, stroke_dash: str | None = None, wrap: int = 2) -> Any:
    """Mean line with a CI (error bars, or a band with ``band=True``) per ``color`` group, faceted optionally.

    Args:
        df: tidy table with ``x``, ``y`` and the grouping columns, and the CI columns ``low`` and ``high`` (the
            tables of :mod:`cae.study` name them ``ci_low`` and ``ci_high``); without them only the line is drawn.
        x, y, low, high: column names.
        color: grouping column for colour (nominal).
        column, row: facet columns.
        band: CI as a shaded band (curves) instead of error bars (few x values).
        x_title, y_title, title: labels.
        x_scale: ``"linear"`` or ``"log"``.
        width, height: size of one panel.
        tooltip: extra columns shown on hover (x, y and the CI always are).
        zero_line: draw y = 0.
        stroke_dash: column for dashed lines (e.g. "source": ours vs the paper's values).
        wrap: panels per row when faceting by ``column`` alone.
    """
    import altair as alt

    d = df.copy()
    enc_x = alt.X(x, type="quantitative", title=x_title or x, scale=alt.Scale(type=x_scale))
    enc_y = alt.Y(y, type="quantitative", title=y_title or y, scale=alt.Scale(zero=False))
    has_ci = low in d and high in d
    tips = _tooltip(d, [c for c in [color, column, row, stroke_dash] if c] + [x, y, *([low, high] if has_ci else []),
                                                                               *tooltip])
    enc: dict[str, Any] = {}
    if color:
        enc["color"] = alt.Color(color, type="nominal")
    line = alt.Chart().mark_line(point=not band).encode(x=enc_x, y=enc_y, tooltip=tips, **enc)
    if stroke_dash:
        line = line.encode(strokeDash=alt.StrokeDash(stroke_dash, type="nominal"))
    if band:
        ci = alt.Chart().mark_area(opacity=0.2).encode(x=enc_x, y=alt.Y(low, type="quantitative"),
                                                       y2=alt.Y2(high), **enc)
    else:
        ci = alt.Chart().mark_errorbar(ticks=True).encode(
            x=enc_x, y=alt.Y(low, type="quantitative", title=y_title or y), y2=alt.Y2(high), **enc)
    layers = [ci, line] if has_ci else [line]
    if zero_line:  # one rule per panel: aggregate the data to a single row first
        layers.insert(0, alt.Chart().transform_aggregate(n="count()").mark_rule(color="gray", strokeDash=[2, 2])
                      .encode(y=alt.datum(0)))
    chart = alt.layer(*layers, data=d).properties(width=width, height=height)
    chart = _facet(chart, column, row, wrap)
    if title:
        chart = chart.properties(title=title)
    return chart


def curve_chart(curves: pd.DataFrame, *, color: str = "length", column: str | None = "kind",
                row: str | None = None, y_title: str = "Δℓ_t (nats)", title: str | None = None,
                shade: tuple[float, float] | None = None, width: int = 250, height: int = 200,
                wrap: int = 2) -> Any:
    """Curves over ``rel_frame`` (frames from the onset) with bootstrap bands (``ci_low``/``ci_high``, drawn when the
    table has them), per ``color`` group.

    ``shade=(start, stop)`` shades a span of relative frames (e.g. the perturbation).
    """
    import altair as alt

    d = curves.copy()
    d[color] = d[color].astype(str)
    x = alt.X("rel_frame", type="quantitative", title="frames from onset")
    has_ci = "ci_low" in d and "ci_high" in d
    tips = _tooltip(d, [c for c in [color, column, row] if c] + ["rel_frame", "mean",
                                                                 *(["ci_low", "ci_high"] if has_ci else []), "n"])
    layers = []
    if shade is not None:
        layers.append(alt.Chart(pd.DataFrame({"a": [shade[0]], "b": [shade[1]]})).mark_rect(opacity=0.08, color="gray")
                      .encode(x=alt.X("a", type="quantitative"), x2=alt.X2("b")))
    sort = sorted(d[color].unique(), key=lambda s: (len(s), s))
    c = alt.Color(color, type="nominal", sort=sort)
    if has_ci:
        layers.append(alt.Chart().mark_area(opacity=0.15).encode(x=x, y=alt.Y("ci_low", type="quantitative"),
                                                                 y2=alt.Y2("ci_high"), color=c))
    layers.append(alt.Chart().mark_line(strokeWidth=1.2).encode(x=x, y=alt.Y("mean", type="quantitative", title=y_title),
                                                                 color=c, tooltip=tips))
    chart = alt.layer(*layers, data=d).properties(width=width, height=height)
    chart = _facet(chart, column, row, wrap)
    if title:
        chart = chart.properties(title=title)
    return chart


def box_chart(df: pd.DataFrame, *, x: str, y: str, color: str | None = None, column: str | None = None,
              y_title: str | None = None, title: str | None = None, width: int = 220, height: int = 220,
              points: bool = True, tooltip: Sequence[str] = (), wrap: int = 2,
              sort: Sequence[str] | None = None) -> Any:
    """Box plots of ``y`` per ``x`` (coloured by ``color``; ``x`` values in the order ``sort`` gives, else sorted),
    with the points themselves (hover for the clip)."""
    import altair as alt

    d = df.copy()
    enc: dict[str, Any] = {"x": alt.X(x, type="nominal", title=x, sort=alt.Undefined if sort is None else list(sort))}
    if color:
        enc["color"] = alt.Color(color, type="nominal")
        enc["xOffset"] = alt.XOffset(color, type="nominal")
    yenc = alt.Y(y, type="quantitative", title=y_title or y, scale=alt.Scale(zero=False))
    layers = [alt.Chart().mark_boxplot(extent=1.5, opacity=0.6, size=14).encode(y=yenc, **enc)]
    if points:
        tips = _tooltip(d, [c for c in [x, color, column, y, *tooltip] if c])
        layers.append(alt.Chart().mark_point(size=8, opacity=0.35, filled=True).encode(y=yenc, tooltip=tips, **enc))
    chart = alt.layer(*layers, data=d).properties(width=width, height=height)
    chart = _facet(chart, column, None, wrap)
    if title:
        chart = chart.properties(title=title)
    return chart


def feature_chart(curve: pd.DataFrame, marks: pd.DataFrame, *, onset: int, length: int, width: int = 560,
                  height: int = 280) -> Any:
    """One burst's Δℓ_t as bars coloured by window, with each feature drawn where it is read: a black span at the
    level it marks, labelled with its name (:func:`cae.profile.feature_marks`' ``curve`` and ``marks``; features
    that are areas are sums, not levels on the curve, and are left to the table)."""
    import altair as alt

    on_curve = marks[~marks["feature"].str.contains("area")].assign(
        rel_start=lambda d: d["frame_start"] - onset, rel_stop=lambda d: d["frame_stop"] - onset + 1)
    bars = alt.Chart(curve).mark_bar(width=4).encode(
        x=alt.X("rel:Q", title=f"frames from the burst onset (burst: 0 … {length - 1})"),
        y=alt.Y("delta:Q", title="Δℓ_t (nats, codebook mean)"), color=alt.Color("region:N"),
        tooltip=["rel", alt.Tooltip("delta:Q", format=".3f"), "region"])
    spans = alt.Chart(on_curve).mark_rule(strokeWidth=3, opacity=0.7, color="black").encode(
        x="rel_start:Q", x2="rel_stop:Q", y="value:Q",
        tooltip=["feature", alt.Tooltip("feature_value:Q", format=".3f"), "frame_start", "frame_stop"])
    labels = alt.Chart(on_curve).mark_text(align="left", dx=4, dy=-6, fontSize=10).encode(
        x="rel_stop:Q", y="value:Q", text="feature")
    return (bars + spans + labels).properties(width=width, height=height)


def interval_chart(df: pd.DataFrame, *, y: str, x: str = "mean", low: str = "ci_low", high: str = "ci_high",
                   color: str | None = None, x_title: str | None = None, reference: float = 0.0,
                   domain: Sequence[float] | None = None, tooltip: Sequence[str] = (), width: int = 420,
                   height: int | None = None) -> Any:
    """One dot per row at ``x`` with its CI ``[low, high]`` as a bar, rows on ``y`` (offset by ``color``), and a
    dashed rule at ``reference`` (0 for a Δ, 0.5 for an AUROC)."""
    import altair as alt

    d = df.copy()
    h = height or 22 * d[y].nunique() + 40
    enc_y = alt.Y(y, type="nominal", title=None, sort=list(dict.fromkeys(d[y])))
    enc: dict[str, Any] = {}
    if color:
        order = list(dict.fromkeys(d[color]))
        enc = {"color": alt.Color(color, type="nominal", sort=order), "yOffset": alt.YOffset(color, type="nominal",
                                                                                              sort=order)}
    tips = _tooltip(d, [y] + ([color] if color else []) + [x, low, high, *tooltip])
    scale = alt.Scale(domain=list(domain)) if domain is not None else alt.Scale(zero=False)
    bars = alt.Chart().mark_rule().encode(x=alt.X(low, type="quantitative", scale=scale, title=x_title or x),
                                          x2=alt.X2(high), y=enc_y, **enc)
    dots = alt.Chart().mark_point(filled=True, size=50).encode(
        x=alt.X(x, type="quantitative", scale=scale), y=enc_y, tooltip=tips, **enc)
    rule = alt.Chart().transform_aggregate(n="count()").mark_rule(color="gray", strokeDash=[3, 3]).encode(
        x=alt.datum(reference))
    return alt.layer(rule, bars, dots, data=d).properties(width=width, height=h)


def detection_chart(df: pd.DataFrame, *, x: str = "auroc", low: str = "auroc_low", high: str = "auroc_high",
                    y: str = "perturbation", color: str = "score", x_title: str = "AUROC (0.5 = chance)",
                    width: int = 420, height: int | None = None) -> Any:
    """One dot per (perturbation, score) at its detection metric with its CI, a rule at chance (0.5): right of
    the rule the score flags the perturbed version, left of it the score moves the wrong way."""
    return interval_chart(df, y=y, x=x, low=low, high=high, color=color, x_title=x_title, reference=0.5,
                          domain=(0, 1), tooltip=[c for c in ("accuracy", "n") if c in df], width=width, height=height)


def audio(wave: np.ndarray, sample_rate: int) -> Any:
    """An inline audio player (``<audio controls>`` with the clip embedded as 16-bit WAV)."""
    import soundfile as sf
    from IPython.display import Audio

    buf = io.BytesIO()
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    x = np.asarray(wave, dtype=np.float32) / peak * 0.98 if peak > 1.0 else np.asarray(wave, dtype=np.float32)
    sf.write(buf, x, int(sample_rate), format="WAV", subtype="PCM_16")
    return Audio(data=buf.getvalue(), rate=int(sample_rate))


def mel_frames(wave: np.ndarray, sample_rate: int, *, n_mels: int = 48, time_bins: int = 150,
               seconds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Log-mel power of ``wave`` (dB re the clip's maximum, floored at −80) as tidy rows ``time_s, mel_band, db``,
    pooled to at most ``time_bins`` columns so that a chart of it stays light; ``seconds`` crops first."""
    import librosa

    x = np.asarray(wave, dtype=np.float32)
    t0 = 0.0
    if seconds is not None:
        t0 = seconds[0]
        x = x[int(seconds[0] * sample_rate): int(seconds[1] * sample_rate)]
    hop = 320
    mel = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=2048, hop_length=hop, n_mels=n_mels)
    db = librosa.power_to_db(mel, ref=np.max(mel) if mel.size and mel.max() > 0 else 1.0, top_db=80.0)
    pool = max(1, int(np.ceil(db.shape[1] / time_bins)))
    cols = db.shape[1] // pool * pool
    pooled = db[:, :cols].reshape(n_mels, -1, pool).mean(-1) if cols else db
    band, col = np.meshgrid(np.arange(n_mels), np.arange(pooled.shape[1]), indexing="ij")
    return pd.DataFrame({"time_s": t0 + col.ravel() * pool * hop / sample_rate, "mel_band": band.ravel(),
                         "db": pooled.ravel().round(1)})


def spectrogram_chart(frames: pd.DataFrame, *, column: str | None = None, row: str | None = None,
                      shade: tuple[float, float] | None = None, width: int = 300, height: int = 120,
                      wrap: int = 2, title: str | None = None) -> Any:
    """Heat maps of :func:`mel_frames` rows (one panel per ``column``/``row`` value); ``shade`` marks a time span
    (seconds), e.g. the noise."""
    import altair as alt

    d = frames.copy()
    step = float(np.diff(np.unique(d["time_s"]))[0]) if d["time_s"].nunique() > 1 else 0.02
    d["time_end"] = d["time_s"] + step
    layers = [alt.Chart().mark_rect().encode(
        x=alt.X("time_s", type="quantitative", title="time (s)"), x2="time_end",
        y=alt.Y("mel_band", type="ordinal", sort="descending", title="mel band", axis=alt.Axis(labels=False,
                                                                                            ticks=False)),
        color=alt.Color("db", type="quantitative", scale=alt.Scale(scheme="magma"), title="dB"))]
    if shade is not None:
        layers.append(alt.Chart(pd.DataFrame({"a": [shade[0]], "b": [shade[1]]})).mark_rect(
            fill=None, stroke="white", strokeDash=[4, 3]).encode(x=alt.X("a", type="quantitative"), x2=alt.X2("b")))
    chart = alt.layer(*layers, data=d).properties(width=width, height=height)
    chart = _facet(chart, column, row, wrap)
    if title:
        chart = chart.properties(title=title)
    return chart
