"""cardio_testing: the plugin contract suite (contract), the suite over every installed modality plugin
(every_plugin, what `pytest --cardio-contract` collects; pytest_plugin adds the option) and the helpers cardio's tests
use (harness). Nothing is imported here: pytest loads pytest_plugin in every session of the venv, and that must not
load the kernel."""
