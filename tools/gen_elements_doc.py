"""Write docs/elements.md from the schema registry (run after changing world/schema.py)."""
from __future__ import annotations

import sys
from pathlib import Path

AFFECTS = {"inj": "incremental", "adm": "admittance", "topo": "full", "none": "-"}


def render() -> str:
    from gridtape.world.schema import KINDS, SCHEMA_VERSION, fingerprint

    out = ["# Elements and columns", "",
           "Generated from the schema registry (`gridtape.world.schema`) by `tools/gen_elements_doc.py`; "
           f"schema version {SCHEMA_VERSION}, fingerprint `{fingerprint()}`.", "",
           "Names and units are pandapower's. *Rebuild* is what a write to the column makes the next solve do: "
           "`incremental` (injections and set-points only, warm start), `admittance` (Ybus values refreshed, "
           "same pattern), `full` (topology, bus types or in_service), `-` (not used by the power flow). "
           "*Default* empty means the column is required.", ""]
    for kind in KINDS.values():
        out += [f"## {kind.name}", "", kind.doc, "", "| column | dtype | unit | default | range | rebuild | notes |",
                "|---|---|---|---|---|---|---|"]
        for c in kind.columns:
            rng = ""
            if c.lo is not None or c.hi is not None:
                rng = f"{'(' if c.lo_open else '['}{'' if c.lo is None else c.lo}, {'' if c.hi is None else c.hi}]"
            if c.choices:
                rng = ", ".join(c.choices)
            notes = c.doc
            if c.ref:
                notes = (notes + "; " if notes else "") + f"refers to {c.ref}"
            if c.nan_ok:
                notes = (notes + "; " if notes else "") + "NaN allowed"
            default = "" if c.required else ("None" if c.default is None else repr(c.default))
            out.append(f"| {c.name} | {c.dtype} | {c.unit} | {default} | {rng} | {AFFECTS[c.affects]} | {notes} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    path = Path(__file__).resolve().parent.parent / "docs" / "elements.md"
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if path.read_text() == text else 1)
    path.write_text(text)
    print(f"wrote {path}")
