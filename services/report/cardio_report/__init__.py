"""cardio's report service (distribution cardio-crt-report): what a run shows its readers. The kernel writes a run's
product (predictions.csv, metrics.json, report.json: cardio.study.outputs); this service adds the core's own sections
(summary, cohort, performance, subgroups: registered into every study), renders report.md and report.html with the
TRIPOD+AI checklist (outputs, tripod), and offers every plugin the one figure helper (figures) and class-activation
maps (explain, the `explain` extra). The kernel finds it through `cardio.services` (service.py)."""
