"""The run's outputs: metrics.json, predictions.csv, report.json, report.md and report.html."""
from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

import markdown
import pandas as pd

from cardio.cache import atomic_path, write_text_atomic
from cardio.data import CardioError, Predictions, Section

SCHEMA = "cardio-metrics/1"


KEY_FILE = "pseudonym.key"


def pseudonym_key(cache_dir: str | Path) -> bytes:
    """The project's pseudonym key: <cache_dir>/pseudonym.key (owner-only), made once, never in a run directory.

    One key per cache, so runs of different plugins on the same patients give them the same pseudonyms
    (what `cardio fuse` joins on), while nobody without the key can recompute them from a list of MRNs.
    """
    import secrets

    path = Path(cache_dir).expanduser() / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another run made meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    text = path.read_text().strip()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise CardioError(f"{path} is not a cardio pseudonym key (64 hex digits); restore it or remove it (a new key "
                          "gives every patient new pseudonyms)")
    return bytes.fromhex(text)


def pseudonyms(values, key: bytes | None, prefix: str) -> list[str]:
    """Keyed-hash pseudonyms (HMAC-SHA256, 12 hex digits): the same id gives the same pseudonym in every run
    and output made with the same key; without a key (None) a fresh random one is used."""
    import hashlib
    import hmac
    import secrets

    key = key if key is not None else secrets.token_bytes(32)
    return [prefix + hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()[:12].upper() for v in values]


def pseudonymize(table: pd.DataFrame, key: bytes | None = None) -> pd.DataFrame:
    """Replace record and patient ids by keyed pseudonyms: no input identifier reaches an output."""
    out = table.copy()
    for col, prefix in (("patient_id", "P"), ("record_id", "R")):
        if col in out.columns:
            out[col] = pseudonyms(out[col].astype(str), key, prefix)
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
    section = config.get("report") if isinstance(config, dict) else None
    names = section.get("display_names") if isinstance(section, dict) else None
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


def write_predictions(run_dir: Path, predictions: Predictions, key: bytes | None = None,
                      pseudonymous: bool = False) -> None:
    """predictions.csv, pseudonymized (unless its ids already are pseudonyms: cardio fuse's); rows in the order
    the plugin gave them (the cohort's, per model and task)."""
    with atomic_path(run_dir / "predictions.csv") as tmp:
        (predictions.table if pseudonymous else pseudonymize(predictions.table, key)).to_csv(tmp, index=False)


def write_run(run_dir: Path, meta: dict, predictions: Predictions, sections: list[Section],
              key: bytes | None = None, pseudonymous: bool = False) -> None:
    """Write every output file of a finished run."""
    from cardio.stats.result import json_safe

    estimates, tests = [], []
    for sec in sections:
        estimates += [{**e, "section": e.get("section", sec.title)} for e in sec.estimates]
        tests += [{**t, "section": t.get("section", sec.title)} for t in sec.tests]
    metrics = {"schema": SCHEMA, **meta, "estimates": estimates, "tests": tests}
    write_text_atomic(run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=1))
    write_predictions(run_dir, predictions, key, pseudonymous)
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
    why = _malformed(doc)
    if why:
        raise CardioError(f"{path}: {why} (damaged, or not written by cardio); restore it, or make the run again")
    return doc


def _malformed(doc) -> str | None:
    """What in report.json is not as cardio writes it, in words; None when nothing."""
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict) or not isinstance(doc.get("sections"), list):
        return "not a mapping with meta (a mapping) and sections (a list)"
    lacking = [k for k in META_KEYS if k not in doc["meta"]]
    if lacking:
        return f"meta lacks {', '.join(lacking)}"
    kinds = {"figures": list, "tables": dict}
    for i, sec in enumerate(doc["sections"], 1):
        if not isinstance(sec, dict) or any(k not in sec for k in SECTION_KEYS):
            return f"section {i} lacks one of {', '.join(SECTION_KEYS)}"
        where = f"section {i} ({str(sec['title'])[:40]!r})"
        for key, kind in kinds.items():
            if not isinstance(sec[key], kind):
                return f"{where}: {key} is {json.dumps(sec[key])[:40]}, not a {kind.__name__}"
        if not all(isinstance(f, str) for f in sec["figures"]):
            return f"{where}: figures must name files"
        for name, t in sec["tables"].items():
            if not (isinstance(t, dict) and isinstance(t.get("data"), list) and isinstance(t.get("columns"), list)
                    and all(isinstance(r, list) and len(r) == len(t["columns"]) for r in t["data"])):
                return f"{where}: table {str(name)[:40]!r} is not columns and rows"
    return None


