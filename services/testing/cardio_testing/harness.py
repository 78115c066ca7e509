"""Helpers for testing cardio and its plugins in process: a CPU run context, a study run, the CLI, the PHI detector;
and the plugin contract suite every plugin runs (cardio_testing.contract: Contract, Controls, contract_suite).

    from cardio_testing.harness import cpu_context, run_plugin, invoke, pooled, headline, check_refused

The kernel's tests, the plugins' tests, the template's generated test and the benchmarks use these.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio import config as config_mod
from cardio import plugins
from cardio.cli import main
from cardio.context import RunContext, new_context
from cardio.data import PARTS, CardioError, make_folds
from cardio.execution.run import run_study
from cardio_stats import paired_test
from cardio_stats.formatting import HEADLINE_AUC


def context(out_dir: str | Path, *, device: str = "cpu", seed: int = 0,
            cache_dir: str | Path | None = None) -> RunContext:
    """A RunContext writing to `out_dir` on `device` (auto, cpu, cuda...); engine settings go to `engine.fit`."""
    out_dir = Path(out_dir)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "cache_dir": str(cache_dir or out_dir / "cache")}
    return new_context(config, out_dir, logging.getLogger("cardio.run"), device=device)


def cpu_context(out_dir: str | Path, *, seed: int = 0) -> RunContext:
    """A CPU RunContext writing to `out_dir` (cache in out_dir/cache)."""
    return context(out_dir, device="cpu", seed=seed)


def train_settings(**overrides: Any) -> dict:
    """The core's default train section with `overrides`: the `train=` of an `engine.fit` in a test."""
    return {**config_mod.core_defaults()["train"], **overrides}


def plugin_config(plugin: str, sets: Sequence[str] = (), config_file: str | Path | None = None) -> dict:
    """A plugin's resolved config (core defaults < plugin < profile < file < --set), as a run would have it."""
    loaded = plugins.get_plugin_manager()
    pm = plugins.select(loaded, plugin)
    info = plugins.info(pm, plugin)
    return config_mod.resolve(info.default_config, config_file, tuple(sets), info.moved_keys)


def run_plugin(plugin: str, out_dir: str | Path, sets: Sequence[str] = (), *, cache_dir: str | Path | None = None,
               register: Iterable[object] = (), config_file: str | Path | None = None, seed: int | None = None,
               device: str = "cpu") -> Path:
    """Run a study in process (cardio.execution.run.run_study) and return its run directory.

    `register` adds plugin objects that are not installed; `cache_dir` defaults to out_dir's sibling `cache`.
    """
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir else out_dir.parent / "cache"
    sets = (*sets, f"cache_dir={cache}")
    return run_study(plugin, str(config_file) if config_file else None, tuple(sets), device, str(out_dir),
                     seed=seed, register=register)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def load_script(path: str | Path) -> Any:
    """A script outside the packages (a benchmark) as a module, loaded once per process: tests call its functions.
    It is registered in sys.modules before it runs, so its dataclasses can find their module."""
    import importlib.util
    import sys

    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise CardioError(f"{path}: not a Python script")
    module = sys.modules.get(spec.name)
    if module is None or getattr(module, "__file__", None) != str(path):
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def invoke(*args: str, cwd: str | Path | None = None) -> CliResult:
    """Run `cardio ARGS...` in process through click's test runner (in the working folder `cwd`, when given); exit
    code, stdout and stderr apart."""
    import os

    from click.testing import CliRunner

    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(here)
    return CliResult(result.exit_code, result.stdout, result.stderr)


# `cardio ARGS` in a fresh interpreter whose entry-point group cardio.services holds only SERVICES (None: as installed)
_WITH_SERVICES = """
import importlib.metadata as md, sys
SERVICES = {services!r}
if SERVICES is not None:
    real = md.entry_points
    md.entry_points = lambda **kw: ([md.EntryPoint(n, v, "cardio.services") for n, v in SERVICES.items()]
                                    if kw.get("group") == "cardio.services" else real(**kw))
sys.argv = ["cardio", *{args!r}]
from cardio.cli import main
main()
"""


