"""spect_polar on cardio's plugin contract suite (cardio_testing.contract), at its smallest run: 30 synthetic
patients (16 slices of 32 x 32 px), 20 AE iterations, 3 folds, 50 permutations, explain on, the in-sample analysis
on; and the in-sample analysis' own counts on the suite's run."""
from typing import Any

import pytest

pytest.importorskip("cardio_spect_polar")

from cardio_testing.contract import Contract, contract_suite
from cardio_testing.harness import read_metrics

RUN = ("spect_polar.synthetic.n_patients=30", "spect_polar.synthetic.slices=16", "spect_polar.synthetic.size=32",
       "spect_polar.phase.rings=16", "spect_polar.phase.sectors=32", "spect_polar.autoencoder.hidden=32",
       "spect_polar.autoencoder.iterations=20", "spect_polar.autoencoder.batch_size=null",
       "spect_polar.analysis.permutations=50", "spect_polar.in_sample_analysis=true", "cv.folds=3",
       "stats.n_resamples=200")


# the suite's class is made at run time (contract_suite): mypy takes a base it cannot see as Any
Suite: Any = contract_suite(Contract("spect_polar", run=RUN))


class TestContract(Suite):
    def test_the_in_sample_analysis_counts_scans_and_patients(self, loaded, finished):
        """Out of fold per labelled patient (the core's, checked by the suite); the opt-in in-sample AUC per
        labelled scan (a patient's follow-up scans count), and the report says how many were analysed."""
        table, label = loaded.cohort.table, loaded.cohort.label
        own = {e["metric"]: e["n"] for e in read_metrics(finished.run)["estimates"] if "sample AUC" in e["metric"]}
        assert own["in-sample AUC clinical+ae"] == int(table[label].notna().sum())
        unknown = table.groupby("patient_id")[label].apply(lambda v: v.isna().all()).sum()
        assert (f"{len(table)} scans of {table['patient_id'].nunique()} patients were phase-analysed; {unknown} "
                "patient(s) without a known response") in (finished.run / "report.md").read_text()
