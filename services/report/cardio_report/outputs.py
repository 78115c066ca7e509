"""report.md and report.html, rendered from the report.json a run writes (the kernel writes it with metrics.json and
predictions.csv: cardio.study.outputs), and the display names the report's tables and figures show."""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import markdown
import pandas as pd

from cardio import allotted_cpus
from cardio import config as config_mod
from cardio.data import PARTS, CardioError
from cardio.data.cache import write_text_atomic
from cardio_report import tripod
from cardio_report.markup import CHECKLIST_HEADING, HEADINGS, TABLES_HEADING, plain_text, table_text

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


def run_config(run_dir: Path) -> dict:
    """The run's config.yaml ({} for a run without one), read as strictly as a user's (no tag, no key twice)."""

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        return config_mod.load_yaml(path)
    except CardioError as e:
        raise CardioError(f"{e} (damaged, or not written by cardio)") from None


def run_display_names(run_dir: Path) -> dict:
    """report.display_names of the run's config.yaml ({} for a run without one)."""
    section = run_config(run_dir).get("report")
    names = section.get("display_names") if isinstance(section, dict) else None
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


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
        if sec.get("part") is not None and sec["part"] not in PARTS:
            return f"{where}: part {json.dumps(sec['part'])[:40]} is not one of {', '.join(PARTS)}"
        for name, t in sec["tables"].items():
            if not (isinstance(t, dict) and isinstance(t.get("data"), list) and isinstance(t.get("columns"), list)
                    and all(isinstance(r, list) and len(r) == len(t["columns"]) for r in t["data"])):
                return f"{where}: table {str(name)[:40]!r} is not columns and rows"
    return None


# Headers the core's own tables use, shown by name unless report.display_names says otherwise.
STAT_NAMES = {"auc": "AUC", "p_value": "p", "p_adjusted": "p (adjusted)", "ci_low": "CI low", "ci_high": "CI high",
              "estimate": "estimate", "n_pos": "positives", "n_neg": "negatives", "model_a": "model A",
              "model_b": "model B", "n_resamples": "resamples", "se": "SE"}
LONG_TABLE = 15  # rows: a longer table (but the cohort's) goes to the appendix of full tables; its section says where
class _TextOnly(markdown.Extension):
    """Markdown without links, images or raw HTML: what a section's text may hold (emphasis, lists, code)."""

    def extendMarkdown(self, md) -> None:
        for name in ("reference", "link", "image_link", "image_reference", "short_reference", "short_image_ref",
                     "autolink", "automail", "html"):
            if name in md.inlinePatterns:
                md.inlinePatterns.deregister(name)
        md.preprocessors.deregister("html_block")


def _text_html(text: str) -> str:
    return markdown.markdown(plain_text(text), extensions=[_TextOnly()])


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass
class _Table:
    name: str
    table: pd.DataFrame
    appendix: str = ""  # "B2" where it is one of the full tables


@dataclass
class _Figure:
    link: str  # as report.json names it; relative to the run directory where the file lies in it
    number: int
    caption: str
    path: Path | None  # None: not a file of the run directory


@dataclass
class _Placed:
    """A section where the report shows it: its anchor, heading (None: the part's own), tables and figures."""

    sec: dict
    anchor: str
    heading: str | None
    tables: list[_Table]
    figures: list[_Figure]


@dataclass
class Layout:
    """The report as a paper: the parts in order with their sections, and the appendix of full tables."""

    parts: list[tuple[str, list[_Placed]]]
    full_tables: list[tuple[_Placed, _Table]]

    def anchors(self) -> dict[str, str]:
        """Each part present -> its anchor; "tables" when there are full tables."""
        out = {key: key for key, _ in self.parts}
        if self.full_tables:
            out["tables"] = "tables"
        return out


def section_part(sec: dict) -> str:
    """Where a section of report.json goes: its part; a report.json written before parts existed puts its
    performance section with the performance and every other with the comparisons."""
    part = sec.get("part")
    if isinstance(part, str) and part in PARTS:
        return part
    return "performance" if sec.get("title") == "Performance" else "comparison"


