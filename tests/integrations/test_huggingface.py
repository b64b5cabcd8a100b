"""AimCallback: real tiny BERT trainings with transformers' Trainer, read back through Repo."""

from __future__ import annotations

import json
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import pytest

pytest.importorskip("accelerate")  # Trainer needs it
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerState,
    TrainingArguments,
)

from aim_core import Repo, Run  # noqa: E402
from aim_core.integrations.huggingface import AimCallback  # noqa: E402

EVAL_SPEED = {"runtime", "samples_per_second", "steps_per_second"}


class TokenDataset(torch.utils.data.Dataset):
    """Random token sequences labelled by their first token: a learnable toy task."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(5, 100, (size, 16), generator=generator)
        self.labels = (self.input_ids[:, 0] >= 50).long()

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def tiny_bert() -> BertForSequenceClassification:
    """A 2-layer BERT with hidden size 32, built from a config (nothing downloaded)."""
    torch.manual_seed(0)
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


@pytest.fixture
def repo_path(tmp_path, monkeypatch):
    """The default repo (via AIM_CORE_REPO) in tmp_path; cwd moved out of the checkout."""
    path = tmp_path / "repo"
    path.mkdir()
    monkeypatch.setenv("AIM_CORE_REPO", str(path))
    for name in ("AIM_CORE_EXPERIMENT", "AIM_CORE_RUN_HASH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def output_dir(tmp_path):
    """Trainer checkpoints go here, outside the repo."""
    return tmp_path / "checkpoints"


@pytest.fixture
def make_trainer(output_dir):
    """Build a Trainer on the tiny BERT: batch 8, log every 2 steps, eval and save every 10."""

    def make(callback, *, max_steps=20, model=None, eval_dataset="default", **overrides):
        if eval_dataset == "default":
            eval_dataset = TokenDataset(32, seed=1)
        options = dict(
            output_dir=str(output_dir),
            max_steps=max_steps,
            per_device_train_batch_size=8,
            per_device_eval_batch_size=16,
            learning_rate=1e-3,
            logging_steps=2,
            eval_strategy="steps" if eval_dataset is not None else "no",
            eval_steps=10,
            save_steps=10,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
        )
        options.update(overrides)
        return Trainer(
            model=model if model is not None else tiny_bert(),
            args=TrainingArguments(**options),
            train_dataset=TokenDataset(160, seed=0),
            eval_dataset=eval_dataset,
            callbacks=[callback],
        )

    return make


def only_run(path) -> Run:
    """The single run in the repo at ``path`` (fails if there are zero or several)."""
    runs = list(Repo(str(path)).iter_runs())
    assert len(runs) == 1, [r.hash for r in runs]
    return runs[0]


SYSTEM = ("cpu", "memory_percent", "p_memory_percent", "disk_percent")


def metrics_of(run: Run) -> dict:
    """``{(name, ((context key, value), ...)): Metric}`` for every sequence of ``run``."""
    return {(m.name, tuple(sorted(dict(m.context).items()))): m for m in run.metrics()}


def key(name: str, **context) -> tuple:
    return name, tuple(sorted(context.items()))


def logged(trainer: Trainer, raw_key: str) -> list[tuple[int, float]]:
    """``(step, value)`` for ``raw_key`` as the Trainer's own log history has it."""
    return [(h["step"], h[raw_key]) for h in trainer.state.log_history if raw_key in h]


