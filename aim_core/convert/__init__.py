"""Importers: runs from TensorBoard event files, MLflow stores and Aim 3 repos.

Each source has its own module (``tensorboard``, ``mlflow``, ``aim``), imported on demand
because each needs its source's package; ``report`` counts what a conversion did and
``writing`` writes a converted run whole or not at all.
"""
