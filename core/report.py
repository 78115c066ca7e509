"""The run's outputs: metrics.json, predictions.csv, report.json, report.md and report.html."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import markdown
import pandas as pd

from cardio.cache import atomic_path, write_text_atomic
from cardio.data import CardioError, Predictions, Section

SCHEMA = "cardio-metrics/1"


def pseudonymize(table: pd.DataFrame) -> pd.DataFrame:
    """Replace record and patient ids by stable pseudonyms: no input identifier reaches an output."""
    out = table.copy()
    for col, prefix in (("patient_id", "P"), ("record_id", "R")):
        if col in out.columns:
            codes = {v: f"{prefix}{i + 1:05d}" for i, v in enumerate(sorted(out[col].astype(str).unique()))}
            out[col] = out[col].astype(str).map(codes)
    return out


# Table columns whose cells are names of columns, models or tasks: shown through report.display_names.
NAME_COLUMNS = ("variable", "model", "task", "model A", "model B", "feature")


def display_name(name, names: dict | None) -> str:
    """The name tables and figures show for a column, model or task (report.display_names), else the name."""
    return str((names or {}).get(str(name), name))


def split_unit(name: str) -> tuple[str, str | None]:
    """"LVEF (%)" -> ("LVEF", "%"): a display name carries its unit in a trailing parenthesis, or has none."""
    name = str(name).strip()
    if name.endswith(")") and "(" in name:
        head, _, unit = name[:-1].rpartition("(")
        if head.strip() and unit.strip():
            return head.strip(), unit.strip()
    return name, None


def display_table(table: pd.DataFrame, names: dict | None) -> pd.DataFrame:
    """Headers and the cells of name columns (variable, model, task, ...; subgroup's `column=level`) shown
    through the display names; the data in report.json and metrics.json keep the column names."""
    if not names:
        return table
    out = table.copy()
    for col in out.columns:
        if col in NAME_COLUMNS:
            out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and pd.isna(v))
                                    else display_name(v, names))
        elif col == "subgroup":
            out[col] = out[col].map(lambda v: "=".join([display_name(str(v).partition("=")[0], names),
                                                        str(v).partition("=")[2]]) if "=" in str(v) else v)
    return out.rename(columns=lambda c: display_name(c, names) if c not in NAME_COLUMNS else c)


def run_display_names(run_dir: Path) -> dict:
    """report.display_names of the run's config.yaml ({} for a run without one)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        raise CardioError(f"{path} is not valid YAML (damaged, or not written by cardio)") from None
    names = ((config or {}).get("report") or {}).get("display_names") if isinstance(config, dict) else None
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


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
    with atomic_path(run_dir / "predictions.csv") as tmp:
        pseudonymize(predictions.table).to_csv(tmp, index=False)


def write_run(run_dir: Path, meta: dict, predictions: Predictions, sections: list[Section]) -> None:
    """Write every output file of a finished run."""
    from cardio.stats.result import json_safe

    estimates, tests = [], []
    for sec in sections:
        estimates += [{**e, "section": e.get("section", sec.title)} for e in sec.estimates]
        tests += [{**t, "section": t.get("section", sec.title)} for t in sec.tests]
    metrics = {"schema": SCHEMA, **meta, "estimates": estimates, "tests": tests}
    write_text_atomic(run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=1))
    write_predictions(run_dir, predictions)
    doc = {"meta": meta, "sections": [_section_dict(s, run_dir) for s in sections]}
    write_text_atomic(run_dir / "report.json", json.dumps(json_safe(doc), indent=1))
    render(run_dir)


META_KEYS = ("plugin", "cardio_version", "plugin_version", "seed", "device", "world_size", "n_records",
             "n_patients", "folds", "elapsed_s")
SECTION_KEYS = ("title", "text", "figures", "tables")


