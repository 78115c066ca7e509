"""The TRIPOD+AI checklist of a run: each item of the statement (Collins et al., BMJ 2024;385:e078378; 27 items,
with sub-items), where the report answers it, and what the authors must still write.

The item texts are short paraphrases, not the statement's wording: read the statement and its explanation and
elaboration paper before submitting. A run can answer what it did (data use, validation, measures, numbers); it
cannot answer why, where, when or by whom (setting, ethics, funding, interpretation).
"""
from __future__ import annotations

import html
from dataclasses import dataclass

from cardio_report.markup import HEADINGS, split_words, table_text

FILE = "tripod_ai.md"
CITATION = ("Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for reporting clinical "
            "prediction models that use regression or machine learning methods. BMJ 2024;385:e078378.")
# The statuses, as the checklist prints them
ANSWERED, PARTLY, YOURS, NOT_APPLICABLE = "answered", "partly", "you write", "not applicable"


@dataclass(frozen=True)
class Item:
    number: str
    topic: str
    text: str


# Section of the statement, then its items: (number, topic, what to report).
ITEMS = tuple(Item(*row) for row in (
    ("1", "Title", "Say that the study develops or evaluates a prediction model, for whom, and what it predicts."),
    ("2", "Abstract", "A structured abstract (TRIPOD+AI for Abstracts)."),
    ("3a", "Background", "The clinical context (diagnostic or prognostic), why a model is needed, and existing "
                         "models."),
    ("3b", "Background", "The target population, where in the care pathway the model is meant to be used, and by "
                         "whom."),
    ("3c", "Background", "Known health inequalities between sociodemographic groups."),
    ("4", "Objectives", "The objectives, and whether the study develops a model, evaluates one, or both."),
    ("5a", "Data", "The data sources for development and for evaluation, why they were chosen, and how "
                   "representative they are."),
    ("5b", "Data", "When the data were collected: start and end of accrual and of follow-up."),
    ("6a", "Participants", "The setting (primary or secondary care, general population), with the number and "
                           "location of centres."),
    ("6b", "Participants", "Eligibility criteria."),
    ("6c", "Participants", "Treatments received, and how they were handled."),
    ("7", "Data preparation", "Pre-processing and quality checks, and whether they were alike across groups."),
    ("8a", "Outcome", "The outcome and its time horizon: how and when it was assessed, why it was chosen, and "
                      "whether it was assessed alike across groups."),
    ("8b", "Outcome", "Who assessed the outcome, where that needs judgement (qualifications, demographics)."),
    ("8c", "Outcome", "Whether outcome assessment was blinded."),
    ("9a", "Predictors", "How the candidate predictors were chosen, and any selection before modelling."),
    ("9b", "Predictors", "Each predictor: its definition, and how and when it was measured (blinded or not)."),
    ("9c", "Predictors", "Who assessed predictors that need judgement (qualifications, demographics)."),
    ("10", "Sample size", "How the sample size was reached, and why it suffices (any calculation)."),
    ("11", "Missing data", "How missing data were handled, and why any data were left out."),
    ("12a", "Analysis", "How the data were used: partitions for development and evaluation."),
    ("12b", "Analysis", "How predictors were handled: transformations, rescaling, standardisation."),
    ("12c", "Analysis", "The model type and why, every step of building it, any tuning, and the internal "
                        "validation."),
    ("12d", "Analysis", "Whether and how heterogeneity across clusters (centres, countries) was examined."),
    ("12e", "Analysis", "Every measure and plot of performance (discrimination, calibration, clinical utility) "
                        "and of model comparison, with the reason for each."),
    ("12f", "Analysis", "Any model updating (recalibration) that the evaluation led to."),
    ("12g", "Analysis", "For evaluation: how the predictions were computed (formula, code, object, API)."),
    ("13", "Class imbalance", "Any method for class imbalance, why, and any recalibration after it."),
    ("14", "Fairness", "Any approach to model fairness, and why."),
    ("15", "Model output", "What the model outputs (risks, classes), and how any classification threshold was "
                           "chosen."),
    ("16", "Training versus evaluation", "Differences between development and evaluation data in setting, "
                                         "eligibility, outcome and predictors."),
    ("17", "Ethical approval", "The ethics committee, and consent or its waiver."),
    ("18a", "Funding", "Sources of funding and the funders' role."),
    ("18b", "Conflicts of interest", "Conflicts of interest of every author."),
    ("18c", "Protocol", "Where the protocol can be read, or that there was none."),
    ("18d", "Registration", "The study's registration (registry, number), or that it was not registered."),
    ("18e", "Data sharing", "Whether and how the study data are available."),
    ("18f", "Code sharing", "Whether and how the analysis code is available."),
    ("19", "Patient and public involvement", "Any patient and public involvement, or none."),
    ("20a", "Participants", "The flow of participants: numbers with and without the outcome, follow-up (a diagram "
                            "helps)."),
    ("20b", "Participants", "Participant characteristics overall and per source: predictors, demographics, "
                            "outcome events, missing data (a table helps); differences across groups."),
    ("20c", "Participants", "For evaluation: how the predictors and outcome are distributed compared with the "
                            "development data."),
    ("21", "Model development", "The number of participants and outcome events in each analysis."),
    ("22", "Model specification", "The full model (formula, code, object or API), so that others can use and "
                                  "evaluate it, with any restriction on access."),
    ("23a", "Model performance", "Performance with confidence intervals, also in key subgroups; plots help."),
    ("23b", "Model performance", "Heterogeneity of performance across clusters, where examined."),
    ("24", "Model updating", "The results of any updating: the updated model and its performance."),
    ("25", "Interpretation", "An overall interpretation, fairness included, against the objectives and earlier "
                             "studies."),
    ("26", "Limitations", "Limitations (sample, size, overfitting, missing data) and their effect on bias, "
                          "uncertainty and generalisability."),
    ("27a", "Usability", "How poor-quality or missing inputs should be assessed and handled when the model is "
                         "used."),
    ("27b", "Usability", "Whether users must handle the inputs or the model, and the expertise they need."),
    ("27c", "Usability", "Next steps for research, with a view to applicability and generalisability."),
))


