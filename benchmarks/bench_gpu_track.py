"""Issue 17: does tracking a CUDA loss every step slow a training loop down?

Trains a 4-layer MLP for 3,000 steps per timed loop, for a small launch-bound model and a
large compute-bound one, four ways in the same process, in rotating order, 3 rounds (medians):

- ``none``: no tracking at all (the baseline);
- ``item``: ``loss.item()`` every step (the host waits for the GPU, as every tracker does);
- ``track``: ``run.track(loss)`` with the CUDA tensor (aim-core keeps a device-side copy and
  converts a batch of them on its flusher thread);
- ``tb``: TensorBoard's ``SummaryWriter.add_scalar("loss", loss, step)``.

Each timed loop ends with ``torch.cuda.synchronize()`` so that all queued GPU work counts;
closing the run or the TensorBoard writer is timed separately. Then it checks, on both models,
that the values tracked from CUDA tensors equal ``.item()`` of each loss at tracking time
(also when the caller changes the loss in place after ``track()``, and when the loop runs on
a side stream), with steps and order exact. It also times single ``track()`` / ``.item()``
calls on an idle GPU, and records which value types Lightning and transformers hand our
adapters in tiny fits on the GPU. It prints a Markdown table and writes JSON (``--out``); it
exits 1 when a check fails.

Needs torch (a CUDA build for the real figures), numpy and sqlitedict (aim-core's
dependencies) and, for the ``tb`` column, tensorboard. From the repo root::

    pip install -e . tensorboard          # plus a CUDA build of torch
    python benchmarks/bench_gpu_track.py  # about 3 minutes on one H200, cold start included

Without installing aim-core, ``PYTHONPATH=. python benchmarks/bench_gpu_track.py`` works when
numpy and sqlitedict are importable. A CPU smoke check (the deferred path forced on for CPU
tensors): ``python benchmarks/bench_gpu_track.py --device cpu --steps 30 --rounds 1 --small 32
--large 64``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a bare checkout

import torch  # noqa: E402

from aim_core import Repo, Run, deferred  # noqa: E402

VARIANTS = ("none", "item", "track", "tb")


def make_model(width: int, batch: int, device: str) -> tuple:
    """A 4-layer MLP, its optimizer and one fixed batch of inputs and targets on ``device``."""
    torch.manual_seed(0)
    layers = []
    for _ in range(3):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, width, device=device)
    y = torch.randn(batch, 1, device=device)
    return model, opt, x, y


def train_step(model, opt, x, y):
    """One optimizer step; returns the loss tensor (never read on the host here)."""
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss


def sync(device: str) -> None:
    """Wait for the device (a no-op on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_loop(setup, steps: int, log, device: str) -> float:
    """Seconds for ``steps`` training steps calling ``log(loss, step)`` after each (or not)."""
    model, opt, x, y = setup
    sync(device)
    start = time.perf_counter()
    if log is None:
        for _ in range(steps):
            train_step(model, opt, x, y)
    else:
        for step in range(steps):
            log(train_step(model, opt, x, y), step)
    sync(device)
    return time.perf_counter() - start


def run_variant(variant: str, setup, steps: int, device: str, tmp: Path) -> dict:
    """Time one loop of ``variant``; closing its run or writer is timed apart."""
    closer = None
    if variant == "none":
        log = None
    elif variant == "item":
        def log(loss, step):
            loss.item()
    elif variant == "track":
        run = Run(repo=tmp / "aim", experiment="bench")
        track = run.track

        def log(loss, step):
            track(loss, name="loss", step=step)
        closer = run.close
    else:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(tmp / "tb" / str(time.monotonic_ns())))
        add_scalar = writer.add_scalar

        def log(loss, step):
            add_scalar("loss", loss, step)
        closer = writer.close
    seconds = timed_loop(setup, steps, log, device)
    start = time.perf_counter()
    if closer is not None:
        closer()
    return {"seconds": seconds, "close_seconds": time.perf_counter() - start}


def bench_model(label: str, setup, args, variants: tuple, tmp: Path) -> dict:
    """Warm up, then ``rounds`` rounds of every variant in rotating order; medians."""
    timed_loop(setup, args.warmup, None, args.device)
    times: dict[str, list[float]] = {v: [] for v in variants}
    closes: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for variant in order:
            result = run_variant(variant, setup, args.steps, args.device, tmp)
            times[variant].append(result["seconds"])
            closes[variant].append(result["close_seconds"])
            print(f"  {label} round {r + 1} {variant:5s} {result['seconds']:.3f} s", flush=True)
    base = statistics.median(times["none"])
    return {v: {"median_s": statistics.median(times[v]), "all_s": times[v],
                "per_step_us": statistics.median(times[v]) / args.steps * 1e6,
                "overhead_pct": (statistics.median(times[v]) / base - 1) * 100,
                "close_median_s": statistics.median(closes[v])} for v in variants}