def layout(doc: dict, run_dir: Path, names: dict | None) -> Layout:
    """Sections sorted into the parts (in report.json's order within a part), figures numbered in reading order,
    and every table longer than LONG_TABLE rows moved to the appendix of full tables."""
    by_part: dict[str, list[dict]] = {p: [] for p in PARTS}
    for sec in doc["sections"]:
        by_part[section_part(sec)].append(sec)
    parts: list[tuple[str, list[_Placed]]] = []
    full: list[tuple[_Placed, _Table]] = []
    k = n_fig = 0
    for key in PARTS:
        placed = []
        for sec in by_part[key]:
            k += 1
            tables = [_Table(str(name), display_table(pd.DataFrame(t["data"], columns=t["columns"]),
                                                      {**STAT_NAMES, **(names or {})}))
                      for name, t in sec["tables"].items()]
            figures = []
            for link in sec["figures"]:
                n_fig += 1
                path = _run_file(run_dir, link)
                shown = path.relative_to(run_dir.resolve()).as_posix() if path is not None else str(link)
                figures.append(_Figure(shown, n_fig, _caption(path, str(link)), path))
            heading = None if str(sec["title"]) == HEADINGS[key] else str(sec["title"])
            p = _Placed(sec, f"s{k}", heading, tables, figures)
            for t in tables:
                if len(t.table) > LONG_TABLE and key != "cohort":  # a Table 1 is the cohort part's content
                    t.appendix = f"B{len(full) + 1}"
                    full.append((p, t))
            placed.append(p)
        if placed:
            parts.append((key, placed))
    return Layout(parts, full)


def _run_file(run_dir: Path, link) -> Path | None:
    """The file a figure link names when it lies inside the run directory (an absolute link stays absolute)."""
    root = run_dir.resolve()
    path = (run_dir / str(link)).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _caption(path: Path | None, link: str) -> str:
    """The figure's caption: the Description its file carries (cardio_report.figures.save_figure), else its name in
    words; a sentence either way."""
    text = ""
    if path is not None and path.suffix.lower() == ".png":
        from PIL import Image

        try:
            with Image.open(path) as image:  # the text chunks before the pixels (save_figure's): no decoding
                text = str(image.info.get("Description", "")).strip()
        except (OSError, ValueError):
            text = ""
    text = text or Path(link).stem.replace("_", " ")
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


PAGE_LIMIT = 2_000_000  # bytes: the whole report.html, figures embedded
SCALE = 80  # pixels per inch of a figure's saved size on the page (a 10 pt label is 11 px): the first try
MIN_SCALE = 40  # below this labels blur; a page that does not fit then links its last figures instead
MAX_WIDTH = 1100  # pixels: the page's text width
WEBP_GAIN = 0.6  # WebP replaces the palette PNG where it is under this fraction of its size (photographs, overlays)