def test_training_then_evaluate_and_predict_make_one_run(
    repo_path, output_dir, make_trainer, monkeypatch
):
    monkeypatch.setenv("AIM_CORE_EXPERIMENT", "tiny-bert")
    callback = AimCallback()  # configured through the environment only
    trainer = make_trainer(callback)
    trainer.train()

    run = only_run(repo_path)
    assert run.hash == callback.run_hash
    assert not run.active and run.status == "finished"
    assert run.experiment == "tiny-bert"
    assert run["hparams"]["learning_rate"] == 1e-3
    assert run["hparams"]["max_steps"] == 20
    assert run["model"]["hidden_size"] == 32
    assert run["model"]["num_hidden_layers"] == 2
    assert run["model"]["num_parameters"] == trainer.model.num_parameters()
    assert run["summary"]["train_loss"] == pytest.approx(
        trainer.state.log_history[-1]["train_loss"]
    )
    assert run["summary"]["total_flos"] > 0 and "train_runtime" in run["summary"]
    assert run["checkpoint"] == {"path": str(output_dir / "checkpoint-20"), "step": 20}

    metrics = metrics_of(run)
    train = {"subset": "train"}
    expected = {key(n, **train) for n in ("loss", "learning_rate", "grad_norm")}
    expected |= {key(n, subset="eval") for n in {"loss"} | EVAL_SPEED}
    expected |= {key(f"__system__{n}") for n in SYSTEM}  # Aim's default: system metrics too
    own = {k for k in metrics if not k[0].startswith("__system__gpu")}  # GPUs if any
    assert own == expected  # summary keys and epoch are not sequences
    assert "packages" in run["__system_params"]  # the adapter logs system params by default
    train_loss = metrics[key("loss", **train)]
    steps, values = zip(*logged(trainer, "loss"), strict=True)
    assert train_loss.steps.tolist() == list(steps)
    assert train_loss.values.tolist() == pytest.approx(values)
    assert train_loss.steps.tolist() == list(range(2, 21, 2))
    assert train_loss.epochs.tolist() == pytest.approx([s / 20 for s in range(2, 21, 2)])
    assert metrics[key("loss", subset="eval")].steps.tolist() == [10, 20]

    # evaluate() and predict() after training reopen the same run, append, and close it again
    result = trainer.evaluate()
    trainer.predict(TokenDataset(16, seed=3))
    run = only_run(repo_path)
    assert run.hash == callback.run_hash and not run.active
    metrics = metrics_of(run)
    eval_loss = metrics[key("loss", subset="eval")]
    assert eval_loss.steps.tolist() == [10, 20]  # evaluated again at step 20: the last wins
    assert eval_loss.values[-1] == pytest.approx(result["eval_loss"])
    assert {key(n, subset="test") for n in {"loss"} | EVAL_SPEED} <= set(metrics)
    assert metrics[key("loss", subset="test")].steps.tolist() == [20]


def test_dict_of_eval_datasets_gives_one_context_per_dataset(repo_path, make_trainer):
    def compute_metrics(prediction):
        accuracy = (prediction.predictions.argmax(-1) == prediction.label_ids).mean()
        return {"accuracy": float(accuracy), "note": "not a number"}

    eval_sets = {"short": TokenDataset(16, seed=1), "held_out": TokenDataset(32, seed=2)}
    trainer = make_trainer(AimCallback(), eval_dataset=eval_sets)
    trainer.compute_metrics = compute_metrics
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()

    metrics = metrics_of(only_run(repo_path))
    for name in eval_sets:
        for metric in ("loss", "accuracy"):
            tracked = metrics[key(metric, subset="eval", dataset=name)]
            assert tracked.steps.tolist() == [10, 20]
            assert tracked.values.tolist() == pytest.approx(
                [v for _, v in logged(trainer, f"eval_{name}_{metric}")]
            )
    assert key("loss", subset="eval") not in metrics
    assert not any(name == "note" for name, _ in metrics)
    skipped = [str(w.message) for w in caught if "note" in str(w.message)]
    assert len(skipped) == 2  # once per raw key, though each was logged twice
    assert "eval_held_out_note" in " ".join(skipped)


@pytest.mark.parametrize("restore_callback_states", [False, True])
def test_resume_from_checkpoint_continues_the_same_run(
    repo_path, output_dir, make_trainer, restore_callback_states
):
    make_trainer(AimCallback(), max_steps=10).train()
    checkpoint = output_dir / "checkpoint-10"
    saved = json.loads((checkpoint / "trainer_state.json").read_text())
    run_hash = saved["stateful_callbacks"]["AimCallback"]["args"]["run_hash"]
    assert run_hash == only_run(repo_path).hash

    trainer = make_trainer(
        AimCallback(),  # a fresh callback, as in a new process
        max_steps=20,
        restore_callback_states_from_checkpoint=restore_callback_states,
    )
    trainer.train(resume_from_checkpoint=str(checkpoint))

    run = only_run(repo_path)
    assert run.hash == run_hash and not run.active
    metrics = metrics_of(run)
    assert metrics[key("loss", subset="train")].steps.tolist() == list(range(2, 21, 2))
    assert metrics[key("loss", subset="eval")].steps.tolist() == [10, 20]
    assert run["checkpoint"]["path"] == str(output_dir / "checkpoint-20")
    assert run["hparams"]["max_steps"] == 20


def test_run_passed_in_is_used_and_left_open(repo_path, make_trainer):
    run = Run(repo=str(repo_path), experiment="mine")
    make_trainer(AimCallback(run=run), max_steps=4, eval_dataset=None).train()
    assert run.active  # the caller owns it
    run.track(1.0, name="after_training")
    run.close()

    stored = only_run(repo_path)
    assert stored.hash == run.hash and stored.experiment == "mine"
    assert stored["hparams"]["max_steps"] == 4
    metrics = metrics_of(stored)
    assert metrics[key("loss", subset="train")].steps.tolist() == [2, 4]
    assert key("after_training") in metrics


