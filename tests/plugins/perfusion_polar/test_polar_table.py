"""Ring x sector CSV polar maps: read with their numbering, resampled onto cardio_imaging.aha17's bull's-eye grid, and
round-tripped against the .npy path of the same synthetic maps within interpolation error."""
from __future__ import annotations

import pytest

pytest.importorskip("cardio_perfusion_polar")

import numpy as np
import pandas as pd

from cardio import CardioError
from cardio.data.cohort import CohortProblems
from cardio_imaging import aha17
from cardio_perfusion_polar import cohort, polar_table, synthetic
from cardio_perfusion_polar.polar_table import Orientation
from cardio_perfusion_polar.settings import PerfusionSettings
from cardio_testing.harness import plugin_config

# (rings, sectors, numbering): counts and conventions of other programs than the model's 32 x 32 grid
GRIDS = [(7, 24, Orientation("apex", 270.0, "clockwise")), (10, 40, Orientation()),
         (15, 36, Orientation("base", 90.0, "clockwise")), (20, 60, Orientation("base", 45.0, "counterclockwise"))]


def _sets(o: Orientation) -> list[str]:
    return [f"perfusion_polar.tables.first_ring={o.first_ring}",
            f"perfusion_polar.tables.first_sector_deg={o.first_sector_deg}",
            f"perfusion_polar.tables.direction={o.direction}"]


@pytest.fixture(scope="module")
def maps_npy(tmp_path_factory):
    """12 synthetic studies written as .npy maps, read back through the plugin's cohort stage."""
    table, maps = synthetic.synthesize(12, 32, seed=5)
    root = synthetic.write_cohort(table, maps, tmp_path_factory.mktemp("npy") / "c")
    return table, maps, root


@pytest.mark.parametrize("rings,sectors,orientation", GRIDS, ids=[f"{r}x{s}" for r, s, _ in GRIDS])
def test_tables_round_trip_against_the_npy_maps(maps_npy, ctx, tmp_path, rings, sectors, orientation):
    """The same maps exported as ring x sector tables and read with the program's numbering give the .npy path's
    17-segment means within interpolation error (finer grids closer), through cohort.load and featurize."""
    table, maps, npy_root = maps_npy
    root = synthetic.write_cohort(table, maps, tmp_path / "c", tables=(rings, sectors), orientation=orientation)
    assert not list((root / "maps").glob("*.npy"))
    written = pd.read_csv(next((root / "maps").glob("*.csv")))
    assert list(written.columns) == ["channel", "ring", "sector", "value"] and len(written) == 3 * rings * sectors
    cfg = plugin_config("perfusion_polar", [f"cohort.dir={root}", *_sets(orientation)])
    from_tables = cohort.featurize(cohort.load(cfg, ctx), ctx)
    from_npy = cohort.featurize(cohort.load(plugin_config("perfusion_polar", [f"cohort.dir={npy_root}"]), ctx), ctx)
    assert from_tables.x["maps"].shape == (12, 3, 32, 32)
    err = np.abs(from_tables.x["segments"] - from_npy.x["segments"]).reshape(12, 3, 17)
    worst = err.max(axis=(0, 2))
    print(f"{rings}x{sectors}: worst segment-mean error rest {worst[0]:.2f}%, stress {worst[1]:.2f}%, "
          f"MFR {worst[2]:.3f}")
    # rest/stress in % of maximum uptake, MFR a ratio about 2.5: the steep rim of the synthetic maps is what
    # bilinear resampling smooths most, on the coarsest grid
    assert worst[0] < 1.5 and worst[1] < 3.0 and worst[2] < 0.12, worst
    assert np.median(err[:, 2]) < 0.05
    # a table read with another program's numbering is a different map: the convention matters
    wrong = cohort.load_map(next((root / "maps").glob("*.csv")), 32, Orientation())
    assert orientation == Orientation() or np.abs(wrong - from_tables.x["maps"][0]).max() > 5


