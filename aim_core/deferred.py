"""Device scalars tracked without waiting for the device, turned into host floats in batches.

``track()`` of a 1-element tensor on an accelerator must not call ``.item()``: that makes the
host wait until the device has run every kernel queued so far, which drains the queue of a
training loop. Instead :func:`capture` keeps a detached device-side copy (one queued copy
kernel: a later in-place change of the caller's tensor cannot alter it) in a
:class:`DeviceValue`, and :func:`resolve_held` later turns every held value into a float with
one transfer per (device, dtype): stack them on the device, copy once, wait once, ``tolist()``.
That runs on the flusher's thread, or wherever a value is needed first (a live read, close,
exit). Torch is never imported here: tensors are recognised by type once torch is loaded.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any

HOLD_LIMIT = 4096  # held device values that wake the flusher
INLINE_LIMIT = 8 * HOLD_LIMIT  # held device values past which capture() converts them itself

_tensor_types: dict[type, bool] = {}
_held: list[DeviceValue] = []  # captured and not yet converted, oldest first
_lock = threading.RLock()  # one converter at a time; re-entered by a signal handler's close
_wakers: list[Callable[[], None]] = []
_state = {"cpu": os.environ.get("AIM_CORE_DEFER_CPU_TENSORS") == "1", "captured": 0,
          "lost": 0, "exit_hook": False, "warned": False}


class DeviceValue:
    """A tracked 1-element device tensor: its detached copy until converted, then its float.

    ``value`` is None until converted, and stays None when the device could not be read.
    """

    __slots__ = ("tensor", "value")

    def __init__(self, tensor: Any) -> None:
        self.tensor: Any = tensor
        self.value: float | None = None

    def __repr__(self) -> str:
        state = "held" if self.tensor is not None else repr(self.value)
        return f"<DeviceValue {state}>"


def defer_cpu_tensors(on: bool) -> None:
    """Internal switch (tests): defer CPU tensors too; env ``AIM_CORE_DEFER_CPU_TENSORS=1``."""
    _state["cpu"] = bool(on)


def capture(value: Any) -> DeviceValue | None:
    """A held copy of a 1-element accelerator tensor, or None for anything else (no wait)."""
    is_tensor = _tensor_types.get(type(value))
    if is_tensor is None:
        is_tensor = _learn(type(value))
    if not is_tensor or (value.is_cpu and not _state["cpu"]):
        return None
    if value.numel() != 1 or value.is_meta or value.dtype.is_complex:
        return None  # track() reports these as it does for any tensor
    held = DeviceValue((value.detach() if value.requires_grad else value).clone())
    _held.append(held)
    _state["captured"] += 1
    if not _state["exit_hook"]:
        _install_exit_hook()
    if len(_held) >= HOLD_LIMIT:
        _backlog()
    return held


def _learn(kind: type) -> bool:
    torch = sys.modules.get("torch")  # a torch tensor can only exist once torch is imported
    is_tensor = torch is not None and issubclass(kind, torch.Tensor)
    _tensor_types[kind] = is_tensor
    return is_tensor


def _backlog() -> None:
    if len(_held) >= INLINE_LIMIT:  # the flusher is far behind: bound the device memory held
        resolve_held()
        return
    for wake in list(_wakers):
        wake()


def on_backlog(wake: Callable[[], None]) -> None:
    """Call ``wake`` whenever ``HOLD_LIMIT`` device values wait (the flusher registers here)."""
    if wake not in _wakers:
        _wakers.append(wake)


def held_count() -> int:
    """How many captured device values wait to be converted."""
    return len(_held)


def ever_captured() -> bool:
    """Whether this process has captured any device value (else nothing needs converting)."""
    return _state["captured"] > 0


def lost_count() -> int:
    """How many captured values could not be read from their device."""
    return _state["lost"]


def resolve_held() -> None:
    """Convert every held device value now, with one transfer per (device, dtype)."""
    with _lock:
        batch = [held for held in _held[: len(_held)] if held.tensor is not None]
        if batch:
            convert(batch)
        done = 0
        for held in _held:  # drop only the converted prefix: capture() appends meanwhile
            if held.tensor is not None:
                break
            done += 1
        del _held[:done]


def convert(batch: Iterable[DeviceValue]) -> None:
    """Set ``value`` of each given held value: one stack, copy and wait per (device, dtype)."""
    groups: dict[tuple[Any, Any], list[DeviceValue]] = {}
    for held in batch:
        tensor = held.tensor
        if tensor is not None:
            groups.setdefault((tensor.device, tensor.dtype), []).append(held)
    for (device, _), group in groups.items():
        try:
            values = _transfer(device, [held.tensor for held in group])
        except Exception:  # e.g. a dtype the stack cannot take: read what can be read
            values = [_read_one(held.tensor) for held in group]
        for held, value in zip(group, values, strict=True):
            held.value = value
            held.tensor = None
            if value is None:
                _report_lost()


def _transfer(device: Any, tensors: list[Any]) -> list[float]:
    torch = sys.modules["torch"]
    if device.type != "cpu":
        _synchronize(torch, device)
    stacked = torch.stack([tensor.reshape(()) for tensor in tensors])
    host = stacked.to("cpu")  # one copy, one wait (of the flusher's thread, not the loop's)
    return host.to(torch.float64).tolist()


def _synchronize(torch: Any, device: Any) -> None:
    # The copies may sit on the caller's stream, which the stack's stream need not follow:
    # wait (here, off the training thread) until everything queued so far has run.
    accelerator = getattr(torch, "accelerator", None)
    try:
        if accelerator is not None and hasattr(accelerator, "synchronize"):
            accelerator.synchronize(device)
        else:
            getattr(torch, device.type).synchronize(device)
    except Exception:  # a backend without it orders the copy by itself; a dead one fails next
        pass


def _read_one(tensor: Any) -> float | None:
    try:
        return float(tensor.item())
    except Exception:  # the device is gone (context destroyed, sticky error): nothing to read
        return None


def host_points(points: list[tuple]) -> list[tuple]:
    """``points`` with each held value as its float (converting now); unreadable ones dropped."""
    out = []
    for point in points:
        value = point[1]
        if type(value) is DeviceValue:
            if value.tensor is not None:
                resolve_held()
                if value.tensor is not None:  # not in the held list (a fork or a race)
                    convert([value])
            value = value.value
            if value is None:
                continue
            point = (point[0], value, *point[2:])
        out.append(point)
    return out


def _report_lost() -> None:
    _state["lost"] += 1
    if not _state["warned"]:
        _state["warned"] = True
        warnings.warn("aim-core could not read a tracked device tensor (its device context is "
                      "gone); such points are left out.", RuntimeWarning, stacklevel=2)


def _install_exit_hook() -> None:
    # Registered after torch has made its tensors, so it runs before torch's own exit hooks
    # (atexit runs last-registered first) and before runs are closed.
    _state["exit_hook"] = True
    atexit.register(resolve_held)


def _forget_in_child() -> None:
    del _held[:]  # a forked child cannot use its parent's device context


os.register_at_fork(after_in_child=_forget_in_child)