def check_values(setup, steps: int, device: str, tmp: Path, side_stream: bool) -> dict:
    """Track every loss, change it in place afterwards; stored values must equal ``.item()``."""
    model, opt, x, y = setup
    run = Run(repo=tmp / "check", experiment="check", flush_interval=0.05)  # convert meanwhile
    expected = []
    stream = torch.cuda.Stream() if side_stream else None
    sync(device)
    with torch.cuda.stream(stream) if stream is not None else _nothing():
        for step in range(steps):
            loss = train_step(model, opt, x, y)
            run.track(loss, name="loss", step=step * 2, epoch=step // 100)
            expected.append(loss.detach().clone())
            with torch.no_grad():
                loss.add_(1000.0)  # an in-place change after track() must not show
    sync(device)
    run_hash = run.hash
    run.close()
    want = [e.item() for e in expected]  # .item() of each loss as it was when tracked
    metric = Repo(tmp / "check").get_run(run_hash).get_metric("loss")
    got = metric.values.tolist() if metric is not None else []
    steps_ok = metric is not None and metric.steps.tolist() == [2 * s for s in range(steps)]
    epochs_ok = metric is not None and metric.epochs.tolist() == [s // 100 for s in range(steps)]
    mismatches = abs(len(got) - len(want))
    mismatches += sum(1 for a, b in zip(got, want, strict=False) if a != b)
    return {"points": len(got), "expected": len(want), "mismatches": mismatches,
            "steps_exact": steps_ok, "epochs_exact": epochs_ok,
            "ok": mismatches == 0 and steps_ok and epochs_ok}


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def call_costs(device: str, tmp: Path, n: int = 3000) -> dict:
    """Microseconds per ``track()`` / ``.item()`` of a 0-d tensor on an idle device, and the
    milliseconds one batch conversion of ``n`` held values takes (on the calling thread)."""
    value = torch.tensor(0.5, device=device)
    run = Run(repo=tmp / "calls", flush_interval=3600)
    sync(device)
    start = time.perf_counter()
    for step in range(n):
        run.track(value, name="x", step=step)
    track_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    deferred.resolve_held()
    convert_ms = (time.perf_counter() - start) * 1e3
    run.close()
    start = time.perf_counter()
    for _ in range(n):
        value.item()
    item_us = (time.perf_counter() - start) / n * 1e6
    return {"track_us": track_us, "item_us": item_us, f"convert_{n}_ms": convert_ms}


def adapter_types(device: str, tmp: Path) -> dict:
    """Which value types Lightning and transformers hand our adapters (tiny fits on ``device``)."""
    seen: dict[str, dict[str, int]] = {}
    original = Run.track

    def spy(self, value, name=None, *args, **kwargs):
        kind = f"{type(value).__module__}.{type(value).__name__}"
        counts = seen.setdefault(spy.framework, {})
        counts[kind] = counts.get(kind, 0) + 1
        return original(self, value, name, *args, **kwargs)

    Run.track = spy
    try:
        for framework, fit in (("lightning", _lightning_fit), ("transformers", _hf_fit)):
            spy.framework = framework
            try:
                fit(device, tmp / framework)
            except Exception as exc:  # a missing or changed framework must not stop the bench
                seen[framework] = {"error": repr(exc)[:200]}
    finally:
        Run.track = original
    return seen


def _data():
    x = torch.randn(64, 8)
    return torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))


def _lightning_fit(device: str, folder: Path) -> None:
    import lightning as pl

    from aim_core.integrations.lightning import AimLogger

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch, _):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    loader = torch.utils.data.DataLoader(_data(), batch_size=8)
    trainer = pl.Trainer(max_epochs=2, accelerator="gpu" if device != "cpu" else "cpu",
                         devices=1, logger=AimLogger(repo=str(folder)), log_every_n_steps=1,
                         enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, default_root_dir=str(folder))
    trainer.fit(Tiny(), loader)