@dataclass
class _Image:
    data: bytes
    mime: str
    width: int
    height: int

    def uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"

    def size(self) -> int:
        return 4 * ((len(self.data) + 2) // 3) + len(self.mime) + 13  # the data URI's length


def _web_image(path: Path, scale: float) -> _Image | None:
    """The figure at `scale` pixels per inch of its saved size (its dpi, else 300), at most MAX_WIDTH wide: a PNG
    with a 64-colour palette, which keeps the edges of lines and letters, or WebP where that is much smaller
    (photographs and overlays). None when the file is not a readable image. The PNG file keeps every pixel."""
    import io

    from PIL import Image

    try:
        with Image.open(path) as image:
            dpi = float((image.info.get("dpi") or (300,))[0]) or 300.0
            width = max(1, min(MAX_WIDTH, round(image.width / dpi * scale)))
            height = max(1, round(image.height * width / image.width))
            small = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    png, webp = io.BytesIO(), io.BytesIO()
    small.quantize(64).save(png, format="PNG", optimize=True)  # also drops any text chunk the file carried
    small.save(webp, format="WEBP", quality=82, method=4)
    if len(webp.getvalue()) < WEBP_GAIN * len(png.getvalue()):
        return _Image(webp.getvalue(), "image/webp", width, height)
    return _Image(png.getvalue(), "image/png", width, height)


def _images(figures: list[_Figure], room: int) -> tuple[dict[str, _Image], float]:
    """Every figure's page image, at SCALE or, where they would not fit in `room` bytes, all at one smaller scale
    (as far as MIN_SCALE); figures past the room at MIN_SCALE are left out (linked). Returns (images, scale)."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import repeat


    files = {f.link: f.path for f in figures if f.path is not None}
    scale = float(SCALE)
    # Pillow decodes, resizes and encodes without the GIL: threads on the allotted CPUs (2 on 2: 2.1x, same bytes)
    with ThreadPoolExecutor(max(1, min(allotted_cpus(), len(files)))) as pool:
        while True:
            made = dict(zip(files, pool.map(_web_image, files.values(), repeat(scale))))
            images = {link: im for link, im in made.items() if im is not None}
            total = sum(im.size() for im in images.values())
            if total <= room or scale <= MIN_SCALE:
                break
            scale = max(MIN_SCALE, scale * 0.97 * (room / total) ** 0.5)  # bytes grow about as the area
    kept, used = {}, 0
    for f in figures:  # in reading order: the first figures keep their place
        im = images.get(f.link)
        if im is not None and used + im.size() <= room:
            kept[f.link] = im
            used += im.size()
    return kept, scale


def _name(name: str) -> str:
    """A table's name as a caption: its first letter capital."""
    return name[:1].upper() + name[1:]


def _md_table(df: pd.DataFrame) -> str:
    """A Markdown table of values from the data, each escaped (_value)."""
    if df is None or not len(df):
        return "_(empty)_"
    cells = [[table_text(c) for c in df.columns]] + [[table_text(_cell(v)) for v in row]
                                                     for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(df.columns))
    return "\n".join(lines)


def _intro(doc: dict) -> list[str]:
    """The run's one-line description and its warnings, as Markdown with every value escaped."""
    meta = {k: table_text(v) if not isinstance(v, list) else v for k, v in doc["meta"].items()}
    lines = [f"cardio {meta['cardio_version']}, plugin {meta['plugin']} {meta['plugin_version']}, seed {meta['seed']}, "
             f"device {meta['device']} x{meta['world_size']}, {meta['n_records']} records of {meta['n_patients']} "
             f"patients, {len(meta['folds'])} fold(s), {meta['elapsed_s']} s"
             + (" since the run was last resumed." if doc["meta"].get("resumed") else "."), ""]
    if doc["meta"].get("null_control"):
        lines += ["**Null control.** The label and the declared outcome columns were permuted across patients "
                  "(`cohort.permute_labels: true`): every estimate below should be at chance.", ""]
    if doc["meta"].get("probable_leaks"):
        lines += ["**Probable label leak.** These feature columns predict the label almost perfectly: "
                  + table_text(", ".join(doc["meta"]["probable_leaks"])) + ". If they derive from the outcome, the "
                  "plugin must declare them (`Cohort.outcomes`) and no model may use them.", ""]
    return lines


def title(meta: dict) -> str:
    """The report's title: a run's plugin, or what `cardio predict` did with a run's model (external validation,
    or validation on the model's own training records)."""
    plugin = str(meta.get("plugin"))
    kind = meta.get("kind")
    if kind and meta.get("folds") and meta["folds"][0].get("name") == "external":
        return f"{str(kind)[:1].upper()}{str(kind)[1:]} of a {plugin} model"
    return f"cardio run: {plugin}"


def _contents(lay: Layout) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(anchor, heading, [(anchor, heading) of each section with its own heading]) of every part and appendix."""
    out = [(key, HEADINGS[key], [(p.anchor, p.heading) for p in placed if p.heading]) for key, placed in lay.parts]
    if lay.full_tables:
        out.append(("tables", TABLES_HEADING, []))
    return out + [("tripod", CHECKLIST_HEADING, [])]


def _figure_md(f: _Figure) -> str:
    """A figure of the run directory as a Markdown image (its path quoted) with its caption; else a note."""
    from urllib.parse import quote

    if f.path is None:
        return f"_Figure {f.number}: {table_text(Path(f.link).stem)} lies outside the run directory._"
    return f"![Figure {f.number}]({quote(f.link)})  \n*Figure {f.number}.* {plain_text(f.caption)}"


def _markdown(doc: dict, lay: Layout, checklist: str) -> str:
    """report.md: the parts in order, short tables and figures in their sections, long tables in Appendix B;
    values from the run are text, never Markdown."""
    lines = [f"# {table_text(title(doc['meta']))}", "", *_intro(doc), "## Contents", ""]
    for _, heading, subs in _contents(lay):
        lines += [f"- {heading}", *(f"    - {table_text(h)}" for _, h in subs)]
    lines.append("")
    for key, placed in lay.parts:
        lines += [f"## {HEADINGS[key]}", ""]
        for p in placed:
            lines += ([f"### {table_text(p.heading)}", ""] if p.heading else []) + [plain_text(p.sec["text"]), ""]
            for t in p.tables:
                lines += ([f"_{table_text(_name(t.name))}: {len(t.table)} rows, in Appendix {t.appendix}._", ""]
                          if t.appendix else [f"**{table_text(_name(t.name))}**", "", _md_table(t.table), ""])
            lines += [x for f in p.figures for x in (_figure_md(f), "")]
    if lay.full_tables:
        lines += [f"## {TABLES_HEADING}", ""]
        for p, t in lay.full_tables:
            lines += [f"### {t.appendix}. {table_text(_name(t.name))}", "", f"From {table_text(p.sec['title'])}.", "",
                      _md_table(t.table), ""]
    return "\n".join(lines + [f"## {CHECKLIST_HEADING}", "", checklist, ""])


_INTERVAL_GAP = re.compile(r"(\[[^\]\s]*,) (?=[^\]\s]*\])")  # the space inside "[0.701, 0.894]"
_NBSP = r"\1&nbsp;"


TEXT_WIDTH = 1100  # pixels a table may take: the page's text width
CHAR_PIXELS = 7.5  # a table character's width at the page's table font (0.85 of 16 px), with room to spare
CELL_PIXELS = 14  # a cell's padding and border


def _min_width(column: pd.Series, name: str) -> float:
    """The narrowest a column can be, in pixels: its longest word (an interval "[a, b]" is one)."""
    cells = [_INTERVAL_GAP.sub(r"\1_", _cell(v)) for v in column] + [str(name)]
    return CELL_PIXELS + CHAR_PIXELS * max((len(w) for c in cells for w in c.split()), default=1)


def _column_groups(table: pd.DataFrame) -> list[list[int]]:
    """The table's columns in groups that each fit the page beside the first (the rows' names), which every group
    repeats; one group where the whole table fits."""
    widths = [_min_width(table.iloc[:, i], str(c)) for i, c in enumerate(table.columns)]
    if sum(widths) <= TEXT_WIDTH or len(widths) < 3:
        return [list(range(len(widths)))]
    groups: list[list[int]] = [[0]]
    for i in range(1, len(widths)):
        if len(groups[-1]) > 1 and sum(widths[j] for j in groups[-1]) + widths[i] > TEXT_WIDTH:
            groups.append([0])
        groups[-1].append(i)
    return groups


def _html_table(t: _Table) -> str:
    """A table of values from the data, escaped; an interval wraps, if at all, before its bracket, not inside. A
    table too wide for the page is cut into column groups, each repeating the first column, one under the other."""
    out = []
    for k, group in enumerate(_column_groups(t.table)):
        part = t.table.iloc[:, group]
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in part.columns)
        rows = "".join("<tr>" + "".join(f"<td>{_INTERVAL_GAP.sub(_NBSP, html.escape(_cell(v)))}</td>" for v in row)
                       + "</tr>" for row in part.itertuples(index=False))
        more = '<p class="note">(continued)</p>' if k else ""
        out.append(f'{more}<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
    return "".join(out)


def _figure_html(f: _Figure, image: _Image | None) -> str:
    """A figure embedded at its page size with its caption, linked to its full-size file; a note where it is not
    a file of the run directory, not an image, or past the page's 2 MB."""
    from urllib.parse import quote

    caption = f"<figcaption><b>Figure {f.number}.</b> {html.escape(f.caption)}</figcaption>"
    if f.path is None:
        return (f'<p class="note">Figure {f.number} ({html.escape(Path(f.link).stem)}) is not embedded: it does not '
                "lie in the run directory.</p>")
    href = html.escape(quote(f.link))
    if image is None:
        return (f'<figure id="f{f.number}" class="linked"><a href="{href}">{html.escape(f.link)}</a>{caption}'
                "<p class=\"note\">Not embedded: not a readable image, or past the page's 2 MB.</p></figure>")
    return (f'<figure id="f{f.number}" style="width:{image.width}px"><a href="{href}"><img alt="Figure {f.number}" '
            f'width="{image.width}" height="{image.height}" src="{image.uri()}"></a>{caption}</figure>')


