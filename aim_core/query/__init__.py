"""AimQL: validate a query once, evaluate it on catalog entries, return runs or sequences."""

from ..params import flatten
from .results import (
    POINT_COLUMNS,
    MetricCollection,
    QueryReportMode,
    RunCollection,
    RunMatch,
    RunMetrics,
    context_text,
    metric_frame,
    query_metrics,
    query_runs,
)
from .validate import compile_query

__all__ = ["POINT_COLUMNS", "MetricCollection", "QueryReportMode", "RunCollection", "RunMatch",
           "RunMetrics", "compile_query", "context_text", "flatten", "metric_frame",
           "query_metrics", "query_runs"]
