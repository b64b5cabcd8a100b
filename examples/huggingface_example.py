"""Train and evaluate a tiny BERT with transformers' Trainer, tracked by aim-core, then query it.

Nothing is downloaded: the model is built from a config and the data is generated.
Run: ``python examples/huggingface_example.py [--repo PATH]`` (default: the aim-core default repo).
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

from aim_core import Repo  # noqa: E402
from aim_core.integrations.huggingface import AimCallback  # noqa: E402


class TokenDataset(torch.utils.data.Dataset):
    """Random token sequences whose label is whether the first token is >= 50."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(5, 100, (size, 16), generator=generator)
        self.labels = (self.input_ids[:, 0] >= 50).long()

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def build_model() -> BertForSequenceClassification:
    """A 2-layer BERT with hidden size 32."""
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def train(repo: str | None, checkpoints: str) -> str:
    """Train 40 steps with two eval sets, evaluate once more, and return the run hash."""
    callback = AimCallback(repo=repo, experiment="tiny-bert", run_name="huggingface-example")
    args = TrainingArguments(
        output_dir=checkpoints,  # checkpoints stay outside the repo
        max_steps=40,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=20,
        save_steps=20,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    eval_sets = {"valid": TokenDataset(64, seed=1), "shifted": TokenDataset(64, seed=2)}
    trainer = Trainer(
        model=build_model(),
        args=args,
        train_dataset=TokenDataset(640, seed=0),
        eval_dataset=eval_sets,
        callbacks=[callback],
    )
    trainer.train()
    trainer.evaluate(eval_dataset=TokenDataset(64, seed=3), metric_key_prefix="test")
    return callback.run_hash


def report(repo_path: str | None, run_hash: str) -> None:
    """Print the eval losses of the run and its params."""
    repo = Repo(repo_path) if repo_path else Repo.default_repo()
    run = repo.get_run(run_hash)
    print(
        f"run {run.hash}: lr={run['hparams']['learning_rate']}, "
        f"hidden_size={run['model']['hidden_size']}, train_loss={run['summary']['train_loss']:.4f}"
    )
    query = (
        f'run.hash == "{run_hash}" and metric.name == "loss" and metric.context.subset != "train"'
    )
    for metric in repo.query_metrics(query):
        points = ", ".join(
            f"{s}: {v:.4f}" for s, v in zip(metric.steps, metric.values, strict=True)
        )
        print(f"  {metric.name} {metric.context.to_dict()} -> {points}")


def main() -> None:
    """Parse arguments, train, and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None, help="aim-core repo path (default: default repo)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aim-core-hf-checkpoints-") as checkpoints:
        run_hash = train(options.repo, checkpoints)
    report(options.repo, run_hash)


if __name__ == "__main__":
    main()