def _hf_fit(device: str, folder: Path) -> None:
    from transformers import Trainer, TrainingArguments

    from aim_core.integrations.huggingface import AimCallback

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def forward(self, x, labels=None):
            out = self.layer(x)
            return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}

    class Data(torch.utils.data.Dataset):
        def __init__(self):
            self.inner = _data()

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            x, y = self.inner[i]
            return {"x": x, "labels": y}

    args = TrainingArguments(output_dir=str(folder / "out"), max_steps=8, logging_steps=2,
                             report_to="none", save_strategy="no",
                             per_device_train_batch_size=8, use_cpu=device == "cpu",
                             disable_tqdm=True)
    Trainer(model=Tiny(), args=args, train_dataset=Data(),
            callbacks=[AimCallback(repo=str(folder))]).train()


def main() -> None:
    """Parse arguments, run everything, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--small", type=int, default=256, help="width of the small model")
    parser.add_argument("--small-batch", type=int, default=256)
    parser.add_argument("--large", type=int, default=4096, help="width of the large model")
    parser.add_argument("--large-batch", type=int, default=1024)
    parser.add_argument("--out", default="bench_gpu_track.json")
    parser.add_argument("--no-adapters", action="store_true",
                        help="skip the tiny Lightning/transformers fits that record what "
                             "value types the frameworks hand our adapters")
    args = parser.parse_args()
    if args.device == "cpu":
        deferred.defer_cpu_tensors(True)  # exercise the deferred path on CPU tensors
    elif not torch.cuda.is_available():
        sys.exit("No CUDA device: use --device cpu for a smoke check.")
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        importlib.import_module("torch.utils.tensorboard")
        variants = VARIANTS
    except ImportError:
        print("tensorboard is not installed: the tb column is left out", flush=True)
        variants = VARIANTS[:3]
    os.environ.setdefault("AIM_CORE_FLUSH_INTERVAL", "1.0")
    started = time.perf_counter()
    report = {"device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu",
              "torch": torch.__version__, "python": platform.python_version(),
              "args": vars(args), "models": {}, "checks": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for label, width, batch in (("small", args.small, args.small_batch),
                                    ("large", args.large, args.large_batch)):
            setup = make_model(width, batch, args.device)
            print(f"{label}: width {width}, batch {batch}", flush=True)
            report["models"][label] = bench_model(label, setup, args, variants, tmp)
            report["checks"][label] = check_values(setup, args.steps, args.device, tmp, False)
            if args.device != "cpu" and label == "small":
                report["checks"]["small_side_stream"] = check_values(
                    setup, min(args.steps, 500), args.device, tmp, True)
        report["call_costs"] = call_costs(args.device, tmp)
        if not args.no_adapters:
            report["adapter_value_types"] = adapter_types(args.device, tmp)
    report["lost_device_values"] = deferred.lost_count()
    report["deferred_path_used"] = deferred.ever_captured()
    report["total_s"] = time.perf_counter() - started
    print_table(report, variants)
    Path(args.out).write_text(json.dumps(report, indent=2))
    ok = all(c["ok"] for c in report["checks"].values()) and report["deferred_path_used"]
    print(f"wrote {args.out}; all checks ok: {ok}")
    sys.exit(0 if ok else 1)


def print_table(report: dict, variants: tuple) -> None:
    """The figures as a Markdown table, as benchmarks/README.md shows them."""
    print(f"\n{report['device']}, torch {report['torch']}, Python {report['python']}, "
          f"{report['args']['steps']} steps, median of {report['args']['rounds']}")
    print("| model | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for label, rows in report["models"].items():
        cells = [f"{rows[v]['per_step_us']:.1f} µs/step ({rows[v]['overhead_pct']:+.2f}%)"
                 for v in variants]
        print(f"| {label} | " + " | ".join(cells) + " |")
    costs = report["call_costs"]
    print(f"\none track() of a device scalar: {costs['track_us']:.2f} µs; "
          f"one .item(): {costs['item_us']:.2f} µs (idle device); "
          + ", ".join(f"{k} {v:.2f}" for k, v in costs.items() if k.startswith("convert")))
    print(f"deferred path used: {report['deferred_path_used']}, "
          f"device values lost: {report['lost_device_values']}")
    for framework, kinds in report.get("adapter_value_types", {}).items():
        print(f"{framework} hands our adapter: {kinds}")
    for label, check in report["checks"].items():
        print(f"check {label}: {check}")
    print(f"total {report['total_s']:.1f} s")


if __name__ == "__main__":
    main()
