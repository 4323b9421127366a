"""Regenerate the bundled cases under cases/ from the installed pandapower.

    python tools/make_cases.py            # all cases
    python tools/make_cases.py IEEE14     # only some

Writes cases/<NAME>/data.zip (CSV-zip) for each case of CASES, cases/matpower/case14.m (from
pandapower's ppc of case14, via pandapower.converter.to_mpc) and cases/json/example_multivoltage.json
(pandapower.to_json of pandapower.networks.example_multivoltage()).  The output is deterministic:
running it twice gives the same bytes.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: bundled case name -> pandapower.networks function
CASES = {
    "IEEE14": "case14",
    "IEEE30": "case30",
    "IEEE57": "case57",
    "IEEE118": "case118",
    "IEEE300": "case300",
    "PEGASE1354": "case1354pegase",
    "PEGASE2869": "case2869pegase",
    "PEGASE9241": "case9241pegase",
}


def _import_gridtape():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    try:
        import gridtape.world  # noqa: F401
    except ImportError:  # not installed: the package lives at ROOT/gridtape, its subpackages at ROOT
        for k in [k for k in sys.modules if k == "gridtape" or k.startswith("gridtape.")]:
            del sys.modules[k]
        spec = importlib.util.spec_from_file_location(
            "gridtape", os.path.join(ROOT, "gridtape", "__init__.py"),
            submodule_search_locations=[os.path.join(ROOT, "gridtape"), ROOT])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gridtape"] = mod
        spec.loader.exec_module(mod)
        import gridtape.world  # noqa: F401


def csv_files_from_net(net) -> dict:
    """``{member: text}`` of the CSV-zip of a pandapower net.  Goes through a World (validated);
    when the schema rejects the net, falls back to writing pandapower's tables as they are (same
    columns, same encoding) and says so."""
    from gridtape.errors import GridtapeError
    from gridtape.world.io_csvzip import network_csv, table_csv
    from gridtape.world.io_pandapower import from_pandapower, normalize_pp_tables
    from gridtape.world.schema import KIND_ORDER, KINDS

    try:
        w = from_pandapower(net)
    except GridtapeError as e:
        print(f"  warning: the schema rejects this net ({e}); writing pandapower's tables as they are",
              file=sys.stderr)
    else:
        files = {"network.csv": network_csv(w.name, w.sn_mva, w.f_hz)}
        for kind in KIND_ORDER:
            t = w[kind]
            if len(t):
                cols = {c: t.cols[c] for c in t.spec.names}
                cols.update({c: v for c, v in t.extra.items() if c not in cols})
                files[f"{kind}.csv"] = table_csv(kind, t.ids, cols)
        return files
    import pandas as pd

    tables = {k: v for k, v in net.items() if isinstance(v, pd.DataFrame)}
    frames = normalize_pp_tables(tables, format_version=net.get("format_version"))
    files = {"network.csv": network_csv(net.name or "", net.sn_mva, net.f_hz)}
    for kind in KIND_ORDER:
        df = frames.get(kind)
        if df is None or not len(df):
            continue
        spec = KINDS[kind]
        cols = {}
        for c in spec.columns:
            if c.name in df.columns:
                cols[c.name] = df[c.name].to_numpy(dtype=object)
            else:
                from gridtape.world.world import default_column

                cols[c.name] = default_column(c, len(df))
        for c in df.columns:
            if c not in cols and c != "tap_phase_shifter":
                cols[c] = df[c].to_numpy(dtype=object)
        files[f"{kind}.csv"] = table_csv(kind, df.index.to_numpy(), cols)
    return files


def make_case(name: str, fn: str) -> str:
    import pandapower.networks as pn

    from gridtape.world.io_csvzip import write_zip_files

    net = getattr(pn, fn)()
    out = os.path.join(ROOT, "cases", name)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "data.zip")
    write_zip_files(csv_files_from_net(net), path)
    return path


def make_matpower_case14() -> str:
    import pandapower.networks as pn
    from pandapower.converter.matpower import to_mpc

    from gridtape.world.io_matpower import write_matpower

    mpc = to_mpc(pn.case14(), init="flat")["mpc"]
    out = os.path.join(ROOT, "cases", "matpower")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "case14.m")
    header = ("CASE14    IEEE 14 bus test case, as pandapower holds it (pandapower.networks.case14).\n"
              "Written by tools/make_cases.py from pandapower.converter.to_mpc(case14(), init='flat').\n"
              "Origin: IEEE Common Data Format ieee14cdf.txt (UW Power Systems Test Case Archive),\n"
              "converted to MATPOWER by cdf2matp; base voltages as in pandapower.")
    write_matpower(mpc, path, "case14", header=header)
    return path


def make_json_example() -> str:
    import pandapower as pp
    import pandapower.networks as pn

    out = os.path.join(ROOT, "cases", "json")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "example_multivoltage.json")
    pp.to_json(pn.example_multivoltage(), path)
    return path


def main(argv=None) -> int:
    warnings.filterwarnings("ignore")
    _import_gridtape()
    names = (argv if argv is not None else sys.argv[1:]) or list(CASES) + ["matpower", "json"]
    for name in names:
        if name in CASES:
            path = make_case(name, CASES[name])
        elif name == "matpower":
            path = make_matpower_case14()
        elif name == "json":
            path = make_json_example()
        else:
            print(f"unknown case {name!r}; known: {', '.join(CASES)}, matpower, json", file=sys.stderr)
            return 2
        print(f"{name}: {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
