"""perfusion_polar on cardio's plugin contract suite (cardio_testing.contract): its smallest run, 40 synthetic
patients, one epoch a step, one thread, 2 folds; explain on (its figures and tables are searched for identifiers);
the performance section's figures off (its estimates are what the suite reads)."""
import pytest

pytest.importorskip("cardio_perfusion_polar")

from cardio_testing.contract import Contract, contract_suite

RUN = ("perfusion_polar.n_patients=40", "perfusion_polar.size=32", "perfusion_polar.step1.epochs=1",
       "perfusion_polar.step2.epochs=1", "train.cpu_threads=1", "cv.folds=2", "stats.n_resamples=100",
       "report.figures=false")

TestContract = contract_suite(Contract("perfusion_polar", run=RUN))
