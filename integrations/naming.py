"""Map a framework's flat metric keys to aim-core `(name, context)` pairs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Context = dict[str, Any]
AimAffixes = Mapping[str, Mapping[str, str]]  # Aim's {ctx_key: {ctx_value: affix}} form
SUBSET_PREFIXES = {"train": "train_", "val": "val_", "test": "test_"}  # Aim's defaults


def affixes(spec: AimAffixes | None, default: AimAffixes | None = None) -> dict[str, Context]:
    """Turn Aim's ``{ctx_key: {ctx_value: affix}}`` into ``{affix: {ctx_key: ctx_value}}``."""
    spec = (default or {}) if spec is None else spec
    return {affix: {key: value} for key, values in spec.items() for value, affix in values.items()}


def subset_prefixes(spec: AimAffixes | None, subsets: Mapping[str, str | None]) -> AimAffixes:
    """Aim's rule: ``train/val/test_metric_prefix`` (``subsets``) set the subset prefixes, a
    falsy one dropping its subset, unless ``context_prefixes`` (``spec``) is given instead."""
    if spec is not None:
        if dict(subsets) != SUBSET_PREFIXES:
            raise ValueError("train_metric_prefix, val_metric_prefix and test_metric_prefix "
                             "cannot be combined with context_prefixes; put the prefixes "
                             "into context_prefixes instead.")
        return spec
    kept = {subset: prefix for subset, prefix in subsets.items() if prefix}
    return {"subset": kept} if kept else {}


class MetricNaming:
    """Split keys such as ``val_loss_epoch`` into ``("loss", {"subset": "val", ...})``.

    The longest matching prefix and suffix win; ``patterns`` are regexes matched at the
    end of the key whose first group becomes the value of a context key (an int when it
    is all digits), e.g. ``{r"/dataloader_idx_(\\d+)$": "dataloader"}``. Results are
    cached per key because frameworks log the same keys every step.
    """

    def __init__(
        self,
        prefixes: Mapping[str, Mapping[str, Any]] | None = None,
        suffixes: Mapping[str, Mapping[str, Any]] | None = None,
        patterns: Mapping[str, str] | None = None,
        default: Mapping[str, Any] | None = None,
    ) -> None:
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.suffixes = sorted((suffixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.patterns = [(re.compile(p), key) for p, key in (patterns or {}).items()]
        self.default = dict(default or {})
        self._cache: dict[str, tuple[str, Context]] = {}

    def split(self, key: str) -> tuple[str, Context]:
        """Return the metric name and a fresh context dict for a raw key."""
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._split(key)
        return hit[0], dict(hit[1])

    def _split(self, key: str) -> tuple[str, Context]:
        name, context = key, {}
        for regex, ctx_key in self.patterns:
            match = regex.search(name)
            if match:
                value = match.group(1)
                context[ctx_key] = int(value) if value.isdigit() else value
                name = name[: match.start()]
        matched_prefix = False
        for prefix, ctx in self.prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                name, matched_prefix = name[len(prefix) :], True
                context.update(ctx)
                break
        for suffix, ctx in self.suffixes:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                context.update(ctx)
                break
        if not matched_prefix:
            context = {**self.default, **context}
        return name, context