def _read_report(run_dir: Path) -> dict:
    """report.json, checked: a damaged or foreign file is one line naming it, never a traceback."""
    path = run_dir / "report.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CardioError(f"{run_dir} has no report.json: not a finished cardio run") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CardioError(f"{path} is not valid JSON (damaged, or not written by cardio)") from None
    ok = (isinstance(doc, dict) and isinstance(doc.get("meta"), dict) and isinstance(doc.get("sections"), list)
          and all(k in doc["meta"] for k in META_KEYS)
          and all(isinstance(sec, dict) and all(k in sec for k in SECTION_KEYS) for sec in doc["sections"])
          and all(isinstance(t, dict) and "data" in t and "columns" in t
                  for sec in doc["sections"] for t in (sec["tables"].values() if isinstance(sec["tables"], dict)
                                                       else [None])))
    if not ok:
        raise CardioError(f"{path} is incomplete or malformed (damaged, or not written by cardio)")
    return doc


def _figure_html(run_dir: Path, link: str) -> str:
    """A figure embedded as base64, only when it is a PNG inside the run directory."""
    root = run_dir.resolve()
    path = (run_dir / str(link)).resolve()  # an absolute link stays absolute
    name = html.escape(Path(str(link)).stem)
    if not path.is_relative_to(root) or not path.is_file():
        return f"<p><em>figure {name} is not embedded: it does not lie in the run directory</em></p>"
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return f"<p><em>figure {name} is not embedded: it is not a PNG file</em></p>"
    return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _markdown(doc: dict, run_dir: Path, for_html: bool, names: dict | None = None) -> str:
    """The report as markdown; for the HTML page every value from the run is escaped first, and
    figures become embedded images, so a cohort value or an edited report.json cannot carry markup.
    Tables show `names` (report.display_names) for columns, models and tasks."""
    esc = (lambda v: html.escape(str(v), quote=False)) if for_html else str
    meta = {k: esc(v) if not isinstance(v, list) else v for k, v in doc["meta"].items()}
    lines = [f"# cardio run: {meta['plugin']}", "",
             f"cardio {meta['cardio_version']}, plugin {meta['plugin']} {meta['plugin_version']}, seed {meta['seed']}, "
             f"device {meta['device']} x{meta['world_size']}, {meta['n_records']} records of {meta['n_patients']} "
             f"patients, {len(meta['folds'])} fold(s), {meta['elapsed_s']} s.", ""]
    if doc["meta"].get("null_control"):
        lines += ["**Null control.** The label and the declared outcome columns were permuted across patients "
                  "(`cohort.permute_labels: true`): every estimate below should be at chance.", ""]
    if doc["meta"].get("probable_leaks"):
        lines += ["**Probable label leak.** These feature columns predict the label almost perfectly: "
                  + esc(", ".join(doc["meta"]["probable_leaks"])) + ". If they derive from the outcome, the plugin "
                  "must declare them (`Cohort.outcomes`) and no model may use them.", ""]
    for sec in doc["sections"]:
        lines += [f"## {esc(sec['title'])}", "", esc(sec["text"]), ""]
        for name, t in sec["tables"].items():
            table = display_table(pd.DataFrame(t["data"], columns=t["columns"]), names)
            table.columns = [esc(c) for c in table.columns]
            if for_html:
                table = table.map(lambda v: esc(v) if isinstance(v, str) else v)
            lines += [f"**{esc(name)}**", "", _md_table(table), ""]
        if for_html:
            lines += [_figure_html(run_dir, f) for f in sec["figures"]] + [""]
        else:
            lines += [f"![{Path(str(f)).stem}]({f})" for f in sec["figures"]] + [""]
    return "\n".join(lines)


def render(run_dir: Path) -> str:
    """(Re)write report.md and report.html from report.json (tables through the display names of the run's
    config.yaml); returns the markdown."""
    run_dir = Path(run_dir)
    doc = _read_report(run_dir)
    names = run_display_names(run_dir)
    md = _markdown(doc, run_dir, for_html=False, names=names)
    write_text_atomic(run_dir / "report.md", md)
    body = markdown.markdown(_markdown(doc, run_dir, for_html=True, names=names), extensions=["tables"])
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:48%;margin:4px}")
    title = html.escape(str(doc["meta"]["plugin"]))
    write_text_atomic(run_dir / "report.html", f"<!doctype html><html><head><meta charset='utf-8'><title>cardio "
                                               f"{title}</title><style>{style}</style></head><body>{body}</body></html>")
    return md
