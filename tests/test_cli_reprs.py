"""Notebook (HTML) and terminal forms: well-formed, small, self-contained, 80 columns."""
from html.parser import HTMLParser
from pathlib import Path

import pytest

import gridtape as gt
from gridtape import notebook
from gridtape.demo import run_study

ROOT = Path(__file__).resolve().parent.parent
VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href") or (value and "url(" in value):
                self.errors.append(f"external reference {name}={value}")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def well_formed(text: str, max_bytes: int = 12_000) -> set:
    assert isinstance(text, str) and text.strip().startswith("<")
    c = _Checker()
    c.feed(text)
    c.close()
    assert not c.errors, c.errors
    assert not c.stack, f"unclosed: {c.stack}"
    assert not ({"script", "link", "img", "style", "iframe"} & c.tags)
    assert len(text.encode()) <= max_bytes, len(text.encode())
    return c.tags


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("reprs")
    run_study(ROOT / "cases" / "IEEE118" / "data.zip", d, out=lambda *a: None)
    s = gt.open(d / "study.duckdb")
    yield s
    s.close()


def test_grid_html_unsolved_solved_and_big():
    g = gt.PowerGrid(ROOT / "cases" / "IEEE118" / "data.zip")
    assert "not solved" in g._repr_html_()
    well_formed(g._repr_html_())
    rep = g.solve()
    h = g._repr_html_()
    assert "118 bus" in h and "converged" in h and "table" in well_formed(h)
    well_formed(rep._repr_html_(), 1000)
    big = gt.PowerGrid(ROOT / "cases" / "PEGASE2869" / "data.zip")
    big.solve()
    well_formed(big._repr_html_(), 3000)


def test_report_text_fits_a_line():
    g = gt.PowerGrid(ROOT / "cases" / "IEEE14" / "data.zip")
    r = g.solve()
    assert len(repr(r)) <= 80 and "converged in" in repr(r)
    assert r.converged and r.iterations > 0  # still the dataclass it was


def test_study_forms(study):
    h = study._repr_html_()
    tags = well_formed(h)
    assert "baseline" in h and "data-centre-1" in h and "table" in tags
    assert "phase 4" in h and "diverged" in h
    text = repr(study)
    assert max(map(len, text.splitlines())) <= 80 and "tags: baseline, data-centre-1" in text


def test_bisect_forms(study):
    res = study.bisect()
    text = str(res)
    assert len(text.splitlines()) <= 10 and max(map(len, text.splitlines())) <= 80
    assert "phase 4" in text and "p_mw" in text
    assert len(repr(res)) <= 80
    well_formed(res._repr_html_(), 4000)


def test_log_and_diff_html(study):
    log = study.log()
    h = notebook.log_html(log)
    well_formed(h)
    assert "b&#x27;" not in h and "\\x" not in h  # no raw hash bytes
    d = gt.diff(study.at(tag="baseline"), study.at())
    h = notebook.diff_html(d)
    well_formed(h, 4000)
    assert "data centre" in h


def test_escaping():
    g = gt.PowerGrid(ROOT / "cases" / "IEEE14" / "data.zip")
    g.case_path = "<script>alert(1)</script>"
    h = g._repr_html_()
    assert "<script>" not in h
    well_formed(h)


def test_a_closed_study_still_has_a_repr(tmp_path):
    run_study(ROOT / "cases" / "IEEE118" / "data.zip", tmp_path, out=lambda *a: None)
    s = gt.open(tmp_path / "study.duckdb")
    s.close()
    assert "closed" in repr(s) and "closed" in s._repr_html_()
