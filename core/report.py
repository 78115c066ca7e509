"""The run's outputs: metrics.json, predictions.csv, report.json, report.md and report.html."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import markdown
import pandas as pd

from cardio.data import Predictions, Section

SCHEMA = "cardio-metrics/1"


def pseudonymize(table: pd.DataFrame) -> pd.DataFrame:
    """Replace record and patient ids by stable pseudonyms: no input identifier reaches an output."""
    out = table.copy()
    for col, prefix in (("patient_id", "P"), ("record_id", "R")):
        if col in out.columns:
            codes = {v: f"{prefix}{i + 1:05d}" for i, v in enumerate(sorted(out[col].astype(str).unique()))}
            out[col] = out[col].astype(str).map(codes)
    return out


def _md_table(df: pd.DataFrame) -> str:
    if df is None or not len(df):
        return "_(empty)_"
    cells = [[str(c) for c in df.columns]] + [["" if pd.isna(v) else (f"{v:.4g}" if isinstance(v, float) else str(v))
                                              for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(df.columns))
    return "\n".join(lines)


def _relative(path, run_dir: Path) -> str:
    """Figures are linked relative to the run directory; one elsewhere keeps its absolute path."""
    path = Path(path).resolve()
    return str(path.relative_to(run_dir.resolve())) if path.is_relative_to(run_dir.resolve()) else str(path)


def _section_dict(sec: Section, run_dir: Path) -> dict:
    figs = [_relative(f, run_dir) for f in sec.figures]
    return {"title": sec.title, "text": sec.text, "figures": figs,
            "tables": {k: json.loads(v.to_json(orient="split", index=False)) for k, v in sec.tables.items()}}


def write_predictions(run_dir: Path, predictions: Predictions) -> None:
    pseudonymize(predictions.table).to_csv(run_dir / "predictions.csv", index=False)


def write_run(run_dir: Path, meta: dict, predictions: Predictions, sections: list[Section]) -> None:
    """Write every output file of a finished run."""
    from cardio.stats.result import json_safe

    estimates, tests = [], []
    for sec in sections:
        estimates += [{**e, "section": e.get("section", sec.title)} for e in sec.estimates]
        tests += [{**t, "section": t.get("section", sec.title)} for t in sec.tests]
    metrics = {"schema": SCHEMA, **meta, "estimates": estimates, "tests": tests}
    (run_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=1))
    write_predictions(run_dir, predictions)
    doc = {"meta": meta, "sections": [_section_dict(s, run_dir) for s in sections]}
    (run_dir / "report.json").write_text(json.dumps(json_safe(doc), indent=1))
    render(run_dir)


def render(run_dir: Path) -> str:
    """(Re)write report.md and report.html from report.json; returns the markdown."""
    run_dir = Path(run_dir)
    doc = json.loads((run_dir / "report.json").read_text())
    meta = doc["meta"]
    lines = [f"# cardio run: {meta['plugin']}", "",
             f"cardio {meta['cardio_version']}, plugin {meta['plugin']} {meta['plugin_version']}, seed {meta['seed']}, "
             f"device {meta['device']} x{meta['world_size']}, {meta['n_records']} records of {meta['n_patients']} "
             f"patients, {len(meta['folds'])} fold(s), {meta['elapsed_s']} s.", ""]
    for sec in doc["sections"]:
        lines += [f"## {sec['title']}", "", sec["text"], ""]
        for name, t in sec["tables"].items():
            lines += [f"**{name}**", "", _md_table(pd.DataFrame(t["data"], columns=t["columns"])), ""]
        lines += [f"![{Path(f).stem}]({f})" for f in sec["figures"]] + [""]
    md = "\n".join(lines)
    (run_dir / "report.md").write_text(md)
    html = markdown.markdown(md, extensions=["tables"])

    def embed(m: re.Match) -> str:
        path = run_dir / m.group(2)  # an absolute link stays absolute under /
        if not path.exists():
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{m.group(1)}" src="data:image/png;base64,{data}"'

    html = re.sub(r'<img alt="([^"]*)" src="([^"]+)"', embed, html)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:48%;margin:4px}")
    (run_dir / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>cardio "
                                         f"{meta['plugin']}</title><style>{style}</style></head><body>{html}</body></html>")
    return md
