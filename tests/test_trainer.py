"""The trainer through the real CLI: files, resume after SIGKILL, Ctrl-C, nan guard, DDP."""

from __future__ import annotations

import json
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
    from zoo.storage.checkpoint import load

    state = load(out / "checkpoint.safetensors")
    assert set(state["optimizers"]) == {"discriminator", "generator"}
    # each optimizer holds exactly its own step's parameters
    sizes = {s: sum(len(g["params"]) for g in o["param_groups"]) for s, o in state["optimizers"].items()}
    assert sizes == {"discriminator": 2, "generator": 2}


def test_dataset_can_generate_batches_on_the_device(toy, tmp_path):
    from zoo.experiment import resolve
    from zoo.training.data import BatchLoader
    from zoo.training.loop import Trainer

    config = resolve("toy.regression", {"data": "toy-hashblobs", "train.epochs": 1})
    trainer = Trainer(config, tmp_path / "dev", progress=False)
    assert isinstance(trainer.loader, BatchLoader)
    summary = trainer.fit()
    assert summary["steps"] == 16 and summary["test"]["mse"] < 0.1


# ---------------------------------------------------------------- updates against a hand computation

PLAIN_SGD = {"train.optimizer": "momentum", "train.momentum": 0.0, "train.weight_decay": 0.0,
             "train.scheduler": "none", "train.lr": 0.5, "model.dropout": 0.0, "train.epochs": 1,
             "train.precision": "fp32"}


def plain_trainer(run_dir: Path, **sets: object):
    """toy.regression with plain fp32 SGD (no momentum, decay, schedule, dropout): easy to redo by hand."""
    from zoo.experiment import resolve
    from zoo.training.loop import Trainer

    return Trainer(resolve("toy.regression", {**PLAIN_SGD, **sets}), run_dir, progress=False)


def first_batches(trainer, n: int) -> list:
    """The first ``n`` training batches in the order the trainer will see them."""
    trainer.sampler.set_epoch(0, 0)
    batches = []
    for batch in trainer.loader:
        batches.append(batch)
        if len(batches) == n:
            return batches
    raise AssertionError(f"fewer than {n} batches")


def sgd_by_hand(model: torch.nn.Module, batches: list, lr: float, accum: int = 1,
                clip: float | None = None) -> list[dict[str, torch.Tensor]]:
    """Plain SGD written out: each update averages ``accum`` batch gradients, scales them to total
    norm ``clip`` if larger (torch's ``clip_grad_norm_``), then w ← w − lr·g. The weights after each."""
    import copy

    import torch.nn.functional as F

    model = copy.deepcopy(model)
    params = list(model.parameters())
    after = []
    for start in range(0, len(batches), accum):
        grads = [torch.zeros_like(p) for p in params]
        for x, y in batches[start:start + accum]:
            step = torch.autograd.grad(F.mse_loss(model(x), y), params)
            grads = [g + s / accum for g, s in zip(grads, step)]
        if clip is not None:
            norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
            grads = [g * min(1.0, clip / (float(norm) + 1e-6)) for g in grads]
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        after.append({k: v.clone() for k, v in model.state_dict().items()})
    return after


def assert_weights(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], label: str) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert torch.allclose(got[key], want[key], rtol=1e-5, atol=1e-6), f"{label}: {key} differs"


def test_gradient_accumulation_averages_the_micro_batches(toy, tmp_path):
    trainer = plain_trainer(tmp_path / "r", **{"train.accum_steps": 2, "train.max_steps": 2})
    start, batches = trainer.model, first_batches(trainer, 4)
    want = sgd_by_hand(start, batches, lr=0.5, accum=2)[-1]
    unaccumulated = sgd_by_hand(start, batches[:2], lr=0.5)[-1]  # what an update per batch gives
    summary = trainer.fit()
    assert summary["steps"] == 2
    got = load_file(tmp_path / "r" / "model.safetensors")
    assert_weights(got, want, "2 updates of 2 accumulated batches")
    assert not torch.allclose(got["4.weight"], unaccumulated["4.weight"], atol=1e-4)


def test_grad_clip_bounds_the_update_by_the_total_norm(toy, tmp_path):
    trainer = plain_trainer(tmp_path / "r", **{"train.grad_clip": 0.05, "train.max_steps": 3})
    start, batches = trainer.model, first_batches(trainer, 3)
    want = sgd_by_hand(start, batches, lr=0.5, clip=0.05)[-1]
    unclipped = sgd_by_hand(start, batches, lr=0.5)[-1]
    assert not torch.allclose(want["4.weight"], unclipped["4.weight"], atol=1e-4)  # the clip binds
    trainer.fit()
    assert_weights(load_file(tmp_path / "r" / "model.safetensors"), want, "clipped SGD")


