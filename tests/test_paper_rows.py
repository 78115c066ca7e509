"""Issue 56: each departure a plugin README's fidelity table states is tied to the code or config it describes. A
test reads the row and the paper profile (or runs the code the row names) and asserts what the row says, so that
neither can drift from the other. Paper figures are He et al.'s Tables 1 (ECG: 71 patients; SPECT: 102)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardio_testing.harness import plugin_config

ROOT = Path(__file__).resolve().parents[1]


def row(plugin: str, key: str) -> dict[str, str]:
    """The cells (paper, default, why) of the README's paper-fidelity row of `key`."""
    text = (ROOT / "plugins" / plugin / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Paper fidelity"):]
    found = [line for line in section.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(found) == 1, f"{plugin} README: {len(found)} fidelity rows for {key}"
    cells = [c.strip() for c in found[0].strip().strip("|").split("|")]
    return dict(zip(("key", "paper", "default", "why"), cells))


def fidelity_text(plugin: str) -> str:
    """The README's paper-fidelity section, table and notes, as one line of text."""
    text = (ROOT / "plugins" / plugin / "README.md").read_text(encoding="utf-8")
    start = text.index("## Paper fidelity")
    end = text.find("\n## ", start + 1)
    return re.sub(r"\s+", " ", text[start:end if end > 0 else None])


def paper(plugin: str) -> dict:
    return plugin_config(plugin, sets=["profile=paper"])


def default(plugin: str) -> dict:
    return plugin_config(plugin)


def _exact(rng: np.random.Generator, n: int, mean: float, sd: float) -> np.ndarray:
    """n values whose mean and SD (n - 1) are exactly the printed ones."""
    x = rng.normal(size=n)
    return mean + sd * (x - x.mean()) / x.std(ddof=1)


def _from_summary(n: tuple[int, int], continuous: dict, binary: dict, levels: dict | None = None) -> pd.DataFrame:
    """Patients (responders first) whose Table 1 summaries are the paper's: mean and SD per group, counts per group."""
    rng = np.random.default_rng(0)
    data = {"responder": np.r_[np.ones(n[0]), np.zeros(n[1])]}
    for var, (m1, s1, m0, s0, _) in continuous.items():
        data[var] = np.r_[_exact(rng, n[0], m1, s1), _exact(rng, n[1], m0, s0)]
    for var, (k1, k0, _) in binary.items():
        data[var] = np.r_[np.ones(k1), np.zeros(n[0] - k1), np.ones(k0), np.zeros(n[1] - k0)]
    for var, (counts, _) in (levels or {}).items():
        data[var] = np.r_[np.repeat(list(counts), [c[0] for c in counts.values()]),
                          np.repeat(list(counts), [c[1] for c in counts.values()])]
    return pd.DataFrame(data)


def _p_values(table: pd.DataFrame) -> pd.Series:
    return table.dropna(subset=["p_value"]).drop_duplicates("variable").set_index("variable")["p_value"]


# He et al. (ECG), Table 1: responders (46) vs non-responders (25); mean, SD, mean, SD, printed p
ECG_CONTINUOUS = {"age": (61, 13.1, 63.2, 11.7, 0.487), "height_cm": (167.0, 6.7, 167.4, 8, 0.832),
                  "weight_kg": (67.0, 13.6, 69.4, 16.8, 0.505), "qrs_ms": (179.4, 19.8, 158.4, 23.7, 0.000),
                  "lvef": (27.8, 5.1, 25.2, 4.7, 0.035), "lvedv": (272.9, 86.4, 310.4, 78.9, 0.076),
                  "lvesv": (199.1, 74.9, 234.2, 69.6, 0.057), "scar": (23.2, 11.2, 32.0, 11.8, 0.003)}
ECG_BINARY = {"acei_arb": (36, 22, 0.318), "sex": (34, 22, 0.170), "ckd": (2, 3, 0.235), "dm": (6, 9, 0.024),
              "hypertension": (22, 11, 0.762), "smoking": (20, 10, 0.781), "beta_blocker": (40, 24, 0.228),
              "spironolactone": (38, 23, 0.284), "digoxin": (8, 6, 0.511), "diuretic": (40, 21, 0.737),
              "lbbb": (44, 13, 0.000)}


def _ecg_table1(config: dict) -> pd.Series:
    from cardio import Cohort
    from cardio_ecg_transfer.report import table1

    data = _from_summary((46, 25), ECG_CONTINUOUS, ECG_BINARY)
    ids = [f"p{i}" for i in range(len(data))]
    table = table1(Cohort(data.assign(patient_id=ids, record_id=ids), label="responder"), config)
    assert table is not None
    return table.set_index("variable")


def test_ecg_paper_profile_recomputes_every_p_of_the_papers_table1_as_its_row_says() -> None:
    pytest.importorskip("cardio_ecg_transfer")
    cfg = paper("ecg_transfer")
    assert cfg["ecg_transfer"]["report"]["table1_tests"] == "paper"
    table = _ecg_table1(cfg)
    p = _p_values(table.reset_index())
    binary = {v: abs(p[v] - want) for v, (_, _, want) in ECG_BINARY.items()}
    continuous = {v: abs(p[v] - want) for v, (*_, want) in ECG_CONTINUOUS.items()}
    assert max(binary.values()) <= 0.008 and max(continuous.values()) <= 0.011, (binary, continuous)
    assert round(p["ckd"], 3) == 0.229 and round(p["weight_kg"], 3) == 0.516
    assert set(table.loc[list(ECG_BINARY), "test"]) == {"chi-square (Pearson, uncorrected)"}
    assert set(table.loc[list(ECG_CONTINUOUS), "test"]) == {"Student t-test"}
    why = row("ecg_transfer", "ecg_transfer.report.table1_tests")["why"]
    assert "the 11 binary rows within 0.008 (CKD 0.229 for its 0.235" in why
    assert "the 8 continuous rows within 0.011" in why and "weight 0.516 for its 0.505" in why
    # elsewhere the table names the adaptive test of every row (Fisher where a 2x2 has a count < 5)
    adaptive = _ecg_table1(default("ecg_transfer"))
    assert adaptive.loc["ckd", "test"] == "Fisher exact" and adaptive.loc["age", "test"] == "Welch t-test"
    assert adaptive.loc[list(ECG_BINARY) + list(ECG_CONTINUOUS), "test"].notna().all()


# He et al. (SPECT), Table 1: responders (45) vs non-responders (57)
SPECT_CONTINUOUS = {"age": (62.0, 12.4, 60.8, 13.5, 0.672), "qrs_ms": (165.4, 16.2, 150.9, 23.7, 0.001),
                    "edv": (270.5, 81.8, 307.5, 90.0, 0.036), "esv": (191.5, 71.6, 222.6, 77.7, 0.043),
                    "lvef": (29.9, 6.7, 28.8, 6.8, 0.409), "scar_burden": (24.5, 9.8, 28.6, 11.9, 0.067),
                    "pbw": (197.1, 72.8, 194.1, 78.2, 0.845), "psd": (58.6, 18.3, 57.7, 19.0, 0.819)}
SPECT_BINARY = {"acei_arb": (37, 51, 0.443), "cad": (10, 15, 0.806), "ckd": (3, 2, 0.786), "sex": (37, 37, 0.085),
                "ischemia": (9, 15, 0.609), "smoking": (19, 18, 0.367)}
SPECT_NYHA = {"nyha": ({2: (16, 15), 3: (21, 35), 4: (8, 7)}, 0.330)}


def _spect_table1(config: dict) -> pd.DataFrame:
    from cardio_spect_polar.analysis import table_one
    from cardio_spect_polar.settings import SpectSettings

    a = SpectSettings.of(config).analysis
    data = _from_summary((45, 57), SPECT_CONTINUOUS, SPECT_BINARY, SPECT_NYHA)
    return table_one(data, "responder", list(a.clinical), list(a.categorical), a)


def test_spect_paper_profile_recomputes_its_table1_as_its_row_says() -> None:
    pytest.importorskip("cardio_spect_polar")
    cfg = paper("spect_polar")
    assert cfg["spect_polar"]["analysis"]["table1_tests"] == "paper"
    table = _spect_table1(cfg)
    p = _p_values(table)
    for var, (_, _, want) in {**SPECT_BINARY, "nyha": (0, 0, 0.330)}.items():
        assert round(p[var], 3) == want, (var, p[var], want)  # every categorical p, to the printed digit
    off = {v: abs(p[v] - want) for v, (*_, want) in SPECT_CONTINUOUS.items()}
    assert max(d for v, d in off.items() if v != "age") <= 0.01 and round(p["age"], 3) == 0.645, off
    named = table.dropna(subset=["p_value"]).set_index("variable")["test"]
    assert named["ckd"] == "chi-square (Yates)" and named["age"] == "Student t-test"
    why = row("spect_polar", "spect_polar.analysis.table1_tests")["why"]
    assert "CKD 0.786, where Fisher gives 0.652" in why and "NYHA's 2x3 chi-square (0.330)" in why
    assert "within 0.01 of 7 of its 8 continuous p, and gives age 0.645 for its 0.672" in why
    adaptive = _spect_table1(default("spect_polar")).dropna(subset=["p_value"]).set_index("variable")
    assert adaptive.loc["ckd", "test"] == "Fisher exact" and round(adaptive.loc["ckd", "p_value"], 3) == 0.652
    assert adaptive["test"].notna().all()


def test_mmode_sampling_points_are_the_papers_10th_and_20th_as_the_readme_states() -> None:
    """Issue 56 item 6: the paper's 10th and 20th points (0-based 9 and 19), the 15th between them, in the default and
    the paper profile alike; the README's fidelity notes name the constants."""
    pytest.importorskip("cardio_mmode_septal_flash")
    from cardio_mmode_septal_flash import geometry

    assert geometry.TANGENT_POINTS == (9, 19) and geometry.CENTRE_POINT == 14
    text = fidelity_text("mmode_septal_flash")
    assert "`TANGENT_POINTS = (9, 19)`, `CENTRE_POINT = 14`" in text
    assert "Until issue 56 both took 0-based 10, 20 and 15 (the 11th, 21st and 16th)" in text
    off = 5  # the offline augmentation's lines span the 10th to the 20th point, as the paper's did
    assert default("mmode_septal_flash")["mmode_septal_flash"]["mmode"]["offsets"] == off
    assert (geometry.CENTRE_POINT - off, geometry.CENTRE_POINT + off) == geometry.TANGENT_POINTS


def test_ecg_fine_tuning_rows_state_the_paper_profiles_values() -> None:
    """Issue 56 item 1: the paper's 0.001 in profile=paper (it was 1e-4 without a row), and its batch size stated."""
    pytest.importorskip("cardio_ecg_transfer")
    ft, ft0 = paper("ecg_transfer")["ecg_transfer"]["finetune"], default("ecg_transfer")["ecg_transfer"]["finetune"]
    lr = row("ecg_transfer", "ecg_transfer.finetune.lr")
    assert ft["lr"] == ft0["lr"] == 0.001
    assert lr["paper"].startswith("0.001 (") and lr["default"] == "0.001" and "sets the paper's 0.001" in lr["why"]
    assert (ft["optimizer"], ft["weight_decay"], ft["scheduler"]) == ("adamw", 0.0001, "cosine")
    assert "AdamW with weight decay 0.0001 and the core's cosine schedule" in lr["why"]
    batch = row("ecg_transfer", "ecg_transfer.finetune.batch_size")
    assert (ft["batch_size"], ft0["batch_size"]) == (64, 32)
    assert batch["paper"].startswith("2000") and batch["default"] == "32"
    assert "the paper profile sets 64" in batch["why"]


def test_ecg_fold_sd_columns_are_said_not_to_be_the_papers() -> None:
    """Issue 56 item 2: the README says what the report's note says (tests/test_paper_fidelity.py holds the note)."""
    text = fidelity_text("ecg_transfer")
    assert "are not comparable with them" in text and "a sampling SD of about 0.12" in text
    assert "the paper prints ±0.011-0.018 and does not say what they measure" in text
    pytest.importorskip("cardio_ecg_transfer")
    from cardio import Predictions
    from cardio_ecg_transfer.report import table2

    n = 30
    y = (np.arange(n) % 3 > 0).astype(float)
    pred = Predictions.from_arrays([f"r{i}" for i in range(n)], [f"p{i}" for i in range(n)], y, np.linspace(0, 1, n),
                                   model="m", task="responder", fold=np.arange(n) % 3)
    columns = list(table2(pred, [], []).columns)  # the table itself says it, whatever text stands beside it
    assert [c for c in columns if "folds" in c] == [f"{m} (folds, not the paper's ±)"
                                                    for m in ("accuracy", "sensitivity", "specificity")]


def test_echo_table2_interval_rows_state_the_paper_profiles_bootstrap() -> None:
    """Issue 56 item 4: Table 2's intervals in profile=paper are the core's patient bootstrap of 10,000 resamples."""
    pytest.importorskip("cardio_echo_cmr")
    cfg, cfg0 = paper("echo_cmr"), default("echo_cmr")
    assert cfg["stats"]["n_resamples"] == 10000 and cfg["echo_cmr"]["table2_interval"] == "bootstrap"
    assert cfg0["echo_cmr"]["table2_interval"] == "headline"
    resamples = row("echo_cmr", "stats.n_resamples")
    assert resamples["paper"].startswith("10,000 bootstrap samples")
    assert "the paper profile sets 10,000" in resamples["why"]
    assert resamples["default"].startswith(f"{cfg0['stats']['n_resamples']:,}, patients resampled")
    interval = row("echo_cmr", "echo_cmr.table2_interval")
    assert interval["default"].startswith("headline") and "the paper profile sets `bootstrap`" in interval["why"]
    assert "`stats.n_resamples` (10,000) resamples of patients" in interval["why"]


def test_echo_rows_give_the_papers_cut_offs_and_credit_echonet_with_its_defaults() -> None:
    """Issue 56 item 5: T1, T2 and ECV cut-offs are the paper's methods' (1060 ms, 58 ms, 33%), in the default and the
    paper profile; r2plus1d_18, 32 frames and period 2 are EchoNet-Dynamic's, which the paper only cites."""
    pytest.importorskip("cardio_echo_cmr")
    cut_offs = {"t1_ms": 1060, "t2_ms": 58, "ecv_pct": 33}
    assert paper("echo_cmr")["echo_cmr"]["thresholds"] == default("echo_cmr")["echo_cmr"]["thresholds"] == cut_offs
    thresholds = row("echo_cmr", "echo_cmr.thresholds.t1_ms")
    assert 'T1 "over 1060ms", T2 "over 58ms", ECV "above 33%" (methods)' in thresholds["paper"]
    assert thresholds["default"] == ">= 1060 ms; T2 >= 58 ms, ECV >= 33% (`thresholds.t2_ms`, `thresholds.ecv_pct`)"
    methods = (ROOT.parent / "shared" / "papers" / "echo_to_cmr_video_cnn.txt")
    if methods.is_file():  # the paper's own words, where the papers are at hand
        text = methods.read_text(encoding="utf-8")
        assert "over 1060ms" in text and "over 58ms" in text and "above 33%" in text
    echo = paper("echo_cmr")["echo_cmr"]
    for key, value in (("echo_cmr.arch", "r2plus1d_18"), ("echo_cmr.clip.frames", "32"), ("echo_cmr.clip.period", "2")):
        cells = row("echo_cmr", key)
        assert "EchoNet-Dynamic" in cells["paper"] and value in cells["paper"], key
    assert (echo["arch"], echo["clip"]["frames"], echo["clip"]["period"]) == ("r2plus1d_18", 32, 2)
    assert row("echo_cmr", "echo_cmr.arch")["paper"].endswith("the paper names no architecture of its own")


def test_perfusion_freeze_row_names_the_layers_the_paper_profile_keeps() -> None:
    """Issue 56 item 8: the row names the frozen layers; tests/plugins/perfusion_polar/test_training.py fine-tunes
    and checks that their weights and BatchNorm statistics do not change."""
    pytest.importorskip("cardio_perfusion_polar")
    frozen = paper("perfusion_polar")["perfusion_polar"]["freeze"]
    cells = row("perfusion_polar", "perfusion_polar.freeze")
    assert f"`[{', '.join(frozen)}]`" in cells["why"] and "layer3, layer4 and the head are tuned" in cells["why"]
    assert default("perfusion_polar")["perfusion_polar"]["freeze"] == [] and cells["default"].startswith("[]")
