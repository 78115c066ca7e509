"""cardio_deploy: a trained model put to use on new patients. `cardio predict` applies a run's model bundle (the
kernel writes, signs and checks it) to a new cohort through the run's own stages, with an external validation where
the cohort is labelled and, for a run that kept its fold models, their mean compared with the final model. A service
of its own: training and reporting a study need none of it."""