def invoke_with_services(*args: str, services: dict[str, str] | None = None, cwd: str | Path | None = None) -> Any:
    """`cardio ARGS` in a fresh process as if only `services` (entry-point name -> module) were installed (None: as
    they are): what the kernel makes of a service missing or broken. A CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", _WITH_SERVICES.format(services=services, args=args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING) ")


def checksums(*folders: str | Path, relative: bool = False) -> dict[str, str]:
    """sha256 of every file under the folders: to show that a refused command changed nothing (`relative`: keyed
    by the path inside its folder, to compare two folders written alike)."""
    out = {}
    for folder in map(Path, folders):
        for p in sorted(folder.rglob("*")) if folder.exists() else []:
            if p.is_file():
                out[str(p.relative_to(folder) if relative else p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def named_by_hash(path: str | Path) -> Path:
    """`path` renamed to carry its sha256's first 8 hex digits as torchvision names its files (`r18.pth` ->
    `r18-1a2b3c4d.pth`): what cardio_public.weights checks a starting-weights file against."""
    path = Path(path)
    return path.rename(path.with_name(f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}{path.suffix}"))


def drive_patients(n: int, seed: int = 0) -> Any:
    """n patients as `cardio synthetic-crt`'s latent model hands them to cardio_write_synthetic, with a strong
    planted link: drive standard normal, responder = drive + 0.5 x noise > 0."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    drive = rng.normal(size=n)
    responder = (drive + 0.5 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"patient_id": [f"p{i + 1:04d}" for i in range(n)], "responder": responder, "drive": drive})


def write_modality(plugin: str, patients: Any, dest: str | Path, seed: int = 3, sets: Sequence[str] = ()) -> Path:
    """The plugin's cardio_write_synthetic through the plugin manager, with its config and `sets`."""
    pm = plugins.select(plugins.get_plugin_manager(), plugin)
    cfg = plugin_config(plugin, sets)
    return pm.hook.cardio_write_synthetic(patients=patients, dest=Path(dest), seed=seed, config=cfg,
                                          settings=config_mod.plugin_settings(plugins.info(pm, plugin), cfg))


def check_refused(result: Any, must_name: str) -> None:
    """The shape of every refusal: exit 2, no traceback, one error line naming the file or key.

    `result` has returncode/exit_code and stderr. A problem that shows only in the data is found
    after the run's progress lines; those may precede the error line, nothing else may.
    """
    code = getattr(result, "returncode", getattr(result, "exit_code", None))
    err = result.stderr.strip()
    assert code == 2, f"exit {code}: {err[-2000:]}"
    lines = err.splitlines()
    assert "Traceback" not in err and lines, err[-2000:]
    assert all(LOG_LINE.match(line) for line in lines[:-1]), err[-2000:]
    assert lines[-1].startswith("cardio: error: ") and must_name in lines[-1], err[-2000:]


