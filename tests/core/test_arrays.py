"""``metric.values``: a numpy array everywhere numpy is used, and Aim's ``ArrayView`` reads."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from aim_core import Repo, Run


@pytest.fixture
def metric(repo_path):
    """A stored metric whose steps were tracked out of order."""
    with Run(repo=repo_path) as run:
        for step in (0, 1, 2, 5, 3):
            run.track(step * 1.5, name="loss", step=step, epoch=step // 2,
                      context={"subset": "train"})
    return Repo(repo_path).get_run(run.hash).get_metric("loss", {"subset": "train"})


def test_aim_reads_give_steps_and_values_in_step_order(metric):
    steps, values = metric.values.sparse_numpy()
    assert steps.tolist() == [0, 1, 2, 3, 5] and values.tolist() == [0.0, 1.5, 3.0, 4.5, 7.5]
    assert metric.values.sparse_list() == ([0, 1, 2, 3, 5], [0.0, 1.5, 3.0, 4.5, 7.5])
    assert metric.values.values_list() == [0.0, 1.5, 3.0, 4.5, 7.5]
    assert metric.values.values_numpy().tolist() == [0.0, 1.5, 3.0, 4.5, 7.5]
    assert metric.values.indices_list() == [0, 1, 2, 3, 5]
    assert metric.values.indices_numpy().dtype == np.int64
    assert list(metric.values.indices()) == [0, 1, 2, 3, 5]
    assert metric.values.first() == (0, 0.0) and metric.values.last() == (5, 7.5)
    assert (metric.values.first_idx(), metric.values.last_value()) == (0, 7.5)
    assert metric.epochs.values_numpy().tolist() == [0.0, 0.0, 1.0, 1.0, 2.0]
    times = metric.timestamps.values_numpy()
    assert times.dtype == np.float64 and len(times) == 5 and (times > 1e9).all()
    assert type(metric.values.values_numpy()) is np.ndarray
    assert len(metric) == 5


def test_values_behave_as_a_float64_array(metric):
    values = metric.values
    assert isinstance(values, np.ndarray) and values.dtype == np.float64
    assert values[-1] == 7.5 and values[:2].tolist() == [0.0, 1.5]
    assert float(values.max()) == 7.5 and values.mean() == pytest.approx(3.3)
    assert (values * 2).tolist() == [0.0, 3.0, 6.0, 9.0, 15.0]
    assert bool((values == np.array([0, 1.5, 3, 4.5, 7.5])).all())
    np.testing.assert_allclose(values, [0, 1.5, 3, 4.5, 7.5])
    for derived in (values[1:], values + 1, np.sqrt(values), values == 3.0):
        assert type(derived) is np.ndarray  # derived arrays are plain numpy arrays
    assert json.dumps(values.tolist()) == "[0.0, 1.5, 3.0, 4.5, 7.5]"
    assert type(pickle.loads(pickle.dumps(values))) is np.ndarray
    steps, (vals, epochs, times) = metric.data.numpy()
    assert steps.tolist() == [0, 1, 2, 3, 5] and type(vals) is np.ndarray


def test_pandas_takes_values_as_plain_columns(metric):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"step": metric.steps, "value": metric.values})
    assert frame["value"].dtype == np.float64 and frame["value"].tolist()[-1] == 7.5


def test_a_derived_copy_says_it_lost_its_steps(metric):
    with pytest.raises(ValueError, match="lost its steps"):
        metric.values.copy().sparse_numpy()


def test_a_live_run_reads_the_same_way(repo_path):
    run = Run(repo=repo_path)
    for step in range(3):
        run.track(float(step), name="x", step=step * 10)
    assert run.get_metric("x").values.sparse_list() == ([0, 10, 20], [0.0, 1.0, 2.0])
    run.close()