# Headers the core's own tables use, shown by name unless report.display_names says otherwise.
STAT_NAMES = {"auc": "AUC", "p_value": "p", "p_adjusted": "p (adjusted)", "ci_low": "CI low", "ci_high": "CI high",
              "estimate": "estimate", "n_pos": "positives", "n_neg": "negatives", "model_a": "model A",
              "model_b": "model B", "n_resamples": "resamples", "se": "SE"}
LONG_TABLE = 15  # rows: a longer table is collapsed and follows the figures
EMBED_WIDTH = 1000  # pixels: a wide figure is embedded at most this wide (the PNG files keep 300 dpi)
NARROW_WIDTH = 640  # pixels: a one-panel figure, shown half the page wide (about 560 px), at most this
WIDE_PIXELS = 2200  # a saved figure at least this wide (7.3 inches at 300 dpi: two panels or more) spans the page
_LINK_END = re.compile(r"\](?=\s*[(\[:])")  # the only ways a "]" can close a link, image or reference


def _text(v) -> str:
    """Text with no way to link or embed in Markdown: HTML escaped, backslashes and link-closing brackets too."""
    return _LINK_END.sub(r"\\]", html.escape(str(v), quote=False).replace("\\", "\\\\"))


def _value(v) -> str:
    """A value from the data as text in a Markdown table: as _text, and no bar left to split a cell."""
    return _text(v).replace("|", "\\|")


class _TextOnly(markdown.Extension):
    """Markdown without links, images or raw HTML: what a section's text may hold (emphasis, lists, code)."""

    def extendMarkdown(self, md) -> None:
        for name in ("reference", "link", "image_link", "image_reference", "short_reference", "short_image_ref",
                     "autolink", "automail", "html"):
            if name in md.inlinePatterns:
                md.inlinePatterns.deregister(name)
        md.preprocessors.deregister("html_block")


def _text_html(text: str) -> str:
    return markdown.markdown(_text(text), extensions=[_TextOnly()])


def _figure_png(run_dir: Path, link: str) -> tuple[bytes, int] | None:
    """(the figure's PNG at most EMBED_WIDTH pixels wide, NARROW_WIDTH for a one-panel figure, the saved file's
    width) when it lies in the run
    directory; None when it does not; empty bytes when it is not a readable PNG."""
    import io

    from PIL import Image

    root = run_dir.resolve()
    path = (run_dir / str(link)).resolve()  # an absolute link stays absolute
    if not path.is_relative_to(root) or not path.is_file():
        return None
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"", 0
    width = int.from_bytes(data[16:20], "big")  # the IHDR width
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        limit = EMBED_WIDTH if width >= WIDE_PIXELS else NARROW_WIDTH
        if image.width > limit:
            image = image.resize((limit, round(image.height * limit / image.width)), Image.Resampling.LANCZOS)
        # 128 colours: plots and colour maps lose nothing visible at this size, and the page stays small (the PNG
        # files keep every colour)
        image = image.convert("RGB").quantize(128)  # also drops alpha and any text chunks the file carried
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue(), width
    except (OSError, ValueError):
        return b"", 0


PAGE_BUDGET = 1_900_000  # bytes of embedded figures: a report stays under 2 MB; the rest are linked