def test_ema_weights_are_saved_and_follow_the_decay(toy, tmp_path):
    """timm's ModelEmaV3 (the documented EMA): the first update copies the weights, each later
    one gives ema ← d·ema + (1−d)·w; evaluation and model.safetensors use the EMA weights."""
    decay = 0.5
    trainer = plain_trainer(tmp_path / "r", **{"train.ema": True, "train.ema_decay": decay,
                                               "train.max_steps": 3})
    start, batches = trainer.model, first_batches(trainer, 3)
    steps = sgd_by_hand(start, batches, lr=0.5)
    ema = dict(steps[0])
    for weights in steps[1:]:
        ema = {k: decay * ema[k] + (1 - decay) * weights[k] for k in ema}
    trainer.fit()
    saved = load_file(tmp_path / "r" / "model.safetensors")
    assert_weights(saved, ema, "EMA weights")
    assert_weights(trainer.model.state_dict(), steps[-1], "raw weights")
    assert not torch.allclose(saved["4.weight"], steps[-1]["4.weight"], atol=1e-4)


def test_ema_warmup_ramps_the_decay_so_early_averages_follow_the_weights(toy, tmp_path):
    """``train.ema_warmup``: timm's warm-up, decay 1 − (1 + n)^(−2/3) at the n-th update after the
    copy, capped at ema_decay: an average started with the training does not lag it for epochs."""
    trainer = plain_trainer(tmp_path / "r", **{"train.ema": True, "train.ema_decay": 0.9,
                                               "train.ema_warmup": True, "train.max_steps": 3})
    start, batches = trainer.model, first_batches(trainer, 3)
    steps = sgd_by_hand(start, batches, lr=0.5)
    ema = dict(steps[0])
    for n, weights in enumerate(steps[1:], start=1):
        decay = min(1 - (1 + n) ** (-2 / 3), 0.9)  # 0.370, 0.519: well below 0.9
        ema = {k: decay * ema[k] + (1 - decay) * weights[k] for k in ema}
    trainer.fit()
    assert_weights(load_file(tmp_path / "r" / "model.safetensors"), ema, "warmed-up EMA weights")


def test_optimizer_and_schedule_flags_reach_the_trainer(toy, tmp_path):
    """The same settings through the CLI: they parse, train, and the checkpoint keeps the EMA."""
    result = invoke("run", "toy.regression", "--epochs", "1", "--out", str(tmp_path / "r"), "--set",
                    "train.ema=true", "--set", "train.accum_steps=2", "--set", "train.grad_clip=1.0",
                    "--set", "train.optimizer=sgd", "--set", "train.scheduler=step")
    assert result.exit_code == 0, result.output
    from zoo.storage.checkpoint import load

    state = load(tmp_path / "r" / "checkpoint.safetensors")
    assert state["ema"] is not None and state["position"]["global_step"] == 8  # 16 batches / 2
    assert state["schedulers"]["main"] and state["optimizers"]["main"]["state"]