def _section_html(p: _Placed, images: dict[str, _Image]) -> str:
    parts = [f'<div class="sec" id="{p.anchor}">']
    if p.heading:
        parts.append(f"<h3>{html.escape(p.heading)}</h3>")
    parts.append(_text_html(p.sec["text"]))
    for t in p.tables:
        if t.appendix:
            parts.append(f'<p class="note">{html.escape(_name(t.name))}: {len(t.table)} rows, in <a '
                         f'href="#t{t.appendix}">Appendix {t.appendix}</a>.</p>')
        else:
            parts += [f"<p class=\"tn\">{html.escape(_name(t.name))}</p>", _html_table(t)]
    if p.figures:
        parts.append('<div class="figs">' + "".join(_figure_html(f, images.get(f.link)) for f in p.figures)
                     + "</div>")
    return "\n".join(parts + ["</div>"])


def _html(doc: dict, lay: Layout, images: dict[str, _Image], checklist: str) -> str:
    """report.html's body: title, the run line, contents, the parts, then Appendices B (full tables) and C.

    Only cardio writes markup here: section text goes through Markdown without links, images or raw HTML,
    and table cells and names are escaped text.
    """
    heading = html.escape(title(doc["meta"]))
    intro = markdown.markdown("\n".join(_intro(doc)), extensions=[_TextOnly()])  # its values escaped by _value
    toc = "".join(f'<li><a href="#{a}">{html.escape(h)}</a>'
                  + ("<ul>" + "".join(f'<li><a href="#{sa}">{html.escape(sh)}</a></li>' for sa, sh in subs) + "</ul>"
                     if subs else "") + "</li>" for a, h, subs in _contents(lay))
    out = [f"<h1>{heading}</h1>", intro, f"<nav><h2>Contents</h2><ul>{toc}</ul></nav>"]
    shown = [f for _, placed in lay.parts for p in placed for f in p.figures]
    left = sum(1 for f in shown if f.path is not None and f.link not in images)
    if left:
        out.append(f'<p class="note">{left} of {len(shown)} figures are linked rather than embedded, so that this '
                   "page stays under 2 MB; open the report from its run folder to follow the links.</p>")
    for key, placed in lay.parts:
        out += [f'<section id="{key}" class="part"><h2>{HEADINGS[key]}</h2>',
                *(_section_html(p, images) for p in placed), "</section>"]
    if lay.full_tables:
        out.append(f'<section id="tables" class="part"><h2>{TABLES_HEADING}</h2>')
        for p, t in lay.full_tables:
            out += [f'<div class="sec" id="t{t.appendix}"><h3>{t.appendix}. {html.escape(_name(t.name))}</h3>'
                    f'<p class="note">From <a href="#{p.anchor}">{html.escape(str(p.sec["title"]))}</a>.</p>',
                    _html_table(t), "</div>"]
        out.append("</section>")
    out.append(f'<section id="tripod" class="part"><h2>{CHECKLIST_HEADING}</h2>{checklist}</section>')
    return "\n".join(out)


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1140px;margin:1.5em auto;padding:0 16px;line-height:1.45;"
         "color:#222}h2{border-bottom:1px solid #ccc;padding-bottom:2px;margin-top:1.6em}h3{margin:1.2em 0 .4em}"
         ".tw{max-width:100%;overflow-x:auto}table{border-collapse:collapse;font-size:.85em;margin:.3em 0 .8em}"
         "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;overflow-wrap:break-word}"
         "th{background:#f3f3f3;text-align:left}p.tn{font-weight:bold;margin:.8em 0 .2em}"
         ".figs{display:flex;flex-wrap:wrap;gap:14px 18px;align-items:flex-start;margin:.6em 0}"
         "figure{margin:0;max-width:100%}figure img{display:block;max-width:100%;height:auto}"
         "figcaption{font-size:.85em;color:#333;margin-top:4px}.note{color:#555;font-style:italic}"
         "nav>ul{columns:2}nav ul ul{margin:0;font-size:.9em}"
         "td.yours{background:#fff4e5}td.answered{background:#eef7ee}td.partly{background:#f5f5dc}")


