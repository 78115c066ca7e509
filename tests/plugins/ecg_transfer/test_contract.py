"""ecg_transfer on cardio's plugin contract suite (cardio_testing.contract), at its smallest run: 26 synthetic
patients of 5 s ECGs, no MIT-BIH pretraining, one ResNet from scratch for one epoch on 2 beats per ECG, the
guideline rule, logistic regression and a small forest, explain on; and what only ecg_transfer's schema does."""
from pathlib import Path

import pytest

pytest.importorskip("cardio_ecg_transfer")

import numpy as np

from cardio_ecg_transfer import cohort_table
from cardio_ecg_transfer.settings import EcgSettings
from cardio_testing.contract import Contract, contract_suite
from cardio_testing.harness import PLANTS, plugin_config

RUN = ("ecg_transfer.synthetic.n_patients=26", "ecg_transfer.synthetic.seconds=5", "cv.folds=2",
       "stats.n_resamples=100", "train.cpu_threads=2", "ecg_transfer.pretrain.enabled=false",
       "ecg_transfer.finetune.transfer=false", "stats.reference=null", "ecg_transfer.finetune.epochs=1",
       "ecg_transfer.preprocess.max_beats_per_record=2", "ecg_transfer.baselines.svm.enabled=false",
       "ecg_transfer.baselines.deep_features=false", "ecg_transfer.baselines.threshold_cv=2",
       "ecg_transfer.baselines.rf.n_estimators=10")


def wfdb_comments(root: Path, table):
    """Carts write the patient into the WFDB header's comments (DICOM waveforms come with the DICOM reader)."""
    for hea in root.rglob("*.hea"):
        hea.write_text(hea.read_text() + "".join(f"# {tag}: {value}\n" for tag, value in PLANTS.items()))
    return table


TestContract = contract_suite(Contract("ecg_transfer", run=RUN, plant_files=wfdb_comments))


def test_the_config_names_the_target_and_the_covariates():
    """The config's label names the target; a covariate the config names that SCHEMA lacks is a number."""
    assert cohort_table.SCHEMA.targets == ("responder",) and cohort_table.SCHEMA.level == "patient"
    config = plugin_config("ecg_transfer", ["label=crt_response", "ecg_transfer.baselines.covariates=[qrs_ms, nyha]"])
    schema = cohort_table.schema(config["label"], EcgSettings.of(config))
    assert schema.targets == ("crt_response",) and schema.column("nyha").kind == "number"
    assert np.all([c.name != "responder" for c in schema.columns])
