"""Framework adapters: each module imports its own framework and aim_core, nothing else."""
