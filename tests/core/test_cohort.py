"""The cohort contract: one reader, a declared schema, the patient -> study -> record hierarchy, masked targets."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from cardio import CardioError, Features
from cardio.config import resolve
from cardio.data.cohort import CohortProblems, Column, Schema, missingness, read_table
from cardio.engine import MISSING_CLASS, masked_loss, masked_mse

SCHEMA = Schema((Column("y", "binary", target=True, required=True), Column("t1_ms", "number", target=True),
                 Column("age", "number", low=0, high=120), Column("view", "category", values=("A4C", "A2C")),
                 Column("clip", "path", default="clips/{record_id}", suffixes=(".npy",))))


def _folder(tmp_path, rows: dict, files=()) -> str:
    (tmp_path / "clips").mkdir(exist_ok=True)
    for f in files:
        (tmp_path / "clips" / f).write_bytes(f.encode())  # each its own bytes: no record shared by patients
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    return str(tmp_path)


def test_every_problem_is_listed_at_once_with_file_line_and_column(tmp_path):
    root = _folder(tmp_path, {"patient_id": ["p1", "p2", "p3", ""], "y": ["1", "maybe", "0", "1"],
                              "t1_ms": ["1000", "high", "", "990"], "age": ["50", "60", "130", "40"],
                              "view": ["A4C", "PLAX", "A2C", "A4C"], "clip": ["clips/a.npy", "../b.npy", "", "nope"]},
                   files=["a.npy", "p3.npy"])
    with pytest.raises(CohortProblems) as e:
        read_table(root, SCHEMA)
    found = {(p.line, p.column) for p in e.value.problems}
    assert found == {(5, "patient_id"), (3, "y"), (3, "t1_ms"), (4, "age"), (3, "view"), (3, "clip"), (5, "clip")}
    assert all(p.file.endswith("labels.csv") for p in e.value.problems)
    assert any("outside the cohort folder; set cohort.allow_outside_paths: true" in str(p) for p in e.value.problems)
    assert "\n" not in str(e.value) and "line 3" in str(e.value) and "6 more problem(s)" in str(e.value)
    lines = [p.line for p in e.value.problems if p.line is not None]
    assert len(lines) == len(e.value.problems) and lines == sorted(lines)  # every problem has its line, in file order


def test_missing_columns_and_empty_tables_are_one_problem(tmp_path):
    root = _folder(tmp_path, {"patient_id": ["p1"], "age": [3]})
    with pytest.raises(CohortProblems, match=r"lacks column\(s\) \['qrs'\]"):
        read_table(root, Schema((*SCHEMA.columns, Column("qrs", "number", required=True))))
    (tmp_path / "clips" / "p1.npy").write_bytes(b"x")
    unlabelled = read_table(root, SCHEMA)  # a required target may be absent: a cohort to predict has no labels
    assert unlabelled["y"].isna().all() and unlabelled["t1_ms"].isna().all()
    pd.DataFrame(columns=["patient_id", "y"]).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(CohortProblems, match="holds no rows"):
        read_table(root, SCHEMA)
    with pytest.raises(CardioError, match="cohort table not found"):
        read_table(tmp_path / "clips", SCHEMA)


def test_hierarchy_defaults_and_nesting(tmp_path):
    root = _folder(tmp_path, {"patient_id": ["p1", "p1", "p1", "p2"], "study_id": ["s1", "s1", "s2", "s3"],
                              "y": ["1", "1", "", "0"]},
                   files=["s1.npy", "s1#2.npy", "s2.npy", "s3.npy"])
    t = read_table(root, SCHEMA)
    assert list(t.columns[:3]) == ["patient_id", "study_id", "record_id"]
    assert t["record_id"].tolist() == ["s1", "s1#2", "s2", "s3"]  # two clips of one study numbered
    assert t["y"].tolist()[:2] == [1.0, 1.0] and np.isnan(t["y"].iloc[2])  # a missing label is the mask
    assert missingness(t, SCHEMA.targets).set_index("target").loc["y", "missing"] == 1
    # a study shared by two patients, and a record id given twice, are problems
    _folder(tmp_path, {"patient_id": ["p1", "p2"], "study_id": ["s1", "s1"], "record_id": ["r1", "r1"], "y": [0, 1]})
    with pytest.raises(CohortProblems) as e:
        read_table(root, Schema((Column("y", "binary", target=True),)))
    text = " ".join(map(str, e.value.problems))
    assert "record_id appears on more than one row" in text and "one study_id belongs to several patient_id" in text


def test_symlink_out_of_the_folder_is_an_outside_path(tmp_path):
    outside = tmp_path / "elsewhere.npy"
    outside.write_bytes(b"x")
    cohort = tmp_path / "cohort"
    (cohort / "clips").mkdir(parents=True)
    os.symlink(outside, cohort / "clips" / "p1.npy")
    pd.DataFrame({"patient_id": ["p1"], "y": [1]}).to_csv(cohort / "labels.csv", index=False)
    with pytest.raises(CohortProblems, match="outside the cohort folder"):
        read_table(cohort, SCHEMA)
    assert read_table(cohort, SCHEMA, allow_outside=True)["clip"].iloc[0].endswith("p1.npy")


def test_masked_targets_change_neither_loss_nor_gradients():
    torch.manual_seed(0)
    out = torch.randn(6, 2, requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1], [0, 0], [1, 1]], dtype=torch.bool)
    y = torch.randint(0, 2, (6, 2)).float()
    y_changed = torch.where(mask, y, 1 - y)  # every masked target flipped

    def loss_and_grad(target, fn=masked_loss):
        out.grad = None
        loss = fn(out, target, mask) if fn is masked_loss else fn(out, target)
        loss.backward()
        assert out.grad is not None
        return float(loss.detach()), out.grad.clone()

    a, ga = loss_and_grad(y)
    b, gb = loss_and_grad(y_changed)
    assert a == b and torch.equal(ga, gb) and (ga[~mask] == 0).all()
    nan = torch.where(mask, y, torch.tensor(float("nan")))  # NaN marks the same entries
    c, gc = loss_and_grad(nan, lambda o, t: masked_loss(o, t))
    assert c == pytest.approx(a) and torch.allclose(gc, ga)
    d, gd = loss_and_grad(nan, masked_mse)
    assert np.isfinite(d) and (gd[~mask] == 0).all()
    classes = torch.tensor([1, MISSING_CLASS, 0])
    logits = torch.randn(3, 2)
    assert float(masked_loss(logits, classes)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits[[0, 2]], classes[[0, 2]])))


def test_rows_without_any_target_are_not_trained_on():
    table = pd.DataFrame({"record_id": list("abcd"), "patient_id": list("abcd"), "y": [1, np.nan, 0, np.nan],
                          "t1": [np.nan, 3.0, np.nan, np.nan]})
    f = Features(table, label="y", targets=("t1",))
    assert f.targets == ("y", "t1") and f.trainable([0, 1, 2, 3]).tolist() == [0, 1, 2]


def test_unlabelled_patients_spread_over_the_folds():
    from cardio_testing.harness import split_overlaps

    rng = np.random.default_rng(0)
    pts = [f"p{i}" for i in range(40) for _ in range(1 + i % 2)]  # 20 patients with two records
    y = [np.nan if i % 3 == 0 else float(i % 2) for i in range(40) for _ in range(1 + i % 2)]
    table = pd.DataFrame({"record_id": [f"r{i}" for i in range(len(pts))], "patient_id": pts, "y": y,
                          "x": rng.normal(size=len(pts))})
    for cv in ({"method": "kfold", "folds": 5}, {"method": "holdout", "ratios": [6, 2, 2]}):
        assert split_overlaps(table, cv, "y", seeds=range(20)) == []


def test_moved_keys_are_one_line_naming_the_new_key(tmp_path):
    moved = {"data.cohort_dir": "cohort.dir", "perfusion": "perfusion_polar"}
    with pytest.raises(CardioError, match=r"config key data.cohort_dir \(--set\) has moved: use cohort.dir"):
        resolve({"data": {}}, None, ("data.cohort_dir=/x",), moved)
    (tmp_path / "c.yaml").write_text("perfusion:\n  n_patients: 3\n")
    with pytest.raises(CardioError, match="config key perfusion .* has moved: use perfusion_polar"):
        resolve({"perfusion_polar": {"n_patients": 1}}, tmp_path / "c.yaml", (), moved)


def test_pseudonyms_are_keyed_stable_and_kept_out_of_runs(tmp_path):
    """One key per cache: the same id gets the same pseudonym in every run (fusion joins on it); another key,
    another pseudonym; the key file is owner-only and lives in the cache, not in a run directory."""
    import stat

    from cardio.data.pseudonyms import pseudonym_key, pseudonyms

    key = pseudonym_key(tmp_path / "cache")
    assert pseudonym_key(tmp_path / "cache") == key and len(key) == 32
    assert stat.S_IMODE((tmp_path / "cache" / "pseudonym.key").stat().st_mode) == 0o600
    a = pseudonyms(["MRN-1", "MRN-2", "MRN-1"], key, "P")
    assert a[0] == a[2] != a[1] and a[0].startswith("P") and "MRN" not in "".join(a)
    assert pseudonyms(["MRN-1"], pseudonym_key(tmp_path / "other"), "P")[0] != a[0]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pseudonym.key").write_text("not a key")
    with pytest.raises(CardioError, match="is not a cardio pseudonym key"):
        pseudonym_key(tmp_path / "bad")


def test_new_cohort_writes_a_template_the_reader_accepts_once_filled(cardio_cli, tmp_path):
    proc = cardio_cli("new-cohort", "--plugin", "toy", "site", check=True)
    assert "cohort.csv" in proc.stdout and "README.md" in proc.stdout
    header = (tmp_path / "site" / "cohort.csv").read_text().strip().split(",")
    assert header[:3] == ["patient_id", "study_id", "record_id"] and "label" in header and "x15" in header
    readme = (tmp_path / "site" / "README.md").read_text()
    assert "cardio validate --plugin toy --set cohort.dir=site" in readme and "| `label` | binary |" in readme
    row = {c: "1" for c in header} | {"patient_id": "p1", "study_id": "", "record_id": "", "sex": "F"}
    pd.DataFrame([row]).to_csv(tmp_path / "site" / "cohort.csv", index=False)
    from cardio_toy.plugin import schema  # the toy plugin is importable in cardio_cli's path only during calls

    assert len(read_table(tmp_path / "site", schema(16))) == 1
    again = cardio_cli("new-cohort", "--plugin", "toy", "site")
    assert again.returncode == 2 and "already holds files" in again.stderr
