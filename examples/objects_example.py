"""Track texts, images, distributions and a figure next to a loss, then read them back.

A tiny numpy autoencoder-ish loop: every few steps it tracks sample reconstructions as
images, its predictions as text, its weights as distributions and a plotly figure.

Run: ``python examples/objects_example.py [repo_dir]`` (needs ``aim-core[media]``; plotly
for the figure, which ``aim-core[ui]`` brings).
"""

from __future__ import annotations

import sys

import numpy as np

from aim_core import Distribution, Figure, Image, Repo, Run, Text


def samples(rng: np.random.Generator, n: int = 4, size: int = 32) -> np.ndarray:
    """``n`` small RGB pictures (float in [0, 1]): coloured blobs on a dark background."""
    y, x = np.mgrid[0:size, 0:size] / size
    out = np.zeros((n, size, size, 3))
    for i in range(n):
        cx, cy, colour = rng.random(), rng.random(), rng.random(3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) * 30)
        out[i] = blob[..., None] * colour
    return out


def train(repo: str | None, steps: int = 30) -> str:
    """Fit a linear denoiser and track objects along the way."""
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.1, (3, 3))
    with Run(repo=repo, experiment="objects") as run:
        run["hparams"] = {"lr": 0.5, "steps": steps}
        for step in range(steps):
            clean = samples(rng)
            noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
            restored = np.clip(noisy @ weights, 0, 1)
            error = restored - clean
            weights -= 0.5 * np.einsum("nhwi,nhwj->ij", noisy, error) / error[..., 0].size
            loss = float(np.mean(error ** 2))
            run.track(loss, name="loss", step=step, context={"subset": "train"})
            run.track(Distribution(weights, bin_count=16), name="weights", step=step,
                      context={"type": "data"})
            if step % 10 == 0 or step == steps - 1:
                run.track([Image(img, caption=f"sample {i}, loss {loss:.4f}")
                           for i, img in enumerate(restored)],
                          name="reconstructions", step=step, context={"subset": "val"})
                run.track(Text(f"step {step}: loss {loss:.5f}, weight norm "
                               f"{np.linalg.norm(weights):.3f}"), name="notes", step=step)
        try:
            import plotly.graph_objects as go
        except ImportError:
            print("plotly is not installed: no figure tracked")
        else:
            heat = go.Figure(go.Heatmap(z=weights, colorscale="Viridis"))
            run.track(Figure(heat), name="final weights")
        return run.hash


def show(repo: Repo, run_hash: str) -> None:
    """Print what was stored."""
    run = repo.get_run(run_hash)
    images = run.get_image_sequence("reconstructions", {"subset": "val"})
    for step, (value, _epoch, _time) in images.data.items():
        print(f"step {step:2}: {len(value)} images, first: {value[0].caption!r} {value[0].size}")
    notes = run.get_text_sequence("notes", {})
    print("last note:", notes.values.last()[1].data)
    weights = run.get_distribution_sequence("weights", {"type": "data"})
    counts, edges = weights.values.last()[1].to_np_histogram()
    print(f"weights: {weights.count} histograms; last spans {edges[0]:.3f}..{edges[-1]:.3f}")


if __name__ == "__main__":
    repo_dir = sys.argv[1] if len(sys.argv) > 1 else None
    run_hash = train(repo_dir)
    show(Repo(repo_dir) if repo_dir else Repo.default_repo(), run_hash)
