"""What a run records about its process: system metrics, terminal logs and system params.

``sampler`` samples CPU, memory, disk and GPUs for every open run on one thread; ``terminal``
tees stdout/stderr and ``log_lines`` turns what was written into numbered lines;
``environment`` gathers the ``__system_params`` (packages, env, git, command line).
Nothing here is imported by ``import aim_core``; psutil and pynvml load on first use.
"""
