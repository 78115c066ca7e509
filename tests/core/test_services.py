"""The core services plugins share: cache, figures, AHA-17, aggregation, thresholds, engine by name, hook checks."""
from __future__ import annotations

import inspect
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import cardio
from cardio import CardioError, Cohort, Features, PluginInfo, Predictions, hookimpl, hookspecs
from cardio.data.cache import Cache, atomic_path
from cardio_imaging import aha17
from cardio_stats import StatsError, aggregate_scores, choose_threshold, format_ci, format_p
from cardio_testing.harness import cpu_context, run_plugin, train_settings

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- cache

def test_cache_builds_once_and_keys_by_content(tmp_path):
    cache, calls = Cache(tmp_path), []

    def build(path):
        calls.append(path)
        np.save(path, np.arange(3))

    a = cache.get("demo", {"n": 3}, build, suffix=".npy")
    b = cache.get("demo", {"n": 3}, build, suffix=".npy")
    c = cache.get("demo", {"n": 3}, build, suffix=".npy", version=2)
    assert a == b != c and len(calls) == 2 and a.suffix == ".npy"
    assert np.load(a).tolist() == [0, 1, 2]
    assert not [p for p in (tmp_path / "demo").iterdir() if ".tmp" in p.name]


def test_cache_rebuilds_an_entry_that_fails_its_check(tmp_path):
    cache = Cache(tmp_path)
    path = cache.get("demo", "k", lambda p: p.write_text("good"), suffix=".txt")
    path.write_text("")  # truncated by a crash of some other tool
    again = cache.get("demo", "k", lambda p: p.write_text("good"), suffix=".txt", check=lambda p: p.stat().st_size > 0)
    assert again == path and path.read_text() == "good"


class _Collect(logging.Handler):
    """Keeps each record's message."""

    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def test_a_truncated_entry_is_rebuilt_with_a_warning(tmp_path):
    cache = Cache(tmp_path)
    seen: list[str] = []
    handler = _Collect(seen)
    logging.getLogger("cardio.run").addHandler(handler)
    try:
        path = cache.get("demo", "k", lambda p: np.save(p, np.arange(100)), suffix=".npy")
        path.write_bytes(path.read_bytes()[:50])
        again = cache.get("demo", "k", lambda p: np.save(p, np.arange(100)), suffix=".npy")
    finally:
        logging.getLogger("cardio.run").removeHandler(handler)
    assert np.load(again).sum() == 4950 and any("damaged" in m for m in seen)


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            np.save(tmp, np.zeros(2))
            raise RuntimeError("killed half-way")
    assert list(tmp_path.iterdir()) == []


def test_cache_folder_entries(tmp_path):
    def build(folder):
        folder.mkdir()
        (folder / "a.txt").write_text("x")

    path = Cache(tmp_path).get("cohorts", {"seed": 1}, build)
    assert path.is_dir() and (path / "a.txt").read_text() == "x"


WORKER = """
import sys, time
import numpy as np
from cardio.data.cache import Cache
root, tag = sys.argv[1], sys.argv[2]
def build(path):
    time.sleep(0.05)  # widen the window in which two builders would collide
    np.save(path, np.arange(1000) * 2)
for i in range(20):
    p = Cache(root).get("race", {"i": i}, build, suffix=".npy")
    assert np.load(p).sum() == 999000, (tag, i)
print("ok", tag)
"""


def test_two_processes_sharing_one_cache_never_corrupt_it(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    for round_ in range(2):  # a fresh cache, then the same one again
        procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), f"{round_}{k}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    entries = sorted((tmp_path / "cache" / "race").glob("*.npy"))
    assert len(entries) == 20 and not list((tmp_path / "cache" / "race").glob("*.tmp*"))


# --------------------------------------------------------------------------- AHA-17

