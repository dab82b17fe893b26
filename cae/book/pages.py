"""Turn an executed notebook into a page a reader can read: the answer before the code, nothing from stderr.

:func:`finish` runs on every notebook the book builder executes, before it is saved:

* **stderr out.** Warnings and progress bars are stream outputs named ``stderr``. They go to the terminal and to a
  log file while the notebook runs (papermill's ``stderr_file``), and :func:`strip_stderr` removes them from the
  saved notebook, so neither the page nor the ``.ipynb`` a reader downloads carries them.
* **Code collapsed.** Every code cell gets jupyter-book's ``hide-input`` tag: its output shows, its code sits behind
  a toggle. The source's ``parameters`` cell (the defaults) is removed from the page (``remove-cell``); papermill's
  ``injected-parameters`` cell keeps its code behind a toggle and shows, once, a table of the values this run used
  (:func:`parameters_table`).
* **How to regenerate it.** A cell under the title gives the exact command that regenerates the page
  (:func:`regenerate_command`: parameter set and overrides) and download links for the executed ``.ipynb`` and its
  ``.py`` source (MyST's ``{download}`` role, which copies the files into the built book).

Tags change only how the book renders a cell; the downloaded notebook runs as it is.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["finish", "header_markdown", "parameters_table", "regenerate_command", "strip_stderr"]

HIDE = "hide-input"
HEADER_TAG = "cae-header"


def strip_stderr(nb: Any) -> list[str]:
    """Remove every ``stderr`` stream output from ``nb`` (in place); returns their texts in order."""
    removed: list[str] = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = out.get("text", "")
                removed.append(text if isinstance(text, str) else "".join(text))
            else:
                kept.append(out)
        cell["outputs"] = kept
    return removed


def regenerate_command(name: str, set_name: str, overrides: Mapping[str, Any] | None = None) -> str:
    """The command that executes notebook ``name`` as this page was: ``python -m cae.book run`` with the parameter
    set and one ``-p NAME VALUE`` per override (values as YAML flow text, which the command parses back).

    >>> regenerate_command("rq1_noise_length", "default")
    'python -m cae.book run rq1_noise_length --set default --out rq1_noise_length.ipynb'
    >>> regenerate_command("rq1_noise_length", "paper", {"lengths": [5, 50], "models": ["reference"]})
    "python -m cae.book run rq1_noise_length --set paper --out rq1_noise_length.ipynb -p lengths '[5, 50]' -p models '[reference]'"
    """
    import yaml

    parts = ["python", "-m", "cae.book", "run", name, "--set", set_name, "--out", f"{name}.ipynb"]
    for key, value in sorted((overrides or {}).items()):
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
        if text.endswith("\n...") or text.endswith("..."):
            text = text.rsplit("...", 1)[0].strip()
        parts += ["-p", key, text]
    return " ".join(shlex.quote(p) for p in parts)


def _cell_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text.replace("|", "\\|")


def parameters_table(params: Mapping[str, Any]) -> str:
    """A Markdown table of the parameters a run used, one row each, in the given order.

    >>> print(parameters_table({"n_clips": 40, "models": ["reference"]}))
    | parameter | value |
    |---|---|
    | `n_clips` | `40` |
    | `models` | `["reference"]` |
    """
    rows = ["| parameter | value |", "|---|---|"]
    rows += [f"| `{k}` | `{_cell_value(v)}` |" for k, v in params.items()]
    return "\n".join(rows)


def parameters_block(params: Mapping[str, Any]) -> str:
    """:func:`parameters_table` folded under a "Parameters of this run" line the reader opens on demand (an HTML
    ``<details>`` block; the table inside stays Markdown), so that a page's results come before its settings.

    >>> print(parameters_block({"n_clips": 40}))
    <details><summary><b>Parameters of this run</b> (1 value; click to show)</summary>
    <BLANKLINE>
    | parameter | value |
    |---|---|
    | `n_clips` | `40` |
    <BLANKLINE>
    </details>
    """
    n = len(params)
    return (f"<details><summary><b>Parameters of this run</b> ({n} value{'s' if n != 1 else ''}; click to show)"
            f"</summary>\n\n{parameters_table(params)}\n\n</details>")


def header_markdown(name: str, set_name: str, overrides: Mapping[str, Any] | None = None) -> str:
    """The cell under a page's title: the command that regenerates it and its downloads."""
    return (
        f"Executed with the `{set_name}` parameter set"
        + (f" and {len(overrides)} override(s)" if overrides else "")
        + " (every value is under *Parameters of this run* below). Regenerate this page with\n\n"
        f"```bash\n{regenerate_command(name, set_name, overrides)}\n```\n\n"
        f"Download: {{download}}`executed notebook <{name}.ipynb>` · {{download}}`source (.py, jupytext) <{name}.py>`"
    )


def _markdown_output(text: str) -> dict[str, Any]:
    import nbformat

    return nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": text})


def _add_tag(cell: Any, tag: str) -> None:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def finish(nb: Any, *, name: str, set_name: str, params: Mapping[str, Any],
           overrides: Mapping[str, Any] | None = None) -> list[str]:
    """Make executed notebook ``nb`` a page (module docstring), in place; returns the stderr texts removed."""
    import nbformat

    removed = strip_stderr(nb)
    nb.cells = [c for c in nb.cells if HEADER_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags:
            _add_tag(cell, "remove-cell")
        elif "injected-parameters" in tags:
            _add_tag(cell, HIDE)
            cell["outputs"] = [_markdown_output(parameters_block(params))]
        else:
            _add_tag(cell, HIDE)
    header = nbformat.v4.new_markdown_cell(header_markdown(name, set_name, overrides))
    header.metadata["tags"] = [HEADER_TAG]
    first_md = next((i for i, c in enumerate(nb.cells) if c.get("cell_type") == "markdown"), -1)
    nb.cells.insert(first_md + 1, header)
    return removed
