"""AAMI class mapping and the de Chazal inter-patient record split."""
import numpy as np
import pytest

pytest.importorskip("cardio_ecg_transfer")

from cardio import CardioError
from cardio_ecg_transfer import aami


def test_every_beat_symbol_maps_to_its_aami_class():
    # B, n, r, ?: symbols of svdb and incartdb that MIT-BIH never uses
    expected = {"N": "NLRejBn", "S": "AaJS", "V": "VEr", "F": "F", "Q": "/fQ?"}
    for cls, symbols in expected.items():
        idx = aami.class_index(list(symbols))
        assert (idx == aami.AAMI_CLASSES.index(cls)).all(), cls
    assert len(aami.SYMBOL_TO_CLASS) == sum(len(s) for s in expected.values())


def test_non_beat_annotations_are_excluded():
    non_beats = ["+", "~", "|", "!", '"', "x", "[", "]", "p", "t", "u", "`", "'", "^", "s", "T", "*", "D", "=", "@"]
    assert (aami.class_index(non_beats) == -1).all()
    assert aami.beat_mask(["N", "+", "V", "~"]).tolist() == [True, False, True, False]


def test_ds1_ds2_are_disjoint_and_cover_mitdb_without_paced_records():
    ds1, ds2 = set(aami.DS1), set(aami.DS2)
    assert len(ds1) == len(aami.DS1) == 22 and len(ds2) == len(aami.DS2) == 22
    assert not ds1 & ds2
    assert not (ds1 | ds2) & set(aami.PACED)
    assert set(aami.PACED) == {"102", "104", "107", "217"}
    assert len(ds1 | ds2 | set(aami.PACED)) == 48


def test_split_records_subsets_and_refuses_paced_or_unknown_records():
    train, test = aami.split_records("de_chazal", None)
    assert train == list(aami.DS1) and test == list(aami.DS2)
    train, test = aami.split_records("de_chazal", ["101", "100", "106"])
    assert train == ["101", "106"] and test == ["100"]
    with pytest.raises(CardioError, match="paced"):
        aami.split_records("de_chazal", ["101", "100", "217"])
    with pytest.raises(CardioError, match="999"):
        aami.split_records("de_chazal", ["101", "999"])
    with pytest.raises(CardioError, match="DS2"):
        aami.split_records("de_chazal", ["101"])
    with pytest.raises(CardioError, match="split"):
        aami.split_records("random")


@pytest.mark.parametrize("records, expected", [
    (aami.DS1, [45866, 944, 3788, 415, 8]),
    (aami.DS2, [44259, 1837, 3221, 388, 7]),
])
def test_mitdb_class_counts_equal_de_chazal_2004(records, expected, mitdb_dir):
    """Mapping the real .atr files gives the per-class counts de Chazal et al. published (Table I)."""
    wfdb = pytest.importorskip("wfdb")
    root = mitdb_dir
    counts = np.zeros(len(aami.AAMI_CLASSES), dtype=int)
    for record in records:
        idx = aami.class_index(wfdb.rdann(str(root / record), "atr").symbol)
        counts += np.bincount(idx[idx >= 0], minlength=len(aami.AAMI_CLASSES))
    assert counts.tolist() == expected