def test_nan_loss_stops_naming_the_step_and_keeps_last_checkpoint(toy, tmp_path):
    out = tmp_path / "nan"
    result = invoke("run", "toy.regression", "--out", str(out), "--checkpoint-every", "4",
                    "--set", "task.fail_at_step=7", "--set", "train.log_every=100")
    assert result.exit_code == 1
    assert "loss became nan/inf at step 7" in result.output
    from zoo.storage.checkpoint import load

    state = load(out / "checkpoint.safetensors")
    assert state["position"]["global_step"] == 4
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_unavailable_device_is_a_clear_error(toy, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the error is only reachable without a GPU
    result = invoke("run", "toy.regression", "--device", "cuda", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "CUDA is not available" in result.output


def _wait_for_step(path: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    from zoo.storage.checkpoint import load

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


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if r["split"] == "train"]


def test_resume_after_sigkill_is_bitwise_exact(toy_site, tmp_path):
    env = zoo_env(toy_site)
    ref = run_zoo(["run", "toy.regression", *SLOW, "--out", str(tmp_path / "ref")], env)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "zoo", "run", "toy.regression", *SLOW, "--checkpoint-every", "5",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(out / "checkpoint.safetensors", 10, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert not (out / "model.safetensors").exists()
    from zoo.storage.checkpoint import load

    stopped_at = load(out / "checkpoint.safetensors")["position"]["global_step"]
    logged_before = len(train_records(out))
    resumed = run_zoo(["run", "toy.regression", "--resume", str(out)], env)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the resumed process went on from the checkpoint (a restart from scratch also ends with the
    # same weights, but logs steps from the beginning again)
    after = [r["step"] for r in train_records(out)[logged_before:]]
    assert after and after[0] > stopped_at and after == sorted(set(after)) and after[-1] == 40, after
    ref_loss = {r["step"]: r["loss"] for r in train_records(tmp_path / "ref")}
    full_windows = [r for r in train_records(out)[logged_before:] if r["step"] - 4 >= stopped_at]
    assert full_windows and all(r["loss"] == ref_loss[r["step"]] for r in full_windows)
    assert json.loads((out / "summary.json").read_text())["steps"] == 40


def test_resume_restores_position_weights_optimizer_and_rng(toy, tmp_path):
    """The state a resumed Trainer starts from is the checkpoint's, piece by piece."""
    from zoo.experiment import resolve
    from zoo.storage import checkpoint
    from zoo.training.loop import Trainer

    config = resolve("toy.regression", {"train.max_steps": 6, "train.epochs": 2, "train.precision": "fp32",
                                        "train.ema": True})
    run = tmp_path / "run"
    Trainer(config, run, progress=False).fit()
    saved = checkpoint.load(run / "checkpoint.safetensors")
    assert saved["position"]["global_step"] == 6 and saved["optimizers"]["main"]["state"]

    resumed = Trainer(config, run, resume=True, progress=False)
    assert torch.equal(torch.get_rng_state(), saved["rng"]["torch"])  # the next random draw too
    assert (resumed.epoch, resumed.batch_in_epoch, resumed.global_step, resumed.micro_step) == (
        0, 6, 6, 6)
    for key, tensor in saved["model"].items():
        assert torch.equal(resumed.model.state_dict()[key], tensor), key
    fresh = Trainer(config, tmp_path / "fresh", progress=False)  # what no restore would leave
    assert not torch.equal(fresh.model.state_dict()["1.weight"], saved["model"]["1.weight"])
    optimizer = resumed.phases["main"].optimizer.state_dict()
    assert optimizer["state"].keys() == saved["optimizers"]["main"]["state"].keys()
    for index, state in saved["optimizers"]["main"]["state"].items():
        for name, value in state.items():
            got = optimizer["state"][index][name]
            assert torch.equal(torch.as_tensor(got), torch.as_tensor(value)), (index, name)
    for key, tensor in saved["ema"].items():
        assert torch.equal(resumed.ema.state_dict()[key], tensor), key


def test_ctrl_c_checkpoints_and_prints_the_resume_command(toy_site, tmp_path):
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "zoo", "run", "toy.regression", *SLOW, "--checkpoint-every", "5",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=zoo_env(toy_site), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(out / "checkpoint.safetensors", 5, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # a no-op once it has exited
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


# What torchrun starts in every process instead of ``-m zoo``: in a rank other than 0 it lists each
# file created, written, renamed or removed inside the run folder (Python's audit events see them
# all, safetensors' own writes included, since zoo writes through a temp file and os.replace), then
# runs zoo as ``python -m zoo`` would.
RANK_AUDIT = """
import atexit, os, runpy, sys

if os.environ.get("RANK", "0") != "0":
    run_dir = os.path.realpath(os.environ["ZOO_TEST_RUN_DIR"])
    touched = set()

    def inside(path):
        if isinstance(path, int):
            return False
        return os.path.realpath(os.path.abspath(os.fsdecode(path))).startswith(run_dir + os.sep)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writes = any(c in (mode or "") for c in "wax+") or bool(flags & (os.O_WRONLY | os.O_RDWR))
            if writes and inside(path):
                touched.add(os.fsdecode(path))
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"):
            if args and inside(args[0]):
                touched.add(os.fsdecode(args[0]))
        elif event == "tempfile.mkstemp" and inside(args[0]):
            touched.add(args[0])

    sys.addaudithook(hook)
    report = os.path.join(os.environ["ZOO_TEST_AUDIT"], "rank" + os.environ["RANK"] + ".txt")
    atexit.register(lambda: open(report, "w").write("\\n".join(sorted(touched)) + "\\n"))

sys.argv[0] = "zoo"
runpy.run_module("zoo", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_torchrun_two_processes_match_one(toy_site, tmp_path):
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "audited_zoo.py").write_text(RANK_AUDIT)
    env = zoo_env(toy_site, OMP_NUM_THREADS="1", ZOO_TEST_AUDIT=str(audit),
                  ZOO_TEST_RUN_DIR=str(tmp_path / "two"))
    common = ["run", "toy.regression", "--epochs", "1", "--precision", "fp32", "--set", "model.dropout=0",
              "--set", "train.log_every=1"]
    single = run_zoo([*common, "--batch-size", "16", "--out", str(tmp_path / "one")], env)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--standalone", str(audit / "audited_zoo.py"), *common, "--batch-size", "8",
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
    # only rank 0 writes into the run folder: rank 1 touched nothing there
    assert (audit / "rank1.txt").read_text().strip() == "", (audit / "rank1.txt").read_text()
    assert not (audit / "rank0.txt").exists()  # the audit hook ran in rank 1 only
