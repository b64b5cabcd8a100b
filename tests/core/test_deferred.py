"""Held device values and their batch conversion, on real CPU tensors (the internal switch on)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest

from aim_core import deferred

torch = pytest.importorskip("torch")
from torch.overrides import TorchFunctionMode  # noqa: E402


@pytest.fixture
def switch_on():
    """Defer CPU tensors as if they lived on an accelerator; leave nothing held after."""
    deferred.defer_cpu_tensors(True)
    yield
    deferred.resolve_held()
    deferred.defer_cpu_tensors(False)


class CountCalls(TorchFunctionMode):
    """Records the name of each torch function called while active (calls pass through)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


class DeadDevice(torch.Tensor):
    """A tensor whose every read fails, as one on a device whose context is gone does."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("stack", "item", "to", "tolist"):
            raise RuntimeError("CUDA error: context is destroyed")
        return super().__torch_function__(func, types, args, kwargs or {})


class NoStack(torch.Tensor):
    """A tensor that reads one by one but cannot be stacked (a batch that fails)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "stack":
            raise RuntimeError("stack is not supported for this tensor")
        return super().__torch_function__(func, types, args, kwargs or {})


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32,
          torch.int64, torch.uint8, torch.bool]
SHAPES = [(), (1,), (1, 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_values_are_exactly_item_for_every_dtype_and_shape(switch_on, dtype, shape):
    raw = [1 / 3, -2.5, 1e4 + 0.1, 7.0, 0.0, 255.0]
    tensors = [torch.tensor(x).to(dtype).reshape(shape) for x in raw]
    held = [deferred.capture(t) for t in tensors]
    assert all(isinstance(h, deferred.DeviceValue) and h.value is None for h in held)
    deferred.resolve_held()
    assert [h.value for h in held] == [float(t.item()) for t in tensors]
    assert all(type(h.value) is float and h.tensor is None for h in held)
    assert deferred.held_count() == 0


def test_large_ints_widen_as_float_of_item(switch_on):
    big = torch.tensor([2**62 + 1], dtype=torch.int64)
    held = deferred.capture(big)
    deferred.resolve_held()
    assert held.value == float(2**62 + 1)


def test_nan_and_inf_are_kept(switch_on):
    held = [deferred.capture(torch.tensor(x)) for x in (math.nan, math.inf, -math.inf)]
    deferred.resolve_held()
    assert math.isnan(held[0].value) and held[1].value == math.inf and held[2].value == -math.inf


def test_in_place_change_after_capture_does_not_change_the_value(switch_on):
    loss = torch.tensor([0.25])
    held = deferred.capture(loss)
    loss.add_(1.0)
    loss.mul_(10)
    deferred.resolve_held()
    assert held.value == 0.25 and loss.item() == 12.5


def test_the_copy_is_detached_and_keeps_no_graph(switch_on):
    weight = torch.tensor(3.0, requires_grad=True)
    loss = weight * 2
    held = deferred.capture(loss)
    assert not held.tensor.requires_grad and held.tensor.grad_fn is None
    loss.backward()
    deferred.resolve_held()
    assert held.value == 6.0


def test_capture_leaves_everything_else_to_track(switch_on):
    for value in (1.0, 3, True, np.float32(2.0), np.array([1.0]), "x", None,
                  torch.zeros(2), torch.zeros(1, 2), torch.tensor(1 + 2j)):
        assert deferred.capture(value) is None
    assert deferred.held_count() == 0


def test_cpu_tensors_are_not_deferred_without_the_switch():
    assert deferred.capture(torch.tensor(1.0)) is None
    assert deferred.capture(torch.tensor([1.0], requires_grad=True)) is None
    assert deferred.held_count() == 0


def test_one_stack_and_one_transfer_per_device_and_dtype(switch_on):
    values = {torch.float32: [0.5, 1.5, 2.5], torch.float16: [0.25, 4.0], torch.int64: [3, 9]}
    tensors = [torch.tensor(x, dtype=dtype) for dtype, xs in values.items() for x in xs]
    held = [deferred.capture(t) for t in tensors[::2] + tensors[1::2]]  # dtypes interleaved
    with CountCalls() as calls:
        deferred.resolve_held()
    assert calls.names.count("stack") == 3  # one per (device, dtype), whatever the count
    assert calls.names.count("item") == 0
    assert [h.value for h in held] == [float(t.item()) for t in tensors[::2] + tensors[1::2]]


def test_a_failing_batch_falls_back_to_reading_value_by_value(switch_on):
    good = [deferred.capture(torch.tensor(float(i))) for i in range(3)]
    odd = [deferred.capture(torch.tensor([float(i) + 0.5]).as_subclass(NoStack))
           for i in range(3)]
    deferred.resolve_held()
    assert [h.value for h in good] == [0.0, 1.0, 2.0]
    assert [h.value for h in odd] == [0.5, 1.5, 2.5]
    assert deferred.held_count() == 0


def test_unreadable_values_are_dropped_and_counted_the_rest_kept(switch_on):
    lost_before = deferred.lost_count()
    points = [(0, deferred.capture(torch.tensor(1.0)), math.nan, 10.0),
              (1, deferred.capture(torch.tensor(2.0).as_subclass(DeadDevice)), math.nan, 11.0),
              (2, 3.0, 1.0, 12.0),
              (3, deferred.capture(torch.tensor([4.0], dtype=torch.float64)), 2.0, 13.0)]
    with pytest.warns(RuntimeWarning, match="could not read a tracked device tensor"):
        out = deferred.host_points(points)
    assert [(p[0], p[1], p[3]) for p in out] == [(0, 1.0, 10.0), (2, 3.0, 12.0), (3, 4.0, 13.0)]
    assert deferred.lost_count() == lost_before + 1
    assert deferred.host_points(points) == out  # reading again converts nothing twice


def test_host_points_converts_held_values_it_meets_and_keeps_the_rest(switch_on):
    held = deferred.capture(torch.tensor(0.75))
    other = deferred.capture(torch.tensor(0.5))  # held too, converted in the same batch
    out = deferred.host_points([(5, held, 1.0, 2.0), (6, 1.25, math.nan, 3.0)])
    assert out[0] == (5, 0.75, 1.0, 2.0) and out[1][:2] == (6, 1.25)
    assert other.tensor is None and other.value == 0.5 and deferred.held_count() == 0


def test_the_hold_limit_wakes_and_the_inline_limit_converts(switch_on, monkeypatch):
    monkeypatch.setattr(deferred, "HOLD_LIMIT", 4)
    monkeypatch.setattr(deferred, "INLINE_LIMIT", 10)
    monkeypatch.setattr(deferred, "_wakers", [])  # no flusher thread converts meanwhile
    woken = []
    deferred.on_backlog(lambda: woken.append(deferred.held_count()))
    held = [deferred.capture(torch.tensor(float(i))) for i in range(9)]
    assert woken == [4, 5, 6, 7, 8, 9] and deferred.held_count() == 9
    held.append(deferred.capture(torch.tensor(9.0)))  # the flusher never came: convert
    assert deferred.held_count() == 0
    assert [h.value for h in held] == [float(i) for i in range(10)]


def test_capturing_while_another_thread_converts_loses_nothing(switch_on):
    held, stop = [], threading.Event()

    def convert_in_a_loop():
        while not stop.is_set():
            deferred.resolve_held()

    converter = threading.Thread(target=convert_in_a_loop)
    converter.start()
    try:
        for i in range(3000):
            held.append(deferred.capture(torch.tensor(float(i))))
    finally:
        stop.set()
        converter.join()
    deferred.resolve_held()
    assert [h.value for h in held] == [float(i) for i in range(3000)]
    assert deferred.held_count() == 0


def test_import_aim_core_does_not_import_torch():
    code = ("import sys, aim_core, aim_core.deferred, aim_core.run; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert aim_core.deferred.capture(1.0) is None")
    subprocess.run([sys.executable, "-c", code], check=True)