def test_aha17_layout_is_cerqueira_2002():
    assert len(aha17.NAMES) == 17
    assert [len(aha17.RINGS[r]) for r in ("basal", "mid", "apical", "apex")] == [6, 6, 4, 1]
    labels = aha17.polar_labels(48, 96)
    assert set(np.unique(labels)) == set(range(1, 18))
    # the cavity is cut into three equal thirds beyond the apex cap
    widths = np.diff([*aha17.LEVELS[1:], 1.0])
    assert np.allclose(widths, widths[0])
    # orientation: anterior at 90 degrees, septum at 180, inferior at 270, lateral at 0
    mid_basal = (aha17.LEVELS[3] + 1) / 2
    assert aha17.segment_of(mid_basal, 90) == 1 and aha17.segment_of(mid_basal, 210) == 3
    assert aha17.segment_of(mid_basal, 270) == 4 and aha17.segment_of(mid_basal, 30) == 6
    apical = (aha17.LEVELS[1] + aha17.LEVELS[2]) / 2
    assert [int(aha17.segment_of(apical, a)) for a in (90, 180, 270, 0)] == [13, 14, 15, 16]
    assert aha17.segment_of(0.05, 123) == 17 and aha17.segment_of(1.2, 0) == 0
    territories = sorted(s for segs in aha17.TERRITORIES.values() for s in segs)
    assert territories == list(range(1, 18))


def test_aha17_image_and_segment_values():
    img = aha17.image_labels(64)
    assert img[0, 0] == 0 and img[32, 32] == 17 and set(np.unique(img)) == set(range(18))
    assert img[1, 32] == 1 and img[32, 1] in (2, 3)  # anterior at the top, septum on the left
    maps = np.stack([img, 2 * img]).astype(float)
    values = aha17.segment_values(maps, img)
    assert values.shape == (2, 17) and np.allclose(values[0], np.arange(1, 18))
    assert np.allclose(values[1], 2 * values[0])
    phase = np.where(np.arange(96)[None, :] % 2, 359.0, 1.0) * np.ones((48, 1))
    circ = aha17.segment_values(phase, aha17.polar_labels(48, 96), reduce="circular")
    assert np.allclose(np.minimum(circ, 360 - circ), 0.0, atol=1e-6)  # 1 and 359 degrees average to 0, not 180


def test_bullseye_figure(tmp_path):
    ctx = cpu_context(tmp_path)
    fig = aha17.bullseye(np.arange(17, dtype=float), label="segment", title="segments")
    path = ctx.save_figure(fig, "bullseye")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- stats services

def test_format_ci_and_p():
    assert format_ci({"estimate": 0.8123, "ci_low": 0.7, "ci_high": 0.9}) == "0.812 [0.700, 0.900]"
    assert format_ci((0.5, None, None)) == "0.500" and format_ci({"estimate": float("nan")}) == "–"
    assert format_p(0.0004) == "<0.001" and format_p(0.0312) == "0.031"


def test_aggregate_scores_names_its_rule():
    ids = ["a", "a", "b", "b", "b"]
    p = [0.2, 0.6, 0.9, 0.99, 0.1]
    mean, top, lm = (aggregate_scores(ids, p, how) for how in ("mean", "max", "logit_mean"))
    assert list(mean.index) == ["a", "b"] and mean.name == "mean" and mean["a"] == pytest.approx(0.4)
    assert top["b"] == 0.99 and lm.name == "logit_mean" and 0 < lm["a"] < 1
    with pytest.raises(StatsError, match="unknown aggregation"):
        aggregate_scores(ids, p, "median")


def test_choose_threshold_rules():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.5, 0.6, 0.4, 0.8, 0.9])
    assert choose_threshold(y, s, "youden") == 0.8
    assert choose_threshold(y, s, "sensitivity:1.0") == 0.4
    with pytest.raises(StatsError, match="unknown threshold rule"):
        choose_threshold(y, s, "f1")


# --------------------------------------------------------------------------- engine by name