def read_metrics(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def pooled(metrics: dict, metric: str = "auc", *, model: str | None = None, task: str | None = None,
           method: str | None = "delong") -> list[dict]:
    """The pooled out-of-fold estimates of a run (first repeat, no subgroup), optionally of one model/task."""
    return [e for e in metrics["estimates"]
            if e.get("metric") == metric and e.get("fold") == "pooled" and e.get("subgroup") is None
            and e.get("repeat", 0) == 0 and (method is None or e.get("method") == method)
            and (model is None or e.get("model") == model) and (task is None or e.get("task") == task)]


def headline(metrics: dict, metric: str = "auc", *, model: str, task: str | None = None) -> dict:
    """The pooled row of one model (and task) that the performance table leads with: for an AUC, the first of
    cardio_stats.formatting.HEADLINE_AUC the run has (with K folds the cross-validated one, which counts training
    variability; `pooled`'s default DeLong row treats the K models as one). What a control asserts on."""
    rows = pooled(metrics, metric, model=model, task=task, method=None)
    if metric == "auc":
        rows = sorted((e for e in rows if e.get("method") in HEADLINE_AUC),
                      key=lambda e: HEADLINE_AUC.index(e["method"]))
    if not rows or (metric != "auc" and len(rows) != 1):
        raise CardioError(f"no single pooled {metric} of {model} {task or ''} in the run's metrics: {len(rows)} rows")
    return rows[0]


def paired(metrics: dict, model_a: str, model_b: str, *, task: str | None = None) -> dict:
    """The headline paired AUC difference A - B of a run (first repeat, no subgroup; cardio_stats.paired_test's
    interval="cv": with K folds the cross-validated difference, else DeLong's), as
    {"estimate", "ci_low", "ci_high", "method", "p_value"}: what a difference control asserts on."""
    tests = [t for t in metrics["tests"] if t.get("fold", "pooled") == "pooled" and t.get("subgroup") is None
             and t.get("repeat", 0) == 0 and (task is None or t.get("task") == task)]
    found = paired_test(tests, model_a, model_b, interval="cv")
    if found is None or found["diff"] is None:
        raise CardioError(f"no paired test of {model_a} and {model_b} {task or ''} in the run's metrics")
    return {"estimate": found["diff"], "ci_low": found["low"], "ci_high": found["high"], "method": found["method"],
            "p_value": found["p"]}


CORE_METRICS = ("auc", "mae", "rmse", "r2")


def second_intervals(metrics: dict) -> list[str]:
    """Estimates a plugin's section computed again for a number the core's performance section already estimated
    (a model's pooled AUC, MAE, RMSE or R²): one number, two intervals in one report (empty: none). A plugin's row
    counts when its metric names one of those (e.g. "out-of-fold AUC clinical+ae") and its value is the core's,
    whatever else it records; an in-sample AUC of the same model is another number and does not count."""
    core = {(e["model"], e["metric"], round(float(e["estimate"]), 9)) for e in metrics["estimates"]
            if e.get("section") == "Performance" and e.get("metric") in CORE_METRICS and e.get("estimate") is not None}
    out = []
    for e in metrics["estimates"]:
        if e.get("section") == "Performance" or e.get("fold") not in (None, "pooled") or e.get("subgroup"):
            continue
        words = str(e.get("metric", "")).lower().replace("²", "2").replace("-", " ").split()
        named = [m for m in CORE_METRICS if m in words or e.get("metric") == m]
        value = round(float(e["estimate"]), 9) if e.get("estimate") is not None else None
        if any((e.get("model"), m, value) in core for m in named) and e.get("ci_low") is not None:
            out.append(f"{e.get('section')}: {e.get('model')} / {e.get('task')} {e['metric']} {e.get('estimate')}")
    return out


def split_overlaps(table: Any, cv: dict, label: str | None, seeds: Iterable[int] = range(20)) -> list[str]:
    """Patients that the core's split puts in two of train/validation/test, over `seeds` (empty: none).

    What every plugin's cohort test asserts on its own generated cohort with several records per patient.
    """
    found = []
    for seed in seeds:
        for fold in make_folds(table, cv, label, seed):
            parts = {name: set(table["patient_id"].iloc[rows]) for name, rows in
                     (("train", fold.train), ("val", fold.val), ("test", fold.test))}
            for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
                both = parts[a] & parts[b]
                if both:
                    found.append(f"seed {seed}, {fold.name}: {len(both)} patient(s) in {a} and {b}")
    return found


def target_counts(metrics: dict, metric: str | None = "auc") -> dict[str, int]:
    """Each task's n (records or studies with a label) in metrics.json's pooled `metric` estimates."""
    out: dict[str, int] = {}
    for e in metrics["estimates"]:
        if (metric is None or e.get("metric") == metric) and e.get("fold") == "pooled" and not e.get("subgroup"):
            out.setdefault(str(e.get("task")), int(e["n"]))
    return out


#: The identifiers every plugin's PHI test plants (DICOM tags, MRN-like ids in file names and CSV ids, free text).
PLANTS = {"PatientName": "Doe^Jane", "PatientID": "MRN-93847561", "PatientBirthDate": "19471103",
          "InstitutionName": "St Elsewhere Clinic", "AccessionNumber": "ACC-55501234",
          "ReferringPhysicianName": "Welby^Marcus"}


def plant_dicom(path: str | Path) -> None:
    """Write PLANTS into a DICOM file's header (as a scanner or cart would), in place."""
    import pydicom

    ds = pydicom.dcmread(path)
    for tag, value in PLANTS.items():
        setattr(ds, tag, value)
    ds.save_as(path)


def _png_text(data: bytes) -> list[str]:
    """The tEXt, zTXt and iTXt chunks of a PNG, decompressed."""
    import struct
    import zlib

    out, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"tEXt":
            out.append(body.decode("latin-1"))
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out.append(key.decode("latin-1") + zlib.decompress(rest[1:]).decode("latin-1", "replace"))
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            flag, text = rest[0], rest[2:].split(b"\0", 2)[-1]
            out.append(key.decode("latin-1") + (zlib.decompress(text) if flag else text).decode("utf-8", "replace"))
        pos += 12 + length
    return out


def _decoded(name: str, data: bytes) -> list[str]:
    """The text a file holds, looking inside what hides text: zip/npz members, gzip, base64 figures, PNG chunks."""
    import base64
    import gzip
    import io
    import zipfile

    out = [name, data.decode("latin-1")]
    if data[:2] == b"\x1f\x8b":
        try:
            out += _decoded(name, gzip.decompress(data))
        except (OSError, EOFError):
            pass
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for member in z.namelist():
                    out += _decoded(member, z.read(member))
        except (zipfile.BadZipFile, OSError):
            pass
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        out += _png_text(data)
    if data.startswith(b"\x93NUMPY"):  # text arrays are UTF-32 inside a .npy
        import numpy as np

        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
            if arr.dtype.kind in "US":
                out.append(" ".join(arr.ravel().astype(str).tolist()))
        except (ValueError, OSError):
            pass
    if name.endswith((".html", ".md", ".json", ".svg")):
        for b64 in re.findall(rb"base64,([A-Za-z0-9+/=]+)", data):
            out += _decoded(name + "#embedded", base64.b64decode(b64))
    return out


def _texts(*folders: str | Path) -> Iterable[str]:
    """Everything the folders hold as text, file by file (file names included): see _decoded."""
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            yield str(p.relative_to(folder))
            if p.is_file() and not p.is_symlink():
                yield from _decoded(p.name, p.read_bytes())


def written_text(*folders: str | Path) -> str:
    """Everything the folders hold as text (file names included), for PHI tests: see _decoded."""
    return "\n".join(_texts(*folders))


def planted_in(*folders: str | Path, text: str = "", plants: Iterable[str] = ()) -> list[str]:
    """The planted identifiers (PLANTS' values, and `plants`) found in the folders' files or in `text`
    (stdout, stderr): every plugin's PHI test asserts this is empty."""
    wanted = [*PLANTS.values(), *plants]
    variants = {p: {p, p.replace("^", " "), p.replace("^", "_")} for p in wanted}
    # Weights make a run hundreds of MB: each text is searched for the needles' first 4 characters, and for a whole
    # needle only where its beginning occurs, not for every needle (tens of patients' ids) everywhere.
    by_anchor: dict[str, list[tuple[str, str]]] = {}
    for p, vs in variants.items():
        for v in vs:
            by_anchor.setdefault(v[:4], []).append((p, v))
    found: set[str] = set()
    for chunk in (*_texts(*folders), text):
        for anchor, needles in by_anchor.items():
            if anchor in chunk:
                found.update(p for p, v in needles if p not in found and v in chunk)
    return [p for p in wanted if p in found]


CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# Measures report.html as laid out, once loaded; written into the page, which --dump-dom then prints.
_MEASURE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images], ids = new Set([...document.querySelectorAll('[id]')].map(e => e.id));
  const out = {width: document.documentElement.scrollWidth, viewport: window.innerWidth, images: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    parts: [...document.querySelectorAll('section.part')].map(s => s.id),
    figures_before: [...document.querySelectorAll('section.part')].map(s => [s.id, s.querySelectorAll('img').length]),
    wide_tables: [...document.querySelectorAll('.tw')].filter(d => d.scrollWidth > d.clientWidth + 1)
      .map(d => `${(d.closest('[id]') || {id: 'page'}).id}: ${d.scrollWidth} px in ${d.clientWidth}`),
    dead_links: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1))
      .filter(id => !ids.has(id))};
  const pre = document.createElement('pre'); pre.id = 'cardio-measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""


