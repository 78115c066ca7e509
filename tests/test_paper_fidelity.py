"""Each plugin README's `## Paper fidelity` table names config keys; every one must be set in the plugin's
`profiles.paper`, so that `--set profile=paper` carries each documented departure as a tested choice."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Paper fidelity"
HEADER = ("key", "paper", "default", "why they differ")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def fidelity_keys(readme: Path) -> list[str] | None:
    """The dotted keys of the README's paper-fidelity table, or None when the README has no such section.

    A section without the table, or a row whose first cell is not a key in backticks, is an error."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == SECTION)
    except StopIteration:
        return None
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"#{1,2} ", lines[i])), len(lines))
    body = lines[start + 1:end]
    header = next((i for i, line in enumerate(body) if line.lstrip().startswith("|")
                   and tuple(c.lower() for c in _cells(line)) == HEADER), None)
    if header is None:
        raise AssertionError(f"{readme}: '{SECTION}' has no table headed | {' | '.join(HEADER)} |")
    keys = []
    for line in body[header + 2:]:  # past the header and its |---| rule
        if not line.lstrip().startswith("|"):
            break
        first = _cells(line)[0]
        m = re.fullmatch(r"`([A-Za-z0-9_.]+)`", first)
        if not m:
            raise AssertionError(f"{readme}: paper-fidelity row {line.strip()!r} does not start with a `dotted.key`")
        keys.append(m.group(1))
    if not keys:
        raise AssertionError(f"{readme}: '{SECTION}' table has no rows")
    return keys


def _set_in(mapping: dict, dotted: str) -> bool:
    node = mapping
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def missing_keys(plugin_dir: Path) -> list[str]:
    """Keys the README's table names that the plugin's `profiles.paper` does not set."""
    keys = fidelity_keys(plugin_dir / "README.md") or []
    configs = sorted(plugin_dir.glob("*/config.yaml"))
    assert configs, f"plugin {plugin_dir.name}: no <package>/config.yaml"
    config = yaml.safe_load(configs[0].read_text(encoding="utf-8")) or {}
    paper = (config.get("profiles") or {}).get("paper")
    if not isinstance(paper, dict):
        return keys
    return [k for k in keys if not _set_in(paper, k)]


PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/README.md")
                 if SECTION in [line.strip() for line in p.read_text(encoding="utf-8").splitlines()])


@pytest.mark.parametrize("plugin_dir", PLUGINS, ids=[p.name for p in PLUGINS])
def test_fidelity_keys_are_in_the_paper_profile(plugin_dir: Path) -> None:
    missing = missing_keys(plugin_dir)
    assert not missing, f"plugin {plugin_dir.name}: README '{SECTION}' names keys not set in profiles.paper: {missing}"


def test_every_plugin_has_the_table() -> None:
    every = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
    assert every and [p.name for p in every if p not in PLUGINS] == []


def _plugin(tmp_path: Path, readme: str, config: str) -> Path:
    (tmp_path / "pkg").mkdir(parents=True)
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    (tmp_path / "pkg" / "config.yaml").write_text(config, encoding="utf-8")
    return tmp_path


TABLE = ("# x\n\n## Paper fidelity\n\n| key | paper | default | why they differ |\n|---|---|---|---|\n"
         "| `a.b` | 1 | 2 | reason |\n| `c` | 3 | 4 | reason |\n\n## Next\n| `not.a.row` | | | |\n")


def test_a_key_missing_from_the_profile_is_named(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, TABLE, "a: {b: 2}\nc: 4\nprofiles:\n  paper:\n    a: {b: 1}\n")
    assert missing_keys(plugin) == ["c"]
    plugin2 = _plugin(tmp_path / "q", TABLE, "a: {b: 2}\nc: 4\nprofiles:\n  paper:\n    a: {b: 1}\n    c: null\n")
    assert missing_keys(plugin2) == []  # set to null is set


def test_a_malformed_section_fails(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "## Paper fidelity\n\n| key | paper |\n|---|---|\n", "profiles: {paper: {}}\n")
    with pytest.raises(AssertionError, match="no table headed"):
        missing_keys(plugin)
    plugin2 = _plugin(tmp_path / "q", TABLE.replace("`a.b`", "a.b"), "profiles: {paper: {}}\n")
    with pytest.raises(AssertionError, match="does not start with"):
        missing_keys(plugin2)


