"""cardio_cluster: where a run's tasks run when not inline (executors: a process per task on this machine, SLURM job
arrays, through submitit) and `cardio sweep` (sweep: a grid x seeds as whole runs; permutation: a run against runs
on permuted labels). The kernel finds it through the entry-point group `cardio.services` (cli)."""