@dataclass(frozen=True)
class Row:
    item: Item
    status: str
    note: str  # what the run gives, and what is left to write
    part: str | None = None  # the report part (anchor) that answers it


@dataclass(frozen=True)
class _Facts:
    """What the checklist needs to know of a run, from report.json's meta and the run's config."""

    plugin: str
    versions: str
    external: bool
    folds: int
    cv_method: str
    synthetic: str  # "" (a user's cohort), "plugin" (the plugin's own) or "synthetic-crt"
    subgroups: tuple[str, ...]
    sites: bool
    final_model: bool
    n_patients: object
    n_records: object


def _facts(doc: dict, config: dict) -> _Facts:
    meta = doc["meta"]
    cv: dict = config["cv"] if isinstance(config.get("cv"), dict) else {}
    cohort: dict = config["cohort"] if isinstance(config.get("cohort"), dict) else {}
    subgroups = tuple(str(c) for c in (config.get("subgroups") or []))
    external = meta.get("kind") in ("external validation", "validation on records the model was trained on") or \
        [f.get("name") for f in meta.get("folds", []) if isinstance(f, dict)] == ["external"]
    return _Facts(plugin=str(meta["plugin"]),
                  versions=f"cardio {meta['cardio_version']}, plugin {meta['plugin']} {meta['plugin_version']}",
                  external=external, folds=len(meta.get("folds") or []), cv_method=str(cv.get("method", "?")),
                  synthetic=_synthetic(meta, cohort, external), subgroups=subgroups,
                  sites=cv.get("method") == "site" or any("site" in c.lower() or "centre" in c.lower()
                                                          or "center" in c.lower() for c in subgroups),
                  final_model=bool(meta.get("final_model")) or external,
                  n_patients=meta.get("n_patients"), n_records=meta.get("n_records"))


def _synthetic(meta: dict, cohort: dict, external: bool) -> str:
    """Who made the cohort, from what the run recorded of it (a run written before it did: no cohort.dir, the
    plugin's own synthetic cohort)."""
    if "synthetic" not in meta:
        return "plugin" if not cohort.get("dir") and not external else ""
    return ("synthetic-crt" if meta.get("truth") else "plugin") if meta["synthetic"] else ""


def _validation(f: _Facts) -> str:
    if f.external:
        return "the exported model scored every record of this cohort, none of which was used to fit it"
    return f"{split_words(f.folds)} by patient (cv.method={f.cv_method}): every estimate is out-of-fold"