# Issue 38: the paper's own settings in profile=paper, and the pretrained starts through torchvision's weights API.
# Nothing is downloaded: the file a download would leave is written into the hub cache torch reads (TORCH_HOME).

def _paper(plugin: str, *sets: str) -> dict:
    from cardio_testing.harness import plugin_config

    return plugin_config(plugin, sets=["profile=paper", *sets])


def test_ecg_paper_profile_uses_the_papers_512_sample_window() -> None:
    pytest.importorskip("cardio_ecg_transfer")
    import numpy as np

    from cardio_ecg_transfer.spectrogram import spectrograms, stft_shape

    s = _paper("ecg_transfer")["ecg_transfer"]
    assert s["spectrogram"]["nperseg"] == 512 and s["preprocess"]["beat_length"] == 512
    shape = stft_shape(512, 512, s["spectrogram"]["noverlap"])
    assert shape == (257, 33)
    beats = np.random.default_rng(0).normal(size=(2, 512)).astype(np.float32)
    assert spectrograms(beats, 360.0, nperseg=512, noverlap=s["spectrogram"]["noverlap"]).shape == (2, *shape)


def _no_downloads(tmp_path: Path, monkeypatch) -> None:
    """torch's hub cache in tmp_path (TORCH_HOME); a download is a test failure."""
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_download(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)


def _state_file(folder: Path, arch: str, seed: int = 5) -> tuple[dict, Path]:
    """A random state dict of torchvision's `arch`, saved as `<arch>-<first 8 hex of its real sha256>.pth`."""
    import hashlib

    import torch
    import torchvision

    torch.manual_seed(seed)
    state = torchvision.models.get_model_builder(arch)(weights=None).state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{arch}.tmp"
    torch.save(state, tmp)
    path = folder / f"{arch}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(path)
    return state, path


def _published_as(monkeypatch, arch: str, weights: str, path: Path) -> None:
    """torchvision's registry entry of `weights` names `path`'s file (so that its name carries that file's hash): the
    real loader then reads the placed file from torch's hub cache as it would the published one."""
    import torchvision

    entry = torchvision.models.get_model_weights(arch)[weights].value
    monkeypatch.setattr(entry, "url", f"https://download.pytorch.org/models/{path.name}")


def _wrong_file_under_published_name(tmp_path: Path, monkeypatch, arch: str, weights: str) -> Path:
    """A random state dict of `arch` placed in torch's hub cache under torchvision's published name of `weights`."""
    import shutil

    from cardio_public.weights import cache_file

    _no_downloads(tmp_path, monkeypatch)
    path = cache_file(arch, weights)
    assert path.parent == tmp_path / "torch" / "hub" / "checkpoints"
    _, own = _state_file(tmp_path / "made", arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(own, path)
    return path


def test_a_random_state_dict_under_the_imagenet_name_is_refused_in_one_line(tmp_path: Path, monkeypatch) -> None:
    """Issue 56: torch checks a hash only while downloading; a file placed in the cache is checked by cardio."""
    pytest.importorskip("cardio_perfusion_polar")
    from cardio import CardioError
    from cardio_perfusion_polar.model import PolarResNet
    from cardio_public.weights import sha256_of

    path = _wrong_file_under_published_name(tmp_path, monkeypatch, "resnet18", "IMAGENET1K_V1")
    with pytest.raises(CardioError) as e:
        PolarResNet("resnet18", n_outputs=2, imagenet=True)
    line = str(e.value)
    assert "\n" not in line and str(path) in line
    assert f"sha256 mismatch: expected f37072fd..., found {sha256_of(path)}" in line


PERFUSION_TINY = ["perfusion_polar.n_patients=48", "perfusion_polar.size=32", "perfusion_polar.step1.epochs=1",
                  "perfusion_polar.step2.epochs=1", "train.cpu_threads=1", "cv.folds=2", "stats.n_resamples=100",
                  "report.figures=false", "explain=false", "final_model=false", "perfusion_polar.arch=resnet18",
                  "perfusion_polar.imagenet=true"]


def test_cli_refuses_a_wrong_cached_file_in_one_line_and_reports_a_right_ones_sha256(tmp_path: Path, monkeypatch,
                                                                                     cardio_cli) -> None:
    """Issue 56, as a user meets it: `cardio run` with a wrong file under torchvision's published name exits 2 with
    one line naming the file and both hashes, and nothing written before is lost (an earlier run untouched; this run's
    folder says why it stopped and resumes); with the right file placed, the resumed run's report and run.log print
    its whole sha256."""
    pytest.importorskip("cardio_perfusion_polar")
    import json

    from cardio_public.weights import sha256_of
    from cardio_testing.harness import checksums

    wrong = _wrong_file_under_published_name(tmp_path, monkeypatch, "resnet18", "IMAGENET1K_V1")
    earlier = tmp_path / "runs" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "report.md").write_text("an earlier run's report\n")
    before = checksums(earlier)
    run = tmp_path / "runs" / "new"
    refused = cardio_cli("run", "--plugin", "perfusion_polar", "--out", str(run),
                         *[f"--set={s}" for s in PERFUSION_TINY])
    line = (f"torchvision's IMAGENET1K_V1 weights of resnet18: {wrong}: sha256 mismatch: expected f37072fd..., "
            f"found {sha256_of(wrong)}")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert [x for x in refused.stderr.splitlines() if "error" in x] == [f"cardio: error: {line}"]
    assert "Traceback" not in refused.stderr
    assert checksums(earlier) == before
    assert json.loads((run / "run.json").read_text())["error"] == f"CardioError: {line}"
    wrong.unlink()
    _, right = _state_file(wrong.parent, "resnet18")
    _published_as(monkeypatch, "resnet18", "IMAGENET1K_V1", right)
    cardio_cli("run", "--resume", str(run), check=True)
    report = (run / "report.md").read_text()
    assert f"torchvision ImageNet weights IMAGENET1K_V1 for resnet18 ({right.name}, sha256 {sha256_of(right)})" \
        in report
    assert (run / "run.log").read_text().count(f"checked: {right}, sha256 {sha256_of(right)}") == 1  # not per fold


