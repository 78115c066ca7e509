"""The bodies of the `cardio` commands that need the heavy parts of cardio (torch, pandas, SciPy, matplotlib), one
module per kind of work. cardio.cli declares every command and imports its body's module only when that command runs,
as pip does with its commands, so that `cardio --help` and the light commands start in a fraction of a second."""
