"""The trainer through the real CLI: files, resume after SIGKILL, Ctrl-C, nan guard, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, safe_open

from zoo.cli import cli

from conftest import run_zoo, zoo_env


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_run_writes_the_run_directory(toy, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "toy.regression", "--epochs", "1", "--out", str(out), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "test mse:" in result.output
    for name in ("config.json", "metrics.jsonl", "summary.json", "model.safetensors", "best.safetensors",
                 "checkpoint.safetensors"):
        assert (out / name).is_file(), name
    assert (out / "figures").is_dir()
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["seed"] == 3 and config["model"]["name"] == "toy-mlp"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["main_metric"] == "mse" and summary["test"]["mse"] < 0.1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "val"}
    assert all("loss" in r and "img_per_s" in r and "lr" in r for r in records if r["split"] == "train")
    tensors = load_file(out / "model.safetensors")  # plain safetensors, no zoo needed
    assert set(tensors) == {"1.weight", "1.bias", "4.weight", "4.bias"}
    with safe_open(out / "model.safetensors", "pt") as f:
        meta = f.metadata()
    assert meta["zoo.experiment"] == "toy.regression"
    assert json.loads(meta["zoo.metrics"])["mse"] == pytest.approx(summary["test"]["mse"])
    assert json.loads(meta["zoo.config"]) == config
    assert meta["zoo.torch_version"] == torch.__version__


def test_eval_json_and_predict_use_the_weights(toy, tmp_path):
    out = tmp_path / "run"
    assert invoke("run", "toy.regression", "--epochs", "1", "--out", str(out)).exit_code == 0
    result = CliRunner().invoke(cli, ["eval", "toy.regression", "--weights", str(out / "model.safetensors"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["mse"] == pytest.approx(json.loads((out / "summary.json").read_text())["test"]["mse"])
    from PIL import Image

    Image.new("L", (20, 20), 200).save(tmp_path / "grey.png")
    result = invoke("predict", "toy.regression", str(tmp_path / "grey.png"), "--weights",
                    str(out / "model.safetensors"))
    assert result.exit_code == 0, result.output
    path, value = result.stdout.strip().split("  ")  # `IMAGE  ANSWER`: no confidence to give
    assert float(value) == pytest.approx(200 / 255, abs=0.25) and path.endswith("grey.png")


def test_weights_for_another_experiment_are_refused(toy, tmp_path):
    out = tmp_path / "run"
    assert invoke("run", "toy.gan", "--epochs", "1", "--out", str(out)).exit_code == 0
    result = invoke("eval", "toy.regression", "--weights", str(out / "model.safetensors"))
    assert result.exit_code == 2 and "holds weights of toy.gan" in result.output


def test_multi_optimizer_task_trains_both_steps(toy, tmp_path):
    out = tmp_path / "gan"
    result = invoke("run", "toy.gan", "--epochs", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert "discriminator/loss" in record and "generator/loss" in record
    from zoo.checkpoint import load

    state = load(out / "checkpoint.safetensors")
    assert set(state["optimizers"]) == {"discriminator", "generator"}
    # each optimizer holds exactly its own step's parameters
    sizes = {s: sum(len(g["params"]) for g in o["param_groups"]) for s, o in state["optimizers"].items()}
    assert sizes == {"discriminator": 2, "generator": 2}


def test_dataset_can_generate_batches_on_the_device(toy, tmp_path):
    from zoo.experiment import resolve
    from zoo.trainer import DeviceLoader, Trainer

    config = resolve("toy.regression", {"data": "toy-hashblobs", "train.epochs": 1})
    trainer = Trainer(config, tmp_path / "dev", progress=False)
    assert isinstance(trainer.loader, DeviceLoader)
    summary = trainer.fit()
    assert summary["steps"] == 16 and summary["test"]["mse"] < 0.1


def test_ema_accumulation_and_clipping_run(toy, tmp_path):
    result = invoke("run", "toy.regression", "--epochs", "1", "--out", str(tmp_path / "r"), "--set",
                    "train.ema=true", "--set", "train.accum_steps=2", "--set", "train.grad_clip=1.0",
                    "--set", "train.optimizer=sgd", "--set", "train.scheduler=step")
    assert result.exit_code == 0, result.output
    state_keys = load_file(tmp_path / "r" / "checkpoint.safetensors")
    assert any(".ema." in k or k.startswith("s.") for k in state_keys)


def test_nan_loss_stops_naming_the_step_and_keeps_last_checkpoint(toy, tmp_path):
    out = tmp_path / "nan"
    result = invoke("run", "toy.regression", "--out", str(out), "--checkpoint-every", "4",
                    "--set", "task.fail_at_step=7", "--set", "train.log_every=100")
    assert result.exit_code == 1
    assert "loss became nan/inf at step 7" in result.output
    from zoo.checkpoint import load

    state = load(out / "checkpoint.safetensors")
    assert state["position"]["global_step"] == 4
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_unavailable_device_is_a_clear_error(toy, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the error is only reachable without a GPU
    result = invoke("run", "toy.regression", "--device", "cuda", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "CUDA is not available" in result.output


def _wait_for_step(path: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    from zoo.checkpoint import load

    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "run ended early"
        if path.is_file():
            try:
                if load(path)["position"]["global_step"] >= step:
                    return
            except Exception:
                pass  # being replaced right now
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


SLOW = ["--set", "task.delay=0.03", "--set", "train.num_workers=0", "--max-steps", "40", "--epochs", "3"]


def test_resume_after_sigkill_is_bitwise_exact(toy_site, tmp_path):
    env = zoo_env(toy_site)
    ref = run_zoo(["run", "toy.regression", *SLOW, "--out", str(tmp_path / "ref")], env)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "zoo", "run", "toy.regression", *SLOW, "--checkpoint-every", "5",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    _wait_for_step(out / "checkpoint.safetensors", 10, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists()
    resumed = run_zoo(["run", "toy.regression", "--resume", str(out)], env)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the metrics log of the resumed run continues where it stopped
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if '"train"' in line]
    assert steps[-1] == 40


def test_ctrl_c_checkpoints_and_prints_the_resume_command(toy_site, tmp_path):
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "zoo", "run", "toy.regression", *SLOW, "--checkpoint-every", "5",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=zoo_env(toy_site), stderr=subprocess.PIPE, text=True)
    _wait_for_step(out / "checkpoint.safetensors", 5, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"zoo run toy.regression --resume {out}" in err
    assert "Traceback" not in err
    resumed = run_zoo(["run", "toy.regression", "--resume", str(out)], zoo_env(toy_site))
    assert resumed.returncode == 0, resumed.stderr


def test_resume_latest_run_by_name(toy_site, tmp_path):
    env = zoo_env(toy_site)
    first = run_zoo(["run", "toy.regression", "--max-steps", "5", "--epochs", "1"], env)
    assert first.returncode == 0, first.stderr
    again = run_zoo(["run", "toy.regression", "--resume", "--max-steps", "10", "--epochs", "1"], env)
    assert again.returncode == 0, again.stderr
    (run_dir,) = (tmp_path / "runs" / "toy.regression").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 10
    missing = run_zoo(["run", "toy.gan", "--resume"], env)
    assert missing.returncode == 2 and "no run of toy.gan" in missing.stderr


@pytest.mark.slow
def test_torchrun_two_processes_match_one(toy_site, tmp_path):
    env = zoo_env(toy_site, OMP_NUM_THREADS="1")
    common = ["run", "toy.regression", "--epochs", "1", "--set", "model.dropout=0", "--set", "train.log_every=1"]
    single = run_zoo([*common, "--batch-size", "16", "--out", str(tmp_path / "one")], env)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--standalone", "-m", "zoo", *common, "--batch-size", "8",
                          "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    assert (tmp_path / "two" / "summary.json").is_file()
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2

    def curve(d: Path) -> list[float]:
        return [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()
                if '"train"' in line]

    one, two = curve(tmp_path / "one"), curve(tmp_path / "two")
    assert len(one) == len(two) == 16
    assert two == pytest.approx(one, rel=1e-4, abs=1e-6)
    assert os.listdir(tmp_path / "two").count("metrics.jsonl") == 1