def chromium() -> str | None:
    """The path of a Chromium (Debian's `chromium` package) on this machine, or None."""
    import shutil

    return next((p for p in (shutil.which(name) for name in CHROMIUM) if p), None)


def report_page(run_dir: str | Path, width: int = 1280, timeout: float = 120.0) -> dict | None:
    """report.html of a run as headless Chromium lays it out in a window `width` pixels wide: the page's width
    (`width`, `viewport`), its images and how many loaded, its parts in order (`parts`), the tables wider than their
    box (`wide_tables`) and the in-page links with no target (`dead_links`). None where no Chromium is installed.

    The page is measured by a script added to a copy of it (the report itself runs none)."""
    import html
    import subprocess
    import tempfile

    exe = chromium()
    if exe is None:
        return None
    page = (Path(run_dir) / "report.html").read_text()
    with tempfile.TemporaryDirectory(prefix="cardio-page-") as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(page.replace("</body>", _MEASURE + "</body>") if "</body>" in page else page + _MEASURE)
        proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--hide-scrollbars", f"--user-data-dir={Path(tmp) / 'profile'}",
                               f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
                               copy.as_uri()], capture_output=True, text=True, timeout=timeout)
    found = re.search(r'<pre id="cardio-measure">(.*?)</pre>', proc.stdout, re.S)
    if found is not None:
        return json.loads(html.unescape(found.group(1)))
    errors = [line for line in proc.stderr.splitlines() if "dbus" not in line]  # no system bus in a container
    raise AssertionError(f"Chromium measured nothing (the measuring script failed, or the page never loaded; exit "
                         f"{proc.returncode}): {' | '.join(errors)[-2000:]}")


