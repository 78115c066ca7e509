"""The CRT outcome derived and checked by the papers' rule (issue 56): LVESV reduction >= 15% at 6 ± 1 months. A
cohort table with baseline and follow-up volumes and dates, read by the core's one reader with the rule declared on
its schema: empty labels are derived, the rows whose given label, reduction or follow-up date contradicts the rule
are named by CSV line, never by patient."""
from __future__ import annotations

import numpy as np
import pytest

from cardio.data.cohort import CohortProblems, Column, Schema, read_table
from cardio.data.response import VolumetricResponse

RULE = VolumetricResponse()
SCHEMA = Schema(columns=(Column("responder", "binary", target=True), Column("lvesv", "number", low=0),
                         Column("lvesv_reduction_pct", "number", high=100), *RULE.columns()),
                table="cohort.csv", level="patient", response=RULE)
HEADER = "patient_id,responder,lvesv,lvesv_followup,lvesv_reduction_pct,crt_date,followup_date\n"


def _read(tmp_path, rows: list[str]):
    (tmp_path / "cohort.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    return read_table(tmp_path, SCHEMA)


def test_empty_labels_and_reductions_are_derived_by_the_rule(tmp_path):
    table = _read(tmp_path, ["a,,200,150,,2020-01-10,2020-07-08",   # 25% at 5.9 months: responder
                             "b,,200,180,,,",                       # 10%: not
                             "c,1,200,,20,,",                       # given and agreeing
                             "d,,,,,,"])                            # nothing to derive from: unknown
    assert table["responder"].tolist()[:3] == [1.0, 0.0, 1.0] and np.isnan(table["responder"].iloc[3])
    assert table["lvesv_reduction_pct"].tolist()[:3] == [25.0, 10.0, 20.0]


def test_contradictions_are_named_by_line_and_column(tmp_path):
    with pytest.raises(CohortProblems) as raised:
        _read(tmp_path, ["pt-one,1,200,190,,,",                    # line 2: 5% reduction, given responder
                         "pt-two,0,,,30,,",                        # line 3: 30% given, labelled non-responder
                         "pt-three,1,200,100,20,,",                # line 4: the volumes give 50%, not 20%
                         "pt-four,1,200,100,,2020-01-10,2020-02-10"])  # line 5: follow-up after 1 month
    found = {(p.line, p.column): p.message for p in raised.value.problems}
    assert set(found) == {(2, "responder"), (3, "responder"), (4, "lvesv_reduction_pct"), (5, "followup_date")}
    assert "is 1, but the LVESV reduction of 5.0% makes it 0 by the papers' rule" in found[(2, "responder")]
    assert "is 0, but the LVESV reduction of 30.0% makes it 1" in found[(3, "responder")]
    assert "give 50.0%" in found[(4, "lvesv_reduction_pct")]
    assert "31 days (1.0 months) after the implant, outside the rule's 6 ± 1 months" in found[(5, "followup_date")]
    assert not any("pt-" in str(p) for p in raised.value.problems)  # rows by line, never by patient


def test_both_plugins_declare_the_rule():
    pytest.importorskip("cardio_ecg_transfer")
    pytest.importorskip("cardio_spect_polar")
    from cardio_ecg_transfer.cohort_table import schema as ecg_schema
    from cardio_ecg_transfer.settings import EcgSettings
    from cardio_spect_polar.cohort import run_schema

    ecg = ecg_schema("responder", EcgSettings())
    spect = run_schema("responder", ["age"])
    assert isinstance(ecg.response, VolumetricResponse) and isinstance(spect.response, VolumetricResponse)
    assert (ecg.response.baseline, spect.response.baseline) == ("lvesv", "esv")
    assert {"lvesv_followup", "crt_date", "followup_date"} <= {c.name for c in ecg.columns}
    assert {"esv_followup", "crt_date", "followup_date"} <= {c.name for c in spect.columns}
