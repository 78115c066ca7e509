"""The CRT outcome derived and checked by the papers' rule (issue 56): LVESV reduction >= 15% at 6 ± 1 months. A
cohort table with baseline and follow-up volumes and dates, read by the core's one reader with the rule declared on
its schema: empty labels are derived; each kind of contradiction (a label, a reduction, a follow-up date) is one line
for the file, naming how many rows and their CSV lines, never a patient. The rule is typed settings of each plugin
that uses it (`<plugin>.response`), and the synthetic cohorts carry what it reads."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cardio.data import CardioError
from cardio.data.cohort import CohortProblems, Column, Schema, read_table
from cardio_response.volumetric import VolumetricResponse
from cardio_testing.harness import plugin_config

RULE = VolumetricResponse()
SCHEMA = Schema(columns=RULE.columns((Column("responder", "binary", target=True),)), table="cohort.csv",
                level="patient", response=RULE)
HEADER = "patient_id,responder,lvesv,lvesv_followup,lvesv_reduction_pct,crt_date,followup_date\n"


def _read(tmp_path, rows: list[str], schema: Schema = SCHEMA, header: str = HEADER):
    (tmp_path / "cohort.csv").write_text(header + "".join(r + "\n" for r in rows))
    return read_table(tmp_path, schema)


def _problems(tmp_path, rows: list[str], schema: Schema = SCHEMA) -> dict[str | None, str]:
    with pytest.raises(CohortProblems) as raised:
        _read(tmp_path, rows, schema)
    assert all(p.line is None for p in raised.value.problems)  # one line for the file, not one per row
    found = {p.column: str(p).replace(f"{tmp_path}/", "") for p in raised.value.problems}
    assert len(found) == len(raised.value.problems)
    return found


def test_empty_labels_and_reductions_are_derived_by_the_rule(tmp_path):
    table = _read(tmp_path, ["a,,200,150,,2020-01-10,2020-07-08",   # 25% at 5.9 months: responder
                             "b,,200,180,,,",                       # 10%: not
                             "c,1,200,,20,,",                       # given and agreeing
                             "d,,,,,,"])                            # nothing to derive from: unknown
    assert table["responder"].tolist()[:3] == [1.0, 0.0, 1.0] and np.isnan(table["responder"].iloc[3])
    assert table["lvesv_reduction_pct"].tolist()[:3] == [25.0, 10.0, 20.0]


def test_each_kind_of_contradiction_is_one_line_naming_its_rows(tmp_path):
    found = _problems(tmp_path, [
        "pt-one,1,200,190,,,",                        # line 2: 5% reduction, given responder
        "pt-two,0,,,30,,",                            # line 3: 30% given, labelled non-responder
        "pt-three,1,200,100,20,,",                    # line 4: the volumes give 50%, not 20%
        "pt-four,1,200,100,,2020-01-10,2020-02-10",   # line 5: follow-up after 1 month
        "pt-five,0,200,190,,2020-01-10,2020-07-10",   # line 6: agrees with the rule, 6 months
        "pt-six,0,200,180,40,,"])                     # line 7: 40% given, 10% by the volumes: named once
    assert set(found) == {"responder", "lvesv_reduction_pct", "followup_date"}
    assert found["responder"] == (
        "cohort.csv: column 'responder': 2 of 4 row(s) contradict the papers' rule (LVESV reduction >= 15% at 6 ± 1 "
        "months): line 2 (1 at 5.0%), line 3 (0 at 30.0%)")
    assert found["lvesv_reduction_pct"].endswith(
        "2 of 2 row(s) differ by more than 0.5 points from the reduction their lvesv and lvesv_followup give: line 4 "
        "(20% where 200 -> 100 ml give 50.0%), line 7 (40% where 200 -> 180 ml give 10.0%)")
    assert found["followup_date"].endswith(
        "1 of 2 row(s) date the follow-up echo outside the rule's 6 ± 1 months (153 to 213 days) after crt_date: "
        "line 5 (31 days (1.0 months))")
    assert not any("pt-" in line for line in found.values())  # rows by line, never by patient


def test_many_contradictions_are_still_one_line_with_their_count(tmp_path):
    found = _problems(tmp_path, [f"p{i},1,200,190,,," for i in range(25)])
    assert found["responder"].count("line ") == 10 and "25 of 25 row(s)" in found["responder"]
    assert found["responder"].endswith("line 11 (1 at 5.0%), and 15 more")


def test_the_window_edges_are_the_rules(tmp_path):
    # 152 days is 4.99 months (outside), 153 and 213 inside, 214 outside: 6 ± 1 months of 30.44 days
    start = pd.Timestamp("2020-01-01")
    found = _problems(tmp_path, [f"p{d},1,200,100,,{start.date()},{(start + pd.Timedelta(days=d)).date()}"
                                 for d in (152, 153, 213, 214)])
    assert set(found) == {"followup_date"}
    assert "2 of 4 row(s)" in found["followup_date"] and "line 2 (152 days" in found["followup_date"]
    assert "line 5 (214 days" in found["followup_date"]


def _ecg_schema(*sets: str) -> Schema:
    pytest.importorskip("cardio_ecg_transfer")
    from cardio_ecg_transfer.cohort_table import schema
    from cardio_ecg_transfer.settings import EcgSettings

    return schema("responder", EcgSettings.of(plugin_config("ecg_transfer", sets)))


def _rule_schema(*sets: str) -> Schema:
    """A table of the label and the rule's columns, read by the rule of ecg_transfer's settings (its ECGs aside)."""
    rule = _ecg_schema(*sets).response
    assert isinstance(rule, VolumetricResponse)
    return Schema(columns=rule.columns((Column("responder", "binary", target=True),)), table="cohort.csv",
                  level="patient", response=rule)


def test_the_rule_follows_the_plugins_typed_settings(tmp_path):
    rows = ["a,1,200,176,,2020-01-01,2020-09-15", "b,0,200,190,,,"]  # 12% at 8.5 months; 5%
    schema = _rule_schema("ecg_transfer.response.threshold_pct=10", "ecg_transfer.response.tolerance_months=3")
    assert _read(tmp_path, rows, schema)["responder"].tolist() == [1.0, 0.0]
    found = _problems(tmp_path, rows, _rule_schema())  # the paper's rule: both refused
    assert "line 2 (1 at 12.0%)" in found["responder"] and "line 2 (258 days" in found["followup_date"]
    renamed = _rule_schema("ecg_transfer.response.followup=esv_6m", "ecg_transfer.response.followup_date=echo_date")
    table = _read(tmp_path, ["a,,200,150,2020-01-01,2020-07-01"], renamed,
                  header="patient_id,responder,lvesv,esv_6m,crt_date,echo_date\n")
    assert table["responder"].tolist() == [1.0] and table["lvesv_reduction_pct"].tolist() == [25.0]


def test_a_rule_setting_out_of_range_is_one_line():
    with pytest.raises(CardioError, match=r"ecg_transfer\.response\.threshold_pct = 150 is out of range"):
        _ecg_schema("ecg_transfer.response.threshold_pct=150")


def test_both_plugins_declare_the_rule():
    pytest.importorskip("cardio_ecg_transfer")
    pytest.importorskip("cardio_spect_polar")
    from cardio_spect_polar.cohort import config_schema

    ecg = _ecg_schema()
    spect = config_schema(plugin_config("spect_polar"))
    assert isinstance(ecg.response, VolumetricResponse) and isinstance(spect.response, VolumetricResponse)
    assert (ecg.response.baseline, spect.response.baseline) == ("lvesv", "esv")
    assert {"lvesv_followup", "crt_date", "followup_date"} <= {c.name for c in ecg.columns}
    assert {"esv_followup", "crt_date", "followup_date"} <= {c.name for c in spect.columns}


def test_the_synthetic_cohorts_carry_what_the_rule_checks():
    pytest.importorskip("cardio_ecg_transfer")
    pytest.importorskip("cardio_spect_polar")
    from cardio_ecg_transfer.synthetic import cohort_table
    from cardio_spect_polar.cohort import simulate_clinical

    for table, rule in ((cohort_table(40, 0), VolumetricResponse()),
                        (simulate_clinical(40, 0)[0], VolumetricResponse(baseline="esv", followup="esv_followup"))):
        computed = 100 * (table[rule.baseline] - table[rule.followup]) / table[rule.baseline]
        assert (computed - table[rule.reduction]).abs().max() <= rule.rounding_pct
        assert ((table[rule.reduction] >= rule.threshold_pct).astype(int) == table["responder"]).all()
        days = (pd.to_datetime(table[rule.followup_date]) - pd.to_datetime(table[rule.implant_date])).dt.days
        assert days.between(153, 213).all()