def _embedding(run_dir: Path, sections: list[dict]) -> tuple[dict, set]:
    """Every figure's embeddable PNG, and which of them fit the page's budget: taken in turn from each section
    (every section's first figure, then every section's second, ...), so no section loses all its figures."""
    found = {str(f): _figure_png(run_dir, f) for sec in sections for f in sec["figures"]}
    rounds = max((len(sec["figures"]) for sec in sections), default=0)
    order = [str(sec["figures"][k]) for k in range(rounds) for sec in sections if k < len(sec["figures"])]
    keep, used = set(), 0
    for link in order:
        data = (found.get(link) or (b"", 0))[0]
        size = 4 * ((len(data) + 2) // 3)  # base64
        if data and used + size <= PAGE_BUDGET:
            keep.add(link)
            used += size
    return found, keep


def _figure_html(run_dir: Path, link: str, found: tuple[bytes, int] | None = None, embed: bool = True) -> str:
    """A figure embedded as base64, only when it is a PNG inside the run directory; wide ones span the page;
    past the page's budget, a link to the file beside the report."""
    name = html.escape(Path(str(link)).stem)
    found = _figure_png(run_dir, link) if found is None else found
    if found is not None and found[0] and not embed:
        href = html.escape(str(link))
        return (f'<figure class="narrow"><a href="{href}">{name}</a><figcaption>linked, not embedded (the page '
                f"stays under 2 MB): {href}</figcaption></figure>")
    if found is None:
        return f"<p><em>figure {name} is not embedded: it does not lie in the run directory</em></p>"
    data, width = found
    if not data:
        return f"<p><em>figure {name} is not embedded: it is not a PNG file</em></p>"
    wide = width >= WIDE_PIXELS  # a multi-panel figure
    return (f'<figure class="{"wide" if wide else "narrow"}"><img alt="{name}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}"><figcaption>{name}</figcaption></figure>')


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _tables(sec: dict, names: dict | None) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for name, t in sec["tables"].items():
        table = display_table(pd.DataFrame(t["data"], columns=t["columns"]), {**STAT_NAMES, **(names or {})})
        out.append((str(name), table))
    return out


def _html_table(name: str, table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    body = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if len(table) > LONG_TABLE:
        return f"<details><summary>{html.escape(name)} ({len(table)} rows)</summary>{body}</details>"
    return f"<p><strong>{html.escape(name)}</strong></p>{body}"


def _intro(doc: dict) -> list[str]:
    """The run's one-line description and its warnings, as Markdown with every value escaped."""
    meta = {k: _value(v) if not isinstance(v, list) else v for k, v in doc["meta"].items()}
    lines = [f"cardio {meta['cardio_version']}, plugin {meta['plugin']} {meta['plugin_version']}, seed {meta['seed']}, "
             f"device {meta['device']} x{meta['world_size']}, {meta['n_records']} records of {meta['n_patients']} "
             f"patients, {len(meta['folds'])} fold(s), {meta['elapsed_s']} s.", ""]
    if doc["meta"].get("null_control"):
        lines += ["**Null control.** The label and the declared outcome columns were permuted across patients "
                  "(`cohort.permute_labels: true`): every estimate below should be at chance.", ""]
    if doc["meta"].get("probable_leaks"):
        lines += ["**Probable label leak.** These feature columns predict the label almost perfectly: "
                  + _value(", ".join(doc["meta"]["probable_leaks"])) + ". If they derive from the outcome, the "
                  "plugin must declare them (`Cohort.outcomes`) and no model may use them.", ""]
    return lines


def _figure_md(run_dir: Path, link: str) -> str:
    """A figure of the run directory as a Markdown image (its path quoted); anything else as a note."""
    from urllib.parse import quote

    path = (run_dir / str(link)).resolve()
    if not path.is_relative_to(run_dir.resolve()) or not path.is_file():
        return f"_figure {_value(Path(str(link)).stem)} lies outside the run directory_"
    relative = path.relative_to(run_dir.resolve()).as_posix()
    return f"![{_value(path.stem)}]({quote(relative)})"


def _markdown(doc: dict, run_dir: Path, names: dict | None = None) -> str:
    """report.md: short tables, then figures, then long tables; values from the run are text, never Markdown."""
    lines = [f"# cardio run: {_value(doc['meta']['plugin'])}", "", *_intro(doc), "## Contents", ""]
    lines += [f"{i + 1}. {_value(sec['title'])}" for i, sec in enumerate(doc["sections"])] + [""]
    for sec in doc["sections"]:
        lines += [f"## {_value(sec['title'])}", "", _text(sec["text"]), ""]
        tables = _tables(sec, names)
        cells = [(n, t.map(lambda v: _value(_cell(v))).rename(columns=_value)) for n, t in tables]
        for name, table in [c for c in cells if len(c[1]) <= LONG_TABLE]:
            lines += [f"**{_value(name)}**", "", _md_table(table), ""]
        lines += [_figure_md(run_dir, f) for f in sec["figures"]] + [""]
        for name, table in [c for c in cells if len(c[1]) > LONG_TABLE]:
            lines += [f"**{_value(name)}** ({len(table)} rows)", "", _md_table(table), ""]
    return "\n".join(lines)


def _html(doc: dict, run_dir: Path, names: dict | None = None) -> str:
    """report.html: contents, then per section its text, short tables, figures and the long tables collapsed.

    Only cardio writes markup here: section text goes through Markdown without links, images or raw HTML,
    and table cells and names are escaped text.
    """
    title = html.escape(str(doc["meta"]["plugin"]))
    intro = markdown.markdown("\n".join(_intro(doc)), extensions=[_TextOnly()])  # its values escaped by _value
    parts = [f"<h1>cardio run: {title}</h1>", intro]
    toc = "".join(f'<li><a href="#s{i + 1}">{html.escape(str(sec["title"]))}</a></li>'
                  for i, sec in enumerate(doc["sections"]))
    parts.append(f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>")
    found, keep = _embedding(run_dir, doc["sections"])
    linked = sum(1 for link, data in found.items() if data and data[0] and link not in keep)
    if linked:
        parts.append(f"<p><em>{linked} of {len(found)} figures are linked rather than embedded, so that this page "
                     "stays under 2 MB; open the report from its run folder to follow the links.</em></p>")
    for i, sec in enumerate(doc["sections"]):
        tables = _tables(sec, names)
        parts += [f'<section id="s{i + 1}"><h2>{html.escape(str(sec["title"]))}</h2>', _text_html(sec["text"])]
        parts += [_html_table(n, t) for n, t in tables if len(t) <= LONG_TABLE]
        parts += [_figure_html(run_dir, f, found.get(str(f)), str(f) in keep) for f in sec["figures"]]
        parts += [_html_table(n, t) for n, t in tables if len(t) > LONG_TABLE]
        parts.append("</section>")
    return "\n".join(parts)


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;font-size:0.9em;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
         "th{background:#f3f3f3}figure{display:inline-block;margin:6px;vertical-align:top}"
         "figure.wide{display:block;width:100%}figure.narrow{width:48%}figure img{width:100%}"
         "figcaption{font-size:0.8em;color:#555}details{margin:0.5em 0}summary{cursor:pointer;font-weight:bold}"
         "nav ol{columns:2}")


def render(run_dir: Path) -> str:
    """(Re)write report.md and report.html from report.json (tables through the display names of the run's
    config.yaml); returns the markdown."""
    run_dir = Path(run_dir)
    doc = _read_report(run_dir)
    names = run_display_names(run_dir)
    md = _markdown(doc, run_dir, names=names)
    write_text_atomic(run_dir / "report.md", md)
    title = html.escape(str(doc["meta"]["plugin"]))
    write_text_atomic(run_dir / "report.html", f"<!doctype html><html><head><meta charset='utf-8'><title>cardio "
                                               f"{title}</title><style>{STYLE}</style></head><body>"
                                               f"{_html(doc, run_dir, names)}</body></html>")
    return md