def test_perfusion_paper_profile_starts_from_imagenet_through_torchvision(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("cardio_perfusion_polar")
    import torch

    from cardio_perfusion_polar.model import IMAGENET_WEIGHTS, PolarResNet, weights_source
    from cardio_perfusion_polar.settings import PerfusionSettings
    from cardio_public.weights import cache_file, sha256_of

    cfg = _paper("perfusion_polar")["perfusion_polar"]
    assert cfg["imagenet"] is True and cfg["arch"] == "resnet50" and not cfg["weights"]
    # resnet18 stands in for the profile's resnet50 (the same code path, a 45 MB file instead of 98 MB)
    _no_downloads(tmp_path, monkeypatch)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    state, path = _state_file(hub, "resnet18")
    _published_as(monkeypatch, "resnet18", IMAGENET_WEIGHTS["resnet18"], path)
    assert cache_file("resnet18", IMAGENET_WEIGHTS["resnet18"]) == path
    net = PolarResNet("resnet18", n_outputs=2, imagenet=True)
    assert torch.equal(net.net.conv1.weight, state["conv1.weight"])
    assert torch.equal(net.net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert net.net.fc.out_features == 2
    source = weights_source(PerfusionSettings(arch="resnet18", imagenet=True))
    assert source.endswith(f"({path.name}, sha256 {sha256_of(path)})") and len(sha256_of(path)) == 64


def test_mmode_paper_profile_starts_from_imagenet_and_a_wrong_cached_file_is_one_line(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    pytest.importorskip("cardio_mmode_septal_flash")
    import torch

    from cardio import CardioError
    from cardio_mmode_septal_flash.model import SeptalFlashNet
    from cardio_public.weights import cache_file, sha256_of

    assert _paper("mmode_septal_flash")["mmode_septal_flash"]["model"]["weights"] == "imagenet"
    wrong = _wrong_file_under_published_name(tmp_path, monkeypatch, "densenet121", "IMAGENET1K_V1")
    with pytest.raises(CardioError, match=r"densenet121-a639ec97.pth: sha256 mismatch: expected a639ec97\.\.\., "):
        SeptalFlashNet("imagenet")
    wrong.unlink()
    with pytest.raises(CardioError, match=r"without internet, copy the file to .*densenet121-a639ec97.pth \(its sha256 "
                                          r"begins a639ec97\), or set mmode_septal_flash"):
        SeptalFlashNet("imagenet")  # offline and not placed: the file to place and its hash, in one line
    state, path = _state_file(tmp_path / "torch" / "hub" / "checkpoints", "densenet121")
    _published_as(monkeypatch, "densenet121", "IMAGENET1K_V1", path)
    assert cache_file("densenet121", "IMAGENET1K_V1") == path
    net = SeptalFlashNet("imagenet")
    assert torch.equal(net.net.features.conv0.weight, state["features.conv0.weight"])
    assert net.source == f"ImageNet (torchvision IMAGENET1K_V1: {path.name}, sha256 {sha256_of(path)})"
    assert net.net.classifier.out_features == 2


# Issue 56: departures the READMEs did not state, now followed in profile=paper or stated.

def test_ecg_paper_profile_fine_tunes_at_the_papers_learning_rate() -> None:
    pytest.importorskip("cardio_ecg_transfer")
    s = _paper("ecg_transfer")["ecg_transfer"]
    assert s["finetune"]["lr"] == 0.001 and s["pretrain"]["lr"] == 0.001  # "the learning rate is 0.001"
    keys = fidelity_keys(ROOT / "plugins" / "ecg_transfer" / "README.md")
    assert keys is not None and "ecg_transfer.finetune.lr" in keys


def test_ecg_fold_sds_are_said_not_to_be_the_papers() -> None:
    pytest.importorskip("cardio_ecg_transfer")
    import numpy as np

    from cardio import Predictions
    from cardio_ecg_transfer.report import fold_sd_note

    n = 71
    y = (np.arange(n) % 3 > 0).astype(float)
    pred = Predictions.from_arrays([f"r{i}" for i in range(n)], [f"p{i}" for i in range(n)], y, np.linspace(0, 1, n),
                                   model="m", task="responder", fold=np.arange(n) % 5)
    note = fold_sd_note(pred)
    assert "not comparable with the paper's ± figures (0.011-0.018)" in note
    assert "about 14 patients" in note and "an SD of about 0.12" in note


def test_perfusion_paper_profile_tunes_the_later_layers_only() -> None:
    pytest.importorskip("cardio_perfusion_polar")
    from cardio_perfusion_polar.model import PolarResNet

    frozen = _paper("perfusion_polar")["perfusion_polar"]["freeze"]
    assert frozen == ["conv1", "bn1", "layer1", "layer2"]
    net = PolarResNet("resnet18", n_outputs=2)
    net.freeze(frozen)
    trained = {name.split(".")[0] for name, p in net.net.named_parameters() if p.requires_grad}
    assert trained == {"layer3", "layer4", "fc"}


def test_echo_paper_profile_table2_prints_the_10000_resample_patient_bootstrap() -> None:
    pytest.importorskip("cardio_echo_cmr")
    import numpy as np

    from cardio import Predictions
    from cardio_echo_cmr.report import table2
    from cardio_echo_cmr.targets import parse
    from cardio_stats import evaluate_predictions, format_ci

    cfg = _paper("echo_cmr")
    assert cfg["echo_cmr"]["table2_interval"] == "bootstrap" and cfg["stats"]["n_resamples"] == 10000
    rng = np.random.default_rng(2)
    n = 60  # a held-out tenth: 30 patients with two studies each
    y = np.repeat((rng.random(n // 2) < 0.5).astype(float), 2)
    s = y + rng.normal(0, 1, n)
    targets = parse([{"target": "wma", "kind": "binary", "level": "study", "label": "wma_global", "title": "WMA"}])
    pred = Predictions.from_arrays([f"r{i}" for i in range(n)], [f"p{i // 2}" for i in range(n)], y, s,
                                   model="r2plus1d-A4C", task="wma", fold=np.zeros(n, int))
    estimates, _ = evaluate_predictions(pred.table, n_resamples=cfg["stats"]["n_resamples"], seed=0)
    boot = [e for e in estimates if e["metric"] == "auc" and e["fold"] == "pooled"
            and e["method"].startswith("bootstrap")]
    assert len(boot) == 1 and boot[0]["n_resamples"] == 10000 and boot[0]["extra"]["resampled"] == "patients"
    shown = table2(estimates, pred, targets, ("A4C",), interval="bootstrap")
    assert shown.loc[0, "A4C"] == format_ci(boot[0])
    headline = table2(estimates, pred, targets, ("A4C",))
    assert headline.loc[0, "A4C"] != shown.loc[0, "A4C"]  # the default keeps the performance table's interval


def test_table1_in_the_paper_profiles_uses_the_papers_tests() -> None:
    pytest.importorskip("cardio_ecg_transfer")
    pytest.importorskip("cardio_spect_polar")
    import numpy as np
    import pandas as pd

    from cardio import Cohort
    from cardio_ecg_transfer.report import table1

    assert _paper("spect_polar")["spect_polar"]["analysis"]["table1_tests"] == "paper"
    cfg = _paper("ecg_transfer")
    assert cfg["ecg_transfer"]["report"]["table1_tests"] == "paper"
    # He et al. (ECG) Table 1: CKD in 2 of 46 responders and 3 of 25 non-responders, printed p 0.235
    y = np.r_[np.ones(46), np.zeros(25)]
    ckd = np.r_[np.ones(2), np.zeros(44), np.ones(3), np.zeros(22)]
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(71)], "record_id": [f"p{i}" for i in range(71)],
                          "responder": y, "ckd": ckd, "age": np.random.default_rng(0).exponential(10, 71)})
    cohort = Cohort(table, label="responder")
    paper, default = table1(cohort, cfg), table1(cohort, plugin_config_default("ecg_transfer"))
    assert paper is not None and default is not None  # the ecg plugin's Table 1 is on by default
    paper = paper.set_index("variable")
    assert paper.loc["ckd", "test"] == "chi-square (Pearson, uncorrected)"
    assert abs(paper.loc["ckd", "p_value"] - 0.235) < 0.01 and paper.loc["age", "test"] == "Student t-test"
    default = default.set_index("variable")
    assert default.loc["ckd", "test"] == "Fisher exact" and default.loc["age", "test"] == "Kruskal–Wallis"


def plugin_config_default(plugin: str) -> dict:
    from cardio_testing.harness import plugin_config

    return plugin_config(plugin)


def test_spect_readme_says_its_phase_analysis_was_never_compared_with_the_emory_tools() -> None:
    text = (ROOT / "plugins" / "spect_polar" / "README.md").read_text(encoding="utf-8")
    assert "**Not compared with the Emory tools' output.**" in text
    assert "may not carry over" in text and "43°" in text and "135°" in text
    assert "Chen et al., J Nucl Cardiol 2008;15:383" in text and "--resolution-only" in text
    assert "as in the Emory tools" not in text


def test_echo_paper_profile_starts_from_kinetics400_checked_by_hash(tmp_path: Path, monkeypatch) -> None:
    """Issue 56: the paper profile starts r2plus1d_18 from torchvision's Kinetics-400 weights, as EchoNet does."""
    pytest.importorskip("cardio_echo_cmr")
    import torch

    from cardio import CardioError
    from cardio_echo_cmr.model import KINETICS, EchoVideoNet, weights_source
    from cardio_echo_cmr.settings import EchoSettings
    from cardio_public.weights import sha256_of

    assert _paper("echo_cmr")["echo_cmr"]["weights"] == KINETICS
    wrong = _wrong_file_under_published_name(tmp_path, monkeypatch, "r2plus1d_18", "KINETICS400_V1")
    with pytest.raises(CardioError, match=r"r2plus1d_18-91a641e6.pth: sha256 mismatch: expected 91a641e6\.\.\., "):
        EchoVideoNet(weights_file=KINETICS, arch="r2plus1d_18", n_outputs=3)
    wrong.unlink()
    with pytest.raises(CardioError, match=r"copy the file to .*r2plus1d_18-91a641e6.pth \(its sha256 begins 91a641e6\)"
                                          r", or set echo_cmr.weights=null"):
        EchoVideoNet(weights_file=KINETICS, arch="r2plus1d_18", n_outputs=3)
    with pytest.raises(CardioError, match="kinetics400 is a start of r2plus1d_18, not of r2plus1d_10"):
        EchoVideoNet(weights_file=KINETICS, arch="r2plus1d_10", n_outputs=3)
    state, path = _state_file(tmp_path / "torch" / "hub" / "checkpoints", "r2plus1d_18")
    _published_as(monkeypatch, "r2plus1d_18", "KINETICS400_V1", path)
    net = EchoVideoNet(weights_file=KINETICS, arch="r2plus1d_18", n_outputs=3)
    assert torch.equal(net.net.stem[0].weight, state["stem.0.weight"]) and net.net.fc.out_features == 3
    source = weights_source(EchoSettings(arch="r2plus1d_18", weights=KINETICS))
    assert source.endswith(f"(torchvision KINETICS400_V1: {path.name}, sha256 {sha256_of(path)})")
