"""Every code block of README.md and docs/*.md runs, as a user pastes it, in the order of the page.

Each page's ```python blocks run one after another in one namespace, in a fresh directory that
has the repository's ``cases/`` beside it (so the paths the docs use resolve), as a user working
through the page in one Python session would.  ```bash blocks that call the ``gridtape`` command
run too, in the same directory, after the page's Python blocks that precede them.  The install
lines of README.md (``pip install ...``) are what CI itself runs (.ci/run), so they are not run
again here.  ```text blocks are output, shown, not run.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def pages():
    out = [os.path.join(ROOT, "README.md")]
    docs = os.path.join(ROOT, "docs")
    out += [os.path.join(docs, f) for f in sorted(os.listdir(docs)) if f.endswith(".md")]
    return out


def blocks(path):
    """(language, code, line) of every fenced block of a page, in order."""
    text = open(path, encoding="utf-8").read()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def _runnable(page):
    return any(lang == "python" or (lang == "bash" and _cli_lines(code)) for lang, code, _ in blocks(page))


def _cli_lines(code):
    return [line for line in code.splitlines() if line.strip().startswith("gridtape ")]


@pytest.mark.parametrize("page", [p for p in pages() if _runnable(p)], ids=lambda p: os.path.relpath(p, ROOT))
def test_page_runs_as_written(page, tmp_path, monkeypatch):
    os.symlink(os.path.join(ROOT, "cases"), tmp_path / "cases")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    rel = os.path.relpath(page, ROOT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for lang, code, line in blocks(page):
                if lang == "python":
                    try:
                        exec(compile(code, f"{rel}:{line}", "exec"), namespace)
                    except BaseException as e:  # noqa: BLE001 - name the block that failed
                        raise AssertionError(f"{rel}, the python block at line {line} fails: {e!r}") from e
                elif lang == "bash":
                    for cmd in _cli_lines(code):
                        run = subprocess.run([sys.executable, "-m", "gridtape.cli", *shlex.split(cmd)[1:]],
                                             capture_output=True, text=True, timeout=300)
                        assert run.returncode in (0, 1), f"{rel}:{line}: `{cmd}` failed:\n{run.stderr[-2000:]}"
    finally:
        for v in list(namespace.values()):  # close what the page opened (journals hold locks)
            if type(v).__name__ in ("PowerGrid", "Study", "Journal"):
                close = v.close
                try:
                    close()
                except Exception:  # noqa: BLE001 - the page's own error is the one to report
                    pass


def test_every_page_with_code_is_collected():
    runnable = [os.path.relpath(p, ROOT) for p in pages() if _runnable(p)]
    assert "README.md" in runnable and len(runnable) >= 4