def render(run_dir: Path, checklist: bool = False) -> str:
    """(Re)write report.md and report.html from report.json (tables through the display names of the run's
    config.yaml), and with `checklist` tripod_ai.md beside them; returns the markdown."""
    run_dir = Path(run_dir)
    doc = _read_report(run_dir)
    names = run_display_names(run_dir)
    lay = layout(doc, run_dir, names)
    rows = tripod.checklist(doc, run_config(run_dir), lay.anchors())
    md = _markdown(doc, lay, tripod.markdown(rows))
    write_text_atomic(run_dir / "report.md", md)
    if checklist:
        write_text_atomic(run_dir / tripod.FILE, tripod.document(doc, rows, "report.html"))
    head = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{html.escape(title(doc['meta']))}</title>"
            f"<style>{STYLE}</style></head>"
            "<body>")
    figures = [f for _, placed in lay.parts for p in placed for f in p.figures]
    room = PAGE_LIMIT - len((head + _html(doc, lay, {}, tripod.html_table(rows))).encode()) - 300 * len(figures)
    for _ in range(3):  # the figures' markup is estimated above: where the page came out over, shrink them again
        page = head + _html(doc, lay, _images(figures, room)[0], tripod.html_table(rows)) + "</body></html>"
        over = len(page.encode()) - PAGE_LIMIT
        if over <= 0:
            break
        room -= over + 1000
    write_text_atomic(run_dir / "report.html", page)
    return md