def _toy_fit(tmp_path, **train):
    ctx = cpu_context(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    ds = ctx.engine.ArrayDataset(x, y)
    res = ctx.engine.fit(net, ds, ds, ctx, name="m", train=train_settings(epochs=3, batch_size=8, **train),
                         metric=ctx.stats.auc)
    return ctx, res, ds


@pytest.mark.parametrize("optimizer,scheduler", [("adam", "step"), ("SGD", "plateau"), ("AdamW", "onecycle"),
                                                 ("rmsprop", "ExponentialLR")])
def test_optimizers_and_schedules_by_name(tmp_path, optimizer, scheduler):
    args = {"gamma": 0.9} if scheduler == "ExponentialLR" else {}
    ctx, res, ds = _toy_fit(tmp_path, optimizer=optimizer, scheduler=scheduler, scheduler_args=args)
    assert len(res.history) >= 1
    p = ctx.engine.predict_proba(res.model, ds, ctx)
    assert p.shape == (64,) and p.dtype == np.float64 and ((p > 0) & (p < 1)).all()
    assert 0 < ctx.engine.threshold(res.model, ds, ctx) < 1


def test_unknown_optimizer_is_a_config_error(tmp_path):
    with pytest.raises(CardioError, match="not a torch.optim optimizer"):
        _toy_fit(tmp_path, optimizer="adamx")
    with pytest.raises(CardioError, match="train.scheduler 'wobble'"):
        _toy_fit(tmp_path, scheduler="wobble")


def test_settings_are_checked_by_signature_without_torch_dynamo():
    """A run's own process checks every optimizer and scheduler before any stage, by the classes' signatures: an
    optimizer built for the check imported torch._dynamo (1.8 s) in a process that, under the local executor,
    never trains. A misnamed or missing argument is still one line before any stage; a value the class refuses
    is one line at the fit."""
    code = ("import sys\nfrom cardio import engine\nfrom cardio.data import CardioError\n"
            "good = {'train': {'optimizer': 'adamw', 'optimizer_args': {'betas': [0.9, 0.99]}, 'scheduler': 'cosine',"
            " 'scheduler_args': {}, 'epochs': 3}}\nengine.check_settings(good)\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'\n"
            "for bad in ({'optimizer_args': {'betaz': 1}}, {'scheduler': 'ExponentialLR'}):\n"
            "    try:\n        engine.check_settings({'train': {**good['train'], **bad}})\n"
            "    except CardioError as e:\n        print(e)\n"
            "    else:\n        raise SystemExit(f'not refused: {bad}')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "train.optimizer_args {'betaz': 1} do not fit AdamW: got an unexpected keyword argument 'betaz'",
        "train.scheduler_args {} do not fit ExponentialLR: missing a required argument: 'gamma'"]
    from cardio import engine

    with pytest.raises(CardioError, match="do not fit AdamW: Invalid beta parameter"):
        engine.make_optimizer([torch.nn.Parameter(torch.zeros(1))], {"optimizer": "adamw", "lr": 1e-3,
                                                                     "weight_decay": 0.0,
                                                                     "optimizer_args": {"betas": [1.5, 0.9]}})


def test_the_optimizer_step_is_fused_where_the_class_has_it_unless_the_config_says():
    """make_optimizer asks for torch's fused step (one kernel for every tensor; benchmarks/optimizer_step.py) where
    the class has one and the config left fused, foreach and differentiable alone. Control: fused and per-tensor
    Adam from the same start take the same path (to rounding) and both move the weights."""
    from cardio import engine

    def build(optimizer, **extra):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        groups = [{"params": (p for p in net[0].parameters()), "lr": 1e-2}, {"params": net[2].parameters()}]
        opt = engine.make_optimizer(groups, {"optimizer": optimizer, "lr": 1e-3, "weight_decay": 0.0,
                                             "optimizer_args": extra})
        return net, opt

    assert [g["fused"] for g in build("adamw")[1].param_groups] == [True, True]
    assert len(build("adamw")[1].param_groups[0]["params"]) == 2  # a generator of params is kept, not used up
    assert build("sgd")[1].param_groups[0]["fused"] is True
    assert not build("adamw", fused=False)[1].param_groups[0]["fused"]
    assert build("adamw", foreach=True)[1].param_groups[0]["fused"] is None
    assert "fused" not in build("rmsprop")[1].param_groups[0]

    x = torch.randn(32, 4)
    weights = []
    for extra in ({}, {"fused": False}):
        net, opt = build("adam", **extra)
        start = [p.detach().clone() for p in net.parameters()]
        for _ in range(20):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
        assert all((p - s).abs().max() > 1e-3 for p, s in zip(net.parameters(), start))
        weights.append([p.detach() for p in net.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*weights))


def test_channels_last_picks_the_3d_format_for_video():
    from cardio.engine.device import memory_format

    assert memory_format(4) is torch.channels_last and memory_format(5) is torch.channels_last_3d
    assert memory_format(3) is None


# --------------------------------------------------------------------------- hooks, in process

class InProcess:
    """A modality plugin registered in process (never installed)."""

    def __init__(self, load_returns=None):
        self.load_returns = load_returns

    @hookimpl
    def cardio_plugin_info(self):
        return PluginInfo(name="inproc", modality="toy", description="registered in process",
                          default_config={"label": "label", "train": {"epochs": 1}})

    @hookimpl
    def cardio_load(self, config, ctx):
        rng = np.random.default_rng(0)
        table = pd.DataFrame({"record_id": [f"r{i}" for i in range(40)], "patient_id": [f"p{i}" for i in range(40)],
                              "label": np.arange(40) % 2, "x": rng.normal(size=40) + np.arange(40) % 2})
        return self.load_returns if self.load_returns is not None else Cohort(table)

    @hookimpl
    def cardio_featurize(self, cohort):
        return Features(cohort.table, x=cohort.table[["x"]].to_numpy())

    @hookimpl
    def cardio_train(self, features, train_index):
        return float(features.x[train_index].mean())

    @hookimpl
    def cardio_predict(self, model, features, test_index):
        t = features.table.iloc[test_index]
        return Predictions.from_arrays(t["record_id"], t["patient_id"], t["label"], 1 / (1 + np.exp(-t["x"])))


def test_a_plugin_registered_in_process_runs_a_study(tmp_path):
    run = run_plugin("inproc", tmp_path / "run", ["cv.folds=4", "explain=false"], register=[InProcess()])
    assert (run / "metrics.json").is_file() and "Performance" in (run / "report.md").read_text()


def test_a_hook_returning_the_wrong_type_names_plugin_and_hook(tmp_path):
    plugin = InProcess(load_returns=pd.DataFrame({"record_id": ["a"], "patient_id": ["p"]}))
    with pytest.raises(CardioError, match=r"plugin 'inproc': cardio_load returned DataFrame, expected Cohort"):
        run_plugin("inproc", tmp_path / "run", register=[plugin])


# --------------------------------------------------------------------------- the public API and its docs

def test_plugin_api_doc_lists_every_hook_with_its_arguments():
    """The kernel's hooks and those the installed services add (cardio_public's cardio_datasets ...)."""
    from cardio import services

    doc = (REPO / "docs" / "plugin-api.md").read_text()
    specs = [m for module in (hookspecs, *services.hookspecs()) for m in inspect.getmembers(module, inspect.isfunction)]
    assert "cardio_datasets" in dict(specs)  # the public-data service's
    for name, fn in specs:
        if not name.startswith("cardio_"):
            continue
        args = ", ".join(inspect.signature(fn).parameters)
        assert f"`{name}({args})`" in doc, f"docs/plugin-api.md does not document `{name}({args})`"


def test_required_hooks_sit_with_the_hookspecs_and_the_public_api_is_importable():
    assert cardio.REQUIRED_HOOKS is hookspecs.REQUIRED_HOOKS
    for name in ("CardioError", "RunContext", "Cohort", "Features", "Predictions", "Section", "PluginInfo",
                 "hookimpl", "inner_split", "package_defaults", "atomic_path"):
        assert hasattr(cardio, name), name


def test_only_the_report_service_picks_a_matplotlib_backend():
    found = subprocess.run(["git", "grep", "-l", "matplotlib.use"], cwd=REPO, capture_output=True, text=True).stdout
    shipped = [f for f in found.split() if re.match(r"(src|services|plugins|benchmarks)/", f)]
    assert shipped == ["services/report/cardio_report/figures.py"]