def report_page_problems(page: dict, width: int = 1280) -> list[str]:
    """What is wrong with a measured report page (report_page), in words; [] when nothing: it scrolls sideways, an
    image did not load, a table overflows its box, a link leads nowhere, or its parts are out of the paper's order."""
    order = [*PARTS, "tables", "tripod"]
    problems = []
    if page["width"] > min(width, page["viewport"]):
        problems.append(f"the page is {page['width']} px wide in a {page['viewport']} px window")
    if page["loaded"] < page["images"]:
        problems.append(f"{page['images'] - page['loaded']} of {page['images']} images did not load")
    if page["wide_tables"]:
        problems.append(f"{len(page['wide_tables'])} table(s) overflow their box ({'; '.join(page['wide_tables'])})")
    if page["dead_links"]:
        problems.append(f"links to no anchor: {sorted(set(page['dead_links']))}")
    unknown = [p for p in page["parts"] if p not in order]
    if unknown or page["parts"] != sorted(page["parts"], key=order.index) or page["parts"][-1:] != ["tripod"]:
        problems.append(f"parts out of order: {page['parts']}")
    return problems


def report_page_check(run_dir: str | Path, width: int = 1280) -> list[str]:
    """report_page_problems of a run's report.html in Chromium; [] where no Chromium is installed, with a warning
    that says the page was not looked at."""
    import warnings

    page = report_page(run_dir, width)
    if page is None:
        warnings.warn(f"{run_dir}/report.html not laid out: no Chromium installed (apt-get install chromium)",
                      stacklevel=2)
        return []
    return report_page_problems(page, width)
