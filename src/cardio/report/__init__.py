"""What a run writes for readers: the files (outputs), the core's own sections (summary, performance, subgroups,
TRIPOD+AI), and the services every plugin's section uses (the one figure helper, class-activation maps)."""
