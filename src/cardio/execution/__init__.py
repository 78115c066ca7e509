"""Where a study runs: `cardio run`'s dispatch (run), the executors that run a run's tasks in processes or as SLURM
jobs through submitit, sweeps of whole runs, and the permutation test of a whole cross-validation."""
