"""What a cohort is (Cohort.synthetic, Cohort.truth) is set once where the study loads it, from cohort.dir: the
plugin's own synthetic cohort (no folder), one `cardio synthetic-crt` wrote (its truth.json beside the folder), or a
user's; it survives a preprocess that rebuilds the Cohort, a subset and the null control, and the cache key sees it."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cardio import Cohort, PluginInfo, hookimpl
from cardio.data import SYNTHETIC_CRT
from cardio.data.leakage import permute_outcomes
from cardio.study.stages import open_study
from cardio.study.tasks import cohort_fingerprint
from cardio_fusion.synthetic import latent
from cardio_fusion.truth import TRUTH
from cardio_testing.harness import cpu_context


def _table(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                         "label": [i % 2 for i in range(n)]})


class Rebuilds:
    """A plugin whose preprocess returns a new Cohort built from the table alone (what it is not passed on)."""

    @hookimpl
    def cardio_plugin_info(self):
        return PluginInfo(name="rebuilds", modality="toy", description="preprocess rebuilds the cohort")

    @hookimpl
    def cardio_load(self):
        return Cohort(_table())

    @hookimpl
    def cardio_preprocess(self, cohort):
        return Cohort(cohort.table.copy())

    @hookimpl
    def cardio_featurize(self, cohort):
        raise AssertionError("not reached")

    @hookimpl
    def cardio_train(self):
        return 0

    @hookimpl
    def cardio_predict(self):
        return None


def synthetic_crt_folder(root: Path) -> Path:
    """A modality folder with the truth.json `cardio synthetic-crt` writes beside it (its latent model's truth)."""
    _, truth = latent(40, 3, ["toy", "other"])
    (root / "toy").mkdir(parents=True)
    (root / TRUTH).write_text(json.dumps({**truth, "missing": {"toy": 0, "other": 0}}))
    return root / "toy"


@pytest.fixture()
def folders(tmp_path) -> dict[str, str | None]:
    users = tmp_path / "mine"
    users.mkdir()
    (users / TRUTH).write_text(json.dumps({"planted": "a plugin's own statement, not synthetic-crt's"}))
    return {"own": None, "crt": str(synthetic_crt_folder(tmp_path / "crt")), "user": str(users)}


def _cohort(where: str | None, tmp_path: Path) -> Cohort:
    study = open_study("rebuilds", register=[Rebuilds()])
    cfg = study.config(sets=(f"cache_dir={tmp_path / 'cache'}", f"cohort.dir={where or 'null'}"))
    return study.cohort(cfg, cpu_context(tmp_path / "out"), check=False)


def test_what_the_cohort_is_is_set_at_load_and_survives_preprocess(folders, tmp_path):
    own, crt, user = (_cohort(folders[k], tmp_path) for k in ("own", "crt", "user"))
    assert (own.synthetic, own.truth) == (True, None)  # the plugin states its own synthetic cohort
    assert crt.synthetic and crt.truth is not None and crt.truth.startswith("Synthetic cohort, written by `cardio "
                                                                            "synthetic-crt` (its crt/truth.json)")
    assert "Weights w: toy 1.2, other 1.2" in crt.truth and "\n" not in crt.truth
    assert (user.synthetic, user.truth) == (False, None)  # another truth.json is not synthetic-crt's

    for cohort in (crt, crt.subset([0, 1, 2]), permute_outcomes(crt, 0)):
        assert (cohort.synthetic, cohort.truth) == (crt.synthetic, crt.truth)
    # a plugin's report states its own settings only where they made the cohort
    said = {k: c.planted_effects(lambda: "the plugin's settings") for k, c in (("own", own), ("crt", crt),
                                                                                ("user", user))}
    assert said == {"own": "the plugin's settings", "crt": SYNTHETIC_CRT, "user": ""}


def test_the_cache_key_sees_a_truth_json_put_beside_the_folder(folders, tmp_path):
    """The same files read as a user's cohort and, once truth.json is beside them, as synthetic-crt's: the stages a
    run keeps in the cache for one are not read back for the other."""
    crt = Path(str(folders["crt"]))
    before = cohort_fingerprint(_cohort(str(crt), tmp_path))
    (crt.parent / TRUTH).rename(crt.parent / "kept.json")
    assert cohort_fingerprint(_cohort(str(crt), tmp_path)) != before