def _answers(f: _Facts) -> dict[str, tuple[str, str, str | None]]:
    """Item number -> (status, note, part) for every item the run answers in whole or in part."""
    grouped = f"every metric per subgroup of {', '.join(f.subgroups)}" if f.subgroups else ""
    design = "external validation" if f.external else "development with internal validation"
    out: dict[str, tuple[str, str, str | None]] = {
        "2": (PARTLY, "The summary gives the design, cohort and headline numbers; write the structured abstract.",
              "summary"),
        "4": (PARTLY, f"The design is stated ({design}); state the study's aims.", "summary"),
        "5a": (PARTLY, "A synthetic cohort made by the plugin, its planted effects stated: not patient data; a study "
                       "states its real source." if f.synthetic == "plugin" else
               "A synthetic cohort written by `cardio synthetic-crt`, its planted effects stated in the cohort part: "
               "not patient data; a study states its real source." if f.synthetic == "synthetic-crt" else
               "The cohort folder is in config.yaml; describe the source (trial, registry, routine care), why these "
               "data, and how representative they are.", "cohort"),
        "6b": (PARTLY, "The cohort part counts who entered each analysis; state the inclusion and exclusion criteria.",
               "cohort"),
        "7": (PARTLY, f"The plugin's ({f.plugin}) pre-processing is described in its sections and config.yaml; say "
                      "whether it worked alike across groups.", "methods"),
        "8a": (PARTLY, "Each task's records and events are counted; define the outcome, its time horizon, and how and "
                       "when it was assessed.", "cohort"),
        "9a": (PARTLY, f"The inputs are the plugin's ({f.plugin}) and config.yaml's; give the rationale and any "
                       "selection before modelling.", "methods"),
        "10": (PARTLY, f"{f.n_patients} patients, {f.n_records} records; events per task and fold are counted. "
                       "Justify the size (e.g. a sample size calculation).", "cohort"),
        "11": (PARTLY, "Records without an outcome are left out of that task's estimates, never imputed (counted in "
                       "the cohort part); say why data are missing and how missing inputs were handled.", "cohort"),
        "12a": (ANSWERED, _validation(f) + ".", "methods"),
        "12b": (PARTLY, "The plugin's resampling and normalisation are in its sections and config.yaml; state them in "
                        "words.", "methods"),
        "12c": (PARTLY, f"The models, their training settings (config.yaml) and the validation ({_validation(f)}) are "
                        "in the report; give why these model types, and any tuning.", "methods"),
        "12e": (ANSWERED, "Discrimination (AUC), calibration (Brier score, slope, intercept, plots), clinical utility "
                          "(decision curves), metrics at the thresholds, and paired comparisons with multiplicity "
                          "adjustment.", "methods"),
        "12f": (ANSWERED, "No updating: the predictions are reported as fitted, not recalibrated.", "methods"),
        "12g": (ANSWERED, "Each record was scored by the exported model bundle (cardio predict)." if f.external else
                "Each record was scored by the model of the fold that held it out.", "methods"),
        "13": (PARTLY, "The class balance of each task is in the cohort part; say whether training weighted or "
                       "resampled the classes.", "cohort"),
        "15": (ANSWERED, "Risks for each task; the thresholds behind the thresholded metrics were chosen on the "
                         f"{'training cohort' if f.external else 'training folds'} (0.5 where a plugin gave none).",
               "calibration"),
        "16": ((PARTLY, "The overlap with the training cohort is checked by id and by content; describe how setting, "
                        "eligibility, outcome and predictors differ.", "summary") if f.external else
               (ANSWERED, "Internal validation: one cohort, split by patient.", "methods")),
        "18f": (PARTLY, f"{f.versions}; config.yaml and run.json (package versions, git commit) pin what ran. Say "
                        "where the code is available.", "methods"),
        "20a": (PARTLY, "Patients and records with and without each outcome are counted; add the flow diagram and "
                        "follow-up.", "cohort"),
        "20b": (PARTLY, "The cohort part gives outcomes by task (and the plugin's Table 1 where it has one); add the "
                        "baseline characteristics, dates and missing inputs.", "cohort"),
        "20c": ((YOURS, "Compare this cohort's predictors and outcome with the development data.", None)
                if f.external else (NOT_APPLICABLE, "Internal validation: one cohort.", None)),
        "21": (ANSWERED, "Patients and events scored on this cohort; the model's training size is in the summary."
               if f.external else "Patients and events scored in each fold and in its other folds (training).",
               "cohort"),
        "22": ((PARTLY, "The final model is exported as a bundle (model/) that cardio predict applies; say where and "
                        "on what terms it is available.", "methods") if f.final_model else
               (YOURS, "No final model was exported in this run (final_model: false).", None)),
        "23a": ((ANSWERED, f"AUC, calibration and thresholded metrics with intervals, overall and {grouped}.",
                 "performance") if f.subgroups else
                (PARTLY, "Overall, with intervals; no subgroups were analysed (list them under subgroups in the "
                         "config).",
                 "performance")),
        "24": (NOT_APPLICABLE, "No model updating was done.", None),
    }
    if f.subgroups:
        out["14"] = (PARTLY, f"The report gives {grouped}; state the approach to fairness and why.", "comparison")
    else:
        out["14"] = (YOURS, "No subgroup analysis in this run: list columns (e.g. sex, age group, site) under "
                            "subgroups in the config to have every metric per group.", None)
    if f.sites:
        out["12d"] = (PARTLY, "Performance per centre is in the comparisons; say how heterogeneity was handled.",
                      "comparison")
        out["23b"] = (ANSWERED, "Performance per centre, with intervals.", "comparison")
    return out


