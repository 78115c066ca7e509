"""He et al.'s in-sample replication, the add-on `spect_polar_in_sample` (its own entry point, so the paper's second
method is a plugin of its own, not a side effect of spect_polar's report).

The paper fits the autoencoder on every scan and screens and fits the logistic models on the labelled scans of the
same patients, then reports their AUCs, odds ratios and likelihood-ratio tests. Those numbers are in-sample: every
table says so, and the optimism table sets each in-sample AUC beside the out-of-fold AUC the core estimated for the
same model. The add-on runs in a spect_polar run whose `spect_polar.in_sample_analysis` is true (profile `paper`);
in any other run it adds nothing. The module holds the add-on's hooks and imports the analysis only when it runs.
"""
from __future__ import annotations

from dataclasses import replace

from cardio import CoreSettings, Features, PluginInfo, RunContext, Section, hookimpl
from cardio_spect_polar.settings import SpectSettings


@hookimpl
def cardio_plugin_info() -> PluginInfo:
    return PluginInfo(name="spect_polar_in_sample", modality=None,
                      description="He et al.'s in-sample replication beside a spect_polar run (AE refitted on every "
                                  "scan; labelled in-sample and explanatory; spect_polar.in_sample_analysis: true)")


@hookimpl
def cardio_evaluate(features: Features, config: dict, ctx: RunContext, estimates: list[dict]) -> Section | None:
    if SpectSettings.section not in config or not SpectSettings.of(config).in_sample_analysis:
        return None  # another modality's run, or spect_polar without the replication
    return in_sample_section(features, config, ctx, estimates)


def in_sample_section(features: Features, config: dict, ctx: RunContext, estimates: list[dict]) -> Section:
    """The paper's analysis on every scan, and the optimism of its AUCs against the core's out-of-fold AUCs."""
    # imported here: this module is an entry point, and listing plugins must not load torch or scikit-learn
    from cardio_spect_polar.analysis import optimism_table, paper_analysis
    from cardio_spect_polar.autoencoder import fit_autoencoder
    from cardio_spect_polar.pipeline import with_ae_features

    s, core = SpectSettings.of(config), CoreSettings.of(config)
    labelled = features.table[features.label].notna().to_numpy()
    ae = fit_autoencoder(features.x, features.table["patient_id"], s.autoencoder, ctx, name="ae-all",
                         train=core.train.as_dict())
    df, cols = with_ae_features(features.table, ae.transform(features.x, ctx))
    res = paper_analysis(df[labelled].reset_index(drop=True), features.label, list(s.analysis.clinical),
                         list(s.analysis.categorical), cols, s.analysis, ctx.save_figure,
                         level=core.stats.level)
    optimism = optimism_table(res.aucs, estimates, features.label)
    if not len(optimism):
        return res.section
    text = (res.section.text + "\n\n**Optimism.** The in-sample AUC is what the paper's design reports; 'optimism' = "
            "in-sample minus out-of-fold AUC (repeat 0), the out-of-fold AUC being the one the performance table "
            "leads with (with K folds the cross-validated AUC, the mean of the per-fold AUCs; its interval is printed "
            "there).")
    return replace(res.section, text=text,
                   tables={**res.section.tables, "Optimism: in-sample minus out-of-fold AUC": optimism})