def test_run_hash_from_environment_appends_to_that_run(repo_path, make_trainer, monkeypatch):
    with Run(repo=str(repo_path)) as existing:
        existing["origin"] = "script"
    monkeypatch.setenv("AIM_CORE_RUN_HASH", existing.hash)
    make_trainer(AimCallback(), max_steps=4, eval_dataset=None).train()

    run = only_run(repo_path)
    assert run.hash == existing.hash and run["origin"] == "script"
    assert metrics_of(run)[key("loss", subset="train")].steps.tolist() == [2, 4]


def test_evaluate_without_training_creates_a_closed_run(repo_path, make_trainer):
    trainer = make_trainer(AimCallback(run_name="eval-only"))
    trainer.evaluate()

    run = only_run(repo_path)
    assert run.name == "eval-only" and not run.active
    assert run["model"]["hidden_size"] == 32
    assert metrics_of(run)[key("loss", subset="eval")].steps.tolist() == [0]


def test_peft_model_records_its_adapter_config(repo_path, make_trainer):
    peft = pytest.importorskip("peft")
    config = peft.LoraConfig(r=4, target_modules=["query", "value"], task_type="SEQ_CLS")
    model = peft.get_peft_model(tiny_bert(), config)
    make_trainer(AimCallback(), model=model, max_steps=2, eval_dataset=None).train()

    params = only_run(repo_path)["model"]
    assert params["peft_config"]["default"]["r"] == 4
    assert sorted(params["peft_config"]["default"]["target_modules"]) == ["query", "value"]
    assert 0 < params["num_trainable_parameters"] < params["num_parameters"]


def test_only_the_main_process_tracks(repo_path, output_dir):
    callback = AimCallback()
    args = TrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True)
    state = TrainerState(is_world_process_zero=False, global_step=3)
    callback.on_train_begin(args, state, None, model=tiny_bert())
    callback.on_log(args, state, None, logs={"loss": 0.5})
    callback.on_predict(args, state, None, metrics={"test_loss": 0.5, "test_runtime": 0.1})
    callback.on_train_end(args, state, None)
    assert callback.run is None and callback.run_hash is None
    assert not list(repo_path.iterdir())


def test_experiment_setup_and_close_as_in_aim(repo_path, make_trainer, output_dir):
    callback = AimCallback(experiment="hf", system_tracking_interval=None,
                           log_system_params=False, capture_terminal_logs=False)
    run = callback.experiment  # opened now, before training, as Aim's property does
    run.track(1.25, name="model_load_time")
    trainer = make_trainer(callback, max_steps=4, eval_dataset=None)
    trainer.train()
    assert callback.run is None  # closed by on_train_end
    reopened = callback.experiment
    assert reopened.hash == run.hash
    callback.setup(trainer.args, trainer.state, trainer.model)
    callback.close()
    callback.close()  # closing twice is harmless

    stored = only_run(repo_path)
    assert stored.hash == run.hash and stored.experiment == "hf" and not stored.active
    metrics = metrics_of(stored)
    assert metrics[key("model_load_time")].values.tolist() == [1.25]
    assert metrics[key("loss", subset="train")].steps.tolist() == [2, 4]
    assert stored["hparams"]["max_steps"] == 4 and stored["model"]["hidden_size"] == 32
    options = reopened._system_options
    assert (options["system_tracking_interval"], options["log_system_params"],
            options["capture_terminal_logs"]) == (None, False, False)
    saved = json.loads((output_dir / "checkpoint-4" / "trainer_state.json").read_text())
    args = saved["stateful_callbacks"]["AimCallback"]["args"]
    assert (args["system_tracking_interval"], args["log_system_params"]) == (None, False)


def test_experiment_is_none_off_the_main_process(repo_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    callback = AimCallback()
    assert callback.experiment is None
    callback.setup(state=TrainerState(is_world_process_zero=False))
    assert callback.run is None and not list(repo_path.iterdir())
    monkeypatch.setenv("RANK", "0")
    run = callback.experiment
    options = run._system_options  # Aim's adapter defaults
    assert (options["system_tracking_interval"], options["log_system_params"],
            options["capture_terminal_logs"]) == (10, True, True)
    callback.close()
    assert only_run(repo_path).hash == run.hash