def checklist(doc: dict, config: dict, anchors: dict[str, str]) -> list[Row]:
    """Every item with its status; an answer's part kept only where the report has that part."""
    answers = _answers(_facts(doc, config))
    rows = []
    for item in ITEMS:
        status, note, part = answers.get(item.number, (YOURS, "", None))
        rows.append(Row(item, status, note, anchors.get(part) if part else None))
    return rows


def counts(rows: list[Row]) -> dict[str, int]:
    out = {s: 0 for s in (ANSWERED, PARTLY, YOURS, NOT_APPLICABLE)}
    for r in rows:
        out[r.status] += 1
    return out


def _intro(rows: list[Row]) -> str:
    n = counts(rows)
    return (f"{len(rows)} items and sub-items of the TRIPOD+AI statement ({CITATION}). This run answers "
            f"{n[ANSWERED]}, answers {n[PARTLY]} in part (the rest is yours to write), and leaves {n[YOURS]} to you "
            f"(ethics, funding, setting, interpretation...); {n[NOT_APPLICABLE]} do not apply. The item texts are "
            "paraphrases: check each against the statement.")


def _where(row: Row, heading: dict[str, str]) -> str:
    return heading.get(row.part, row.part) if row.part else ""


def markdown(rows: list[Row], href: str | None = None) -> str:
    """The checklist as Markdown: its introduction and one table row per item; with `href` (e.g. "report.html")
    each part is a link to it."""
    lines = [_intro(rows), "",
             "| item | topic | what to report | status | in the report | what it gives; what is left |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        where = _where(r, HEADINGS)
        if where and href:
            where = f"[{where}]({href}#{r.part})"
        lines.append(f"| {r.item.number} | {r.item.topic} | {r.item.text} | {r.status} | {where} "
                     f"| {table_text(r.note)} |")
    return "\n".join(lines)


def html_table(rows: list[Row]) -> str:
    """The checklist as report.html's Appendix C: its introduction and the table, each part a link."""
    body = []
    for r in rows:
        where = _where(r, HEADINGS)
        link = f'<a href="#{r.part}">{html.escape(where)}</a>' if where else ""
        css = {ANSWERED: "answered", PARTLY: "partly", YOURS: "yours"}.get(r.status, "")
        body.append(f"<tr><td>{r.item.number}</td><td>{r.item.topic}</td><td>{html.escape(r.item.text)}</td>"
                    f'<td class="{css}">{r.status}</td><td>{link}</td><td>{html.escape(r.note)}</td></tr>')
    return (f"<p>{html.escape(_intro(rows))}</p><div class=\"tw\"><table class=\"checklist\"><thead><tr><th>item</th>"
            "<th>topic</th><th>what to report</th><th>status</th><th>in the report</th><th>what it gives; what is left"
            "</th></tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")


def document(doc: dict, rows: list[Row], href: str) -> str:
    """tripod_ai.md: the checklist on its own, its parts linked into the report beside it."""
    plugin = table_text(doc["meta"]["plugin"])
    return f"# TRIPOD+AI checklist: cardio run of {plugin}\n\n" + markdown(rows, href) + "\n"