def test_every_numbering_of_one_map_reads_the_same(tmp_path):
    """One polar grid written under four numberings (first ring apex/base, sector 0 anywhere, either direction)
    is the same image once read with its own numbering."""
    rng = np.random.default_rng(0)
    grid = rng.random((3, 8, 36)) * np.array([100, 100, 4])[:, None, None]  # rest %, stress %, MFR
    reference = polar_table.to_image(grid, 32, Orientation())
    r, s = np.arange(8), np.arange(36)
    for o in (Orientation("base", 0.0, "counterclockwise"), Orientation("apex", 90.0, "clockwise"),
              Orientation("base", 250.0, "clockwise")):
        # the same cells renumbered: ring i from the apex is ring 7 - i from the base; sector k centred at angle a_k
        angles = (np.arange(36) + 0.5) * 10.0
        own = ((angles - o.first_sector_deg) * (-1 if o.direction == "clockwise" else 1)) % 360 / 10.0 - 0.5
        renumbered = np.empty_like(grid)
        renumbered[:, (r[::-1] if o.first_ring == "base" else r)[:, None], np.rint(own).astype(int)[None, :] % 36] \
            = grid[:, :, s]
        path = polar_table.write_table(renumbered, tmp_path / "t.csv")
        np.testing.assert_allclose(cohort.load_map(path, 32, o), reference, atol=1e-3)


def test_the_default_numbering_is_the_core_polar_grid():
    """Default: first ring at the apex, sector 0 from 3 o'clock, counter-clockwise, as aha17.polar_labels. A
    table that is 1 in mid anterior (segment 7) only is brightest in segment 7 of the bull's-eye image."""
    labels = aha17.polar_labels(12, 48)
    for segment in (7, 4, 14, 17):
        grid = np.stack([(labels == segment).astype(float)] * 3)
        image = polar_table.to_image(grid, 32, Orientation())
        means = aha17.segment_values(image[0], aha17.image_labels(32))
        assert np.argmax(means) == segment - 1 and means[segment - 1] > 0.7, (segment, means.round(2))


def test_orientation_settings_are_checked_in_one_line():
    with pytest.raises(CardioError, match=r"^config key perfusion_polar.tables.first_ring = 'centre' is out of "
                                          "range; allowed: one of apex, base$"):
        plugin_config("perfusion_polar", ["perfusion_polar.tables.first_ring=centre"])
    with pytest.raises(CardioError, match="perfusion_polar.tables.direction = 'cw' is out of range; allowed: one of"):
        plugin_config("perfusion_polar", ["perfusion_polar.tables.direction=cw"])
    nan = PerfusionSettings.of(plugin_config("perfusion_polar", ["perfusion_polar.tables.first_sector_deg=.nan"]))
    with pytest.raises(CardioError, match="perfusion_polar.tables.first_sector_deg must be a number of degrees"):
        Orientation.from_settings(nan.tables)
    assert Orientation.from_settings(PerfusionSettings.of(plugin_config("perfusion_polar", [])).tables) == Orientation()


BAD_TABLES = [
    ("missing-cell", lambda t: t.iloc[1:], "holds 431 cells"),
    ("cell-twice", lambda t: pd.concat([t, t.iloc[:1]]), "gives channel rest ring 1 sector 1 more than once"),
    ("other-channel", lambda t: t.assign(channel=t["channel"].replace("mfr", "flow")), "names channel(s) ['flow']"),
    ("value-text", lambda t: t.assign(value=t["value"].astype(str).where(t.index != 5, "n/a")),
     "column 'value', line 7: must be a finite number, found 'n/a'"),
    ("ring-fraction", lambda t: t.assign(ring=t["ring"].astype(float).where(t.index != 3, 1.5)),
     "column 'ring', line 5: must be a whole number"),
    ("no-sector-column", lambda t: t.drop(columns=["sector"]), "lacks column(s) ['sector']"),
    ("one-ring", lambda t: t[t["ring"] == 1], "has 1 ring(s)"),
]


@pytest.mark.parametrize("case_id,damage,names", BAD_TABLES, ids=[c[0] for c in BAD_TABLES])
def test_a_bad_table_is_a_problem_of_its_line(tmp_path, case_id, damage, names):
    """Each damaged table is one listed problem naming labels.csv's line, the column `map` and the file."""
    table, maps = synthetic.synthesize(12, 16, seed=2)
    root = synthetic.write_cohort(table, maps, tmp_path / "c", tables=(6, 24))
    path = root / "maps" / "PF0003.csv"
    damage(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(CohortProblems) as e:
        cohort.read_cohort(root, size=16)
    (problem,) = e.value.problems
    assert (problem.line, problem.column) == (4, "map") and problem.message.startswith("PF0003.csv "), problem
    assert names in problem.message, problem.message
