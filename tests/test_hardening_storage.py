"""Hostile storage input (issue 14): registries, weight files, cards, downloads, checkpoints.

Every case ends in one ``zoo: error:`` line and exit 1 or 2, never a traceback, a hang, a lost
file or a read outside the registry. Real files, real safetensors, a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from zoo.cli import cli, json_line
from zoo.errors import printable
from zoo.storage import files, hub, publish, transfer, weights

from conftest import run_zoo, zoo_env

CONTROL = ["\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x9b31m", "\x07\x08", "\r\x1b[1A"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, code: int, *needles: str) -> str:
    """The command failed cleanly: the exit code, no exception escaped, exactly one error line."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("zoo: error:")]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def toy_weights(path: Path, edit_config=None, edit_tensors=None, metrics=None) -> Path:
    """A real toy.regression weight file: its model's tensors and a card with its config."""
    from zoo.experiment import assemble, resolve

    config = resolve("toy.regression")
    tensors = {k: v.detach().clone() for k, v in assemble(config).build_model().state_dict().items()}
    card = config.to_dict()
    if edit_config:
        edit_config(card)
    if edit_tensors:
        edit_tensors(tensors)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={
        "zoo.experiment": "toy.regression", "zoo.config": json.dumps(card),
        "zoo.metrics": json.dumps(metrics if metrics is not None else {"mse": 0.5, "split": "test"})})
    return path


def index_of(reg: Path) -> dict:
    return json.loads((reg / "index.json").read_text())


def write_index(reg: Path, index: dict) -> None:
    (reg / "index.json").write_text(json.dumps(index))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())


@pytest.fixture
def reg(tmp_path, toy):
    """A registry folder holding toy.regression:default (mse 0.5), published the ordinary way."""
    registry = tmp_path / "registry"
    publish.publish(toy_weights(tmp_path / "first.safetensors"), registry)
    return registry


# ------------------------------------------------------------------ 1. publish deletes only its own files


def plant(reg: Path, url: str) -> Path | None:
    """Make the replaced entry's url name a file the registry does not own."""
    target = reg / url
    if url == "index.json":
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("precious")
    return target


@pytest.mark.parametrize("url", ["index.json", "README.md", ".git/config",
                                 "toy.regression/notes.safetensors", "other.name/default-0123.safetensors",
                                 "toy.regression/default-000000000000.safetensors"])
def test_publish_never_deletes_what_an_entry_url_names(reg, tmp_path, url):
    index = index_of(reg)
    entry = index["weights"]["toy.regression:default"]
    owned = reg / entry["url"]
    target = plant(reg, url)
    entry["url"] = url
    write_index(reg, index)
    better = toy_weights(tmp_path / "better.safetensors", metrics={"mse": 0.1, "split": "test"},
                         edit_tensors=lambda t: t["1.bias"].add_(1))
    result = invoke("publish", str(better), "--registry", str(reg))
    assert result.exit_code == 0, result.output
    assert target.is_file()  # index.json (rewritten), README, .git/config …: all still there
    if url != "index.json":
        assert target.read_text() == "precious"
    assert owned.is_file()  # the entry no longer names it: not provably the registry's own
    new = index_of(reg)["weights"]["toy.regression:default"]
    assert new["metrics"]["mse"] == 0.1 and (reg / new["url"]).is_file()


def test_publish_replaces_its_own_file_but_not_a_symlink_out(reg, tmp_path):
    index = index_of(reg)
    old = reg / index["weights"]["toy.regression:default"]["url"]
    outside = tmp_path / "outside.safetensors"
    shutil.copy(old, outside)
    old.unlink()
    old.symlink_to(outside)  # the owned name, but a link out of the registry
    better = toy_weights(tmp_path / "b.safetensors", metrics={"mse": 0.2, "split": "test"},
                         edit_tensors=lambda t: t["1.bias"].add_(1))
    assert invoke("publish", str(better), "--registry", str(reg)).exit_code == 0
    assert outside.is_file()
    old.unlink()  # now an ordinary replacement: the registry's own old file goes
    second = index_of(reg)["weights"]["toy.regression:default"]
    best = toy_weights(tmp_path / "c.safetensors", metrics={"mse": 0.05, "split": "test"},
                       edit_tensors=lambda t: t["1.bias"].add_(2))
    assert invoke("publish", str(best), "--registry", str(reg)).exit_code == 0
    assert not (reg / second["url"]).exists()
    assert [p.name for p in (reg / "toy.regression").iterdir()] == \
        [Path(index_of(reg)["weights"]["toy.regression:default"]["url"]).name]


@pytest.mark.parametrize("stage", ["copy", "index"])
def test_disk_full_while_publishing_leaves_the_registry_as_it_was(reg, tmp_path, monkeypatch, stage):
    before_files, before_index = files_under(reg), (reg / "index.json").read_bytes()

    def full(*args, **kwargs):
        if stage == "copy":
            Path(args[1]).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if stage == "copy":
        monkeypatch.setattr(publish.shutil, "copyfile", full)
    else:
        monkeypatch.setattr(publish, "atomic_write_text", full)
    better = toy_weights(tmp_path / "b.safetensors", metrics={"mse": 0.1, "split": "test"},
                         edit_tensors=lambda t: t["1.bias"].add_(1))
    result = invoke("publish", str(better), "--registry", str(reg))
    one_line_error(result, 1, "No space left on device", "nothing was published")
    assert files_under(reg) == before_files  # no unindexed weight file, no temp file
    assert (reg / "index.json").read_bytes() == before_index


# ------------------------------------------------------------------ 2. a card is checked before anything is built


def _set(section: str, key: str, value):
    def edit(card: dict) -> None:
        card[section][key] = value
    return edit


def _replace(section: str, value):
    def edit(card: dict) -> None:
        card[section] = value
    return edit


BAD_CARDS = {
    "huge width": (_set("model", "hidden", 20000), "builds a model of"),
    "width beyond int64": (_set("model", "hidden", 1e308), "model.hidden"),
    "dropout 1e308": (_set("model", "dropout", 1e308), "model"),
    "dropout nan": (_set("model", "dropout", math.nan), "model"),
    "width a string": (_set("model", "hidden", "wide"), "model.hidden"),
    "task a string": (_replace("task", "toy-regression"), "'task' must be an object"),
    "model name a list": (_set("model", "name", ["toy-mlp"]), "'model' must be an object with a string"),
    "data name a number": (_set("data", "name", 7), "'data' must be an object with a string"),
    "unknown model": (_set("model", "name", "no-such-model"), "no-such-model"),
    "train a list": (_replace("train", [1, 2]), "'train' must be an object"),
    "experiment missing": (lambda card: card.pop("experiment"), "'experiment' must be a string"),
    "unknown setting": (_set("model", "evil", 1), "model.evil"),
}


@pytest.mark.parametrize("case", list(BAD_CARDS))
def test_bad_card_is_refused_before_the_model_is_built(tmp_path, toy, monkeypatch, case):
    edit, needle = BAD_CARDS[case]
    path = toy_weights(tmp_path / "w.safetensors", edit_config=edit)
    real_builds = []
    original = toy.MLP.build

    def build(self, spec):
        module = original(self, spec)
        if next(module.parameters()).device.type != "meta":
            real_builds.append(self.config)
        return module

    monkeypatch.setattr(toy.MLP, "build", build)
    one_line_error(invoke("eval", "toy.regression", "--weights", str(path), "--json"), 2, needle)
    assert real_builds == []  # refused on the meta device (or before), never allocated


def test_good_card_still_loads_and_set_cannot_inflate_it(tmp_path, toy):
    path = toy_weights(tmp_path / "w.safetensors")
    result = invoke("eval", "toy.regression", "--weights", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert math.isfinite(json.loads(result.stdout)["mse"])
    one_line_error(invoke("eval", "toy.regression", "--weights", str(path), "--set", "model.hidden=5000"),
                   2, "builds a model of")


def test_remote_backbone_in_a_card_is_refused_offline_without_a_connection(tmp_path, monkeypatch):
    """``backbone=hf-hub:…`` would make timm fetch a config while building: not with ZOO_OFFLINE=1."""
    import socket

    from zoo.experiment import resolve
    from zoo.plugins import catalog

    reg = catalog()
    name = next(n for n, e in reg.tables["experiments"].items()
                if "backbone" in reg.tables["models"][e.obj.model].obj.Config.__dataclass_fields__)
    card = resolve(name).to_dict()
    attempts = []
    monkeypatch.setattr(socket.socket, "connect", lambda *a: attempts.append(a))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    for backbone in ("hf-hub:timm/resnet18.a1_in1k", "HF_HUB:x/y", "https://example.org/net"):
        card["model"]["backbone"] = backbone
        path = tmp_path / "w.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"zoo.experiment": name,
                                                              "zoo.config": json.dumps(card)})
        one_line_error(invoke("eval", name, "--weights", str(path)), 2, "remote resource",
                       "ZOO_OFFLINE=1")
    assert attempts == []


# ------------------------------------------------------------------ wrong dtypes, NaN weights, valid JSON


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float8_e4m3fn, torch.uint8])
def test_weights_of_a_wrong_dtype_are_refused(tmp_path, toy, dtype):
    def cast(tensors):
        tensors["1.weight"] = tensors["1.weight"].to(dtype)

    path = toy_weights(tmp_path / "w.safetensors", edit_tensors=cast)
    one_line_error(invoke("eval", "toy.regression", "--weights", str(path)), 1, "wrong dtype",
                   "1.weight", "vs model float32")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_weights_are_refused(tmp_path, toy, value):
    def poison(tensors):
        tensors["4.bias"][0] = value

    path = toy_weights(tmp_path / "w.safetensors", edit_tensors=poison)
    one_line_error(invoke("eval", "toy.regression", "--weights", str(path), "--json"), 2,
                   "'4.bias'", "NaN or infinite")


def test_half_precision_files_still_load(tmp_path, toy):
    def half(tensors):
        for key in tensors:
            tensors[key] = tensors[key].to(torch.float16)

    path = toy_weights(tmp_path / "w.safetensors", edit_tensors=half)
    assert invoke("eval", "toy.regression", "--weights", str(path)).exit_code == 0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_output_stays_valid_with_a_non_finite_metric(tmp_path, toy, monkeypatch, value):
    import zoo.training.loop

    monkeypatch.setattr(zoo.training.loop, "evaluate", lambda *a, **k: {"mse": value, "mae": 0.5})
    path = toy_weights(tmp_path / "w.safetensors")
    result = invoke("eval", "toy.regression", "--weights", str(path), "--json")
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert parsed["mse"] is None and parsed["mae"] == 0.5
    assert "mse is" in result.stderr and "written as null" in result.stderr
    assert json.loads(json_line({"a": [1.0, value], "b": {"c": value}})) == {"a": [1.0, None],
                                                                            "b": {"c": None}}


# ------------------------------------------------------------------ 5. nothing outside the registry


def test_symlinked_weight_file_out_of_a_local_registry_is_refused(reg, tmp_path, monkeypatch):
    index = index_of(reg)
    entry = index["weights"]["toy.regression:default"]
    secret = tmp_path / "secret.safetensors"
    shutil.copy(reg / entry["url"], secret)  # even an outside file with the right hash
    (reg / entry["url"]).unlink()
    (reg / entry["url"]).symlink_to(secret)
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    line = one_line_error(invoke("pull", "toy.regression"), 1, "outside the registry")
    assert str(secret) not in line and files.sha256_file(secret) not in line
    assert not hub.weights_dir().exists() or not any(hub.weights_dir().rglob("*.safetensors"))


def test_symlinked_name_folder_out_of_a_local_registry_is_refused(reg, tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere"
    (reg / "toy.regression").rename(outside)
    (reg / "toy.regression").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    one_line_error(invoke("pull", "toy.regression"), 1, "outside the registry")


def test_symlinked_index_out_of_a_local_registry_is_refused(reg, tmp_path, monkeypatch):
    outside = tmp_path / "outside-index.json"
    (reg / "index.json").rename(outside)
    (reg / "index.json").symlink_to(outside)
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    result = invoke("pull", "toy.regression")
    assert result.exit_code in (1, 2) and "resolves outside its folder" in result.output
    assert isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------ 6. index fields: refused on write, skipped on read


@pytest.mark.parametrize("args,needle", [
    (["--tag", ""], "invalid tag ''"),
    (["--tag", "a/b"], "invalid tag"),
    (["--tag", "a..b"], "invalid tag"),
    (["--tag", "x:y"], "invalid tag"),
    (["--tag", "ok\x1b[2J"], "invalid tag"),
    (["--max-mb", "nan"], "--max-mb"),
    (["--max-mb", "inf"], "--max-mb"),
    (["--max-mb", "0"], "--max-mb"),
    (["--max-mb", "-1"], "--max-mb"),
])
def test_publish_refuses_bad_options(reg, tmp_path, args, needle):
    before = files_under(reg), (reg / "index.json").read_bytes()
    other = toy_weights(tmp_path / "o.safetensors", edit_tensors=lambda t: t["1.bias"].add_(1))
    one_line_error(invoke("publish", str(other), "--registry", str(reg), *args), 2, needle)
    assert (files_under(reg), (reg / "index.json").read_bytes()) == before


@pytest.mark.parametrize("summary,metrics,needle", [
    ({"main_metric": ["mse"]}, {"mse": 0.1}, "main_metric"),
    ({"main_metric": {"a": 1}}, {"mse": 0.1}, "main_metric"),
    ({}, {"mse": math.nan}, "metric 'mse'"),
    ({}, {"mse": math.inf}, "metric 'mse'"),
    ({}, {"mse": [0.1]}, "metric 'mse'"),
    ({}, {"mse": 0.1, "nested": {"a": 1}}, "metric 'nested'"),
])
def test_publish_refuses_bad_index_fields(reg, tmp_path, summary, metrics, needle):
    run = tmp_path / "run"
    toy_weights(run / "model.safetensors", metrics=metrics, edit_tensors=lambda t: t["1.bias"].add_(1))
    (run / "summary.json").write_text(json.dumps(summary))
    before = files_under(reg), (reg / "index.json").read_bytes()
    one_line_error(invoke("publish", str(run), "--registry", str(reg), "--tag", "new"), 2, needle)
    assert (files_under(reg), (reg / "index.json").read_bytes()) == before


BAD_ENTRIES = {
    "main_metric a list": {"main_metric": ["mse"]},
    "nan metric": {"metrics": {"mse": math.nan}},
    "infinite metric": {"metrics": {"mse": -math.inf}},
    "metrics a list": {"metrics": [1, 2]},
    "direction a string": {"higher_is_better": "yes"},
    "size a string": {"size": "big"},
    "sha256 short": {"sha256": "abc"},
    "url a number": {"url": 7},
    "card a list": {"card": [1]},
    "experiment a dict": {"experiment": {"x": 1}},
}


def test_bad_index_entries_are_skipped_with_one_warning_each(reg, monkeypatch):
    index = index_of(reg)
    good = index["weights"]["toy.regression:default"]
    for i, change in enumerate(BAD_ENTRIES.values()):
        index["weights"][f"toy.regression:bad{i}"] = {**good, **change}
    index["weights"]["no-tag-key"] = good
    index["weights"]["toy.gan:default"] = {**good, "main_metric": ["x"]}
    (reg / "index.json").write_text(json.dumps(index))  # NaN/Infinity as Python's json writes them
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    result = invoke("list", "--pretrained")
    assert result.exit_code == 0 and result.exception is None, result.output
    warnings = [line for line in result.stderr.splitlines() if "skipping entry" in line]
    assert len(warnings) == len(BAD_ENTRIES) + 2, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "mse=0.5" in rows["toy.regression"] and "toy.gan" not in rows
    one_line_error(invoke("pull", "toy.regression:bad0"), 1, "malformed", "main_metric")
    assert invoke("pull", "toy.regression").exit_code == 0


# ------------------------------------------------------------------ terminal control characters


@pytest.mark.parametrize("control", CONTROL)
def test_card_index_and_plugin_text_is_printed_without_control_characters(reg, tmp_path, toy,
                                                                          monkeypatch, control):
    bad = f"evil{control}metric"
    path = toy_weights(tmp_path / "w.safetensors", metrics={bad: 0.5, "mse": 0.4, "split": control})
    info = invoke("info", str(path))
    assert info.exit_code == 0 and "evilmetric" in info.output
    index = index_of(reg)
    entry = index["weights"]["toy.regression:default"]
    entry["metrics"] = {bad: 1.0}
    entry["main_metric"] = bad
    write_index(reg, index)
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    monkeypatch.setattr(toy.Regression, "__doc__", f"Toy {control} task")
    listed = invoke("list", "--pretrained")
    assert listed.exit_code == 0 and "evilmetric=1" in listed.output
    tasks = invoke("list", "--kind", "tasks")
    entry["url"] = f"toy.regression/{control}.safetensors"
    write_index(reg, index)
    failed = invoke("pull", "toy.regression")
    assert failed.exit_code == 1
    for result in (info, listed, tasks, failed):
        assert printable(result.output) == result.output, repr(result.output)
    assert printable("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


# ------------------------------------------------------------------ 7. partial downloads and slow servers


def test_every_pull_sweeps_dead_partial_downloads_even_on_a_cache_hit(reg, monkeypatch):
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    cached = Path(invoke("pull", "toy.regression").stdout.strip())
    other = hub.weights_dir() / "some.other"
    other.mkdir()
    now = time.time()
    parts = {}
    for label, folder, age, locked in [("killed long ago", cached.parent, 7200, False),
                                       ("killed a minute ago", other, 60, False),
                                       ("stalled for hours, locked", cached.parent, 7200, True),
                                       ("live download", other, 60, True),
                                       ("just created", cached.parent, 1, False)]:
        part = folder / f".{label.replace(' ', '-')}.safetensors.x.part"
        part.write_bytes(b"\0" * 1000)
        os.utime(part, (now - age, now - age))
        parts[label] = (part, open(part, "rb") if locked else None)
        if locked:
            fcntl.flock(parts[label][1], fcntl.LOCK_EX)
    try:
        again = invoke("pull", "toy.regression")  # a cache hit: no download at all
        assert again.exit_code == 0 and Path(again.stdout.strip()) == cached
        left = {label for label, (part, _) in parts.items() if part.exists()}
        assert left == {"live download", "just created"}
    finally:
        for _, lock in parts.values():
            if lock:
                lock.close()


class Dripping:
    """An HTTP server that announces a file, then sends one byte every ``every`` seconds."""

    def __init__(self, size: int = 1000, every: float = 0.2) -> None:
        self.stop = threading.Event()
        dripping = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    for _ in range(size):
                        if dripping.stop.wait(every):
                            return
                        self.wfile.write(b"{")
                        self.wfile.flush()
                except OSError:
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dripping():
    server = Dripping()
    yield server
    server.close()


def test_a_dripping_server_meets_the_overall_deadline(reg, dripping, monkeypatch):
    index = index_of(reg)
    index["weights"]["toy.regression:default"].update(url=f"{dripping.url}/w.safetensors", size=1000)
    write_index(reg, index)
    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", "1")
    start = time.monotonic()
    one_line_error(invoke("pull", "toy.regression"), 1, "deadline", "ZOO_DOWNLOAD_TIMEOUT")
    assert time.monotonic() - start < 10
    assert [p for p in hub.weights_dir().rglob("*") if p.is_file()] == []  # no .part left
    monkeypatch.setenv("ZOO_REGISTRY", f"{dripping.url}/index.json")  # a dripping index too
    start = time.monotonic()
    result = invoke("pull", "toy.regression")
    assert result.exit_code in (1, 2) and "did not arrive within 1 s" in result.output
    assert isinstance(result.exception, SystemExit) and time.monotonic() - start < 10


@pytest.mark.parametrize("value", ["nan", "0", "-5", "soon", "inf"])
def test_bad_download_timeout_is_refused(reg, monkeypatch, value):
    index = index_of(reg)
    index["weights"]["toy.regression:default"]["url"] = "http://127.0.0.1:9/w.safetensors"
    write_index(reg, index)
    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", value)
    one_line_error(invoke("pull", "toy.regression"), 2, "ZOO_DOWNLOAD_TIMEOUT", "positive number")


def test_default_deadline_grows_with_the_size():
    assert transfer.download_seconds(None) == transfer.DOWNLOAD_FLOOR_SECONDS
    assert transfer.download_seconds(1 << 30) > transfer.download_seconds(1 << 20) > transfer.DOWNLOAD_FLOOR_SECONDS


# ------------------------------------------------------------------ 8. only regular files are read


@pytest.fixture
def fifo(tmp_path):
    def make(name: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return path
    return make


@pytest.mark.parametrize("args", [["info", "{fifo}"], ["eval", "toy.regression", "--weights", "{fifo}"],
                                  ["pull", "toy.regression"], ["list", "--pretrained"],
                                  ["predict", "toy.regression", "{fifo}", "--weights", "nowhere.safetensors"]])
def test_a_fifo_is_refused_not_waited_on(tmp_path, toy, toy_site, fifo, args):
    """In a real process with a timeout: a hang here must fail the test, not stall the suite."""
    registry = tmp_path / "registry"
    if args[0] == "pull":  # the registry's weight file is a FIFO
        publish.publish(toy_weights(tmp_path / "w.safetensors"), registry, max_mb=None)
        target = registry / index_of(registry)["weights"]["toy.regression:default"]["url"]
        target.unlink()
        os.mkfifo(target)
    elif args[0] == "list":  # the index itself is a FIFO
        fifo("registry/index.json")
    weights_fifo = fifo("w.safetensors") if "{fifo}" in args else None
    env = zoo_env(toy_site, ZOO_HOME=str(tmp_path / "home"), ZOO_REGISTRY=str(registry))
    argv = [a.replace("{fifo}", str(weights_fifo)) for a in args]
    done = run_zoo(argv, env, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    if args[0] == "list":
        assert done.returncode == 0 and "not a regular file" in done.stderr
    else:
        assert done.returncode in (1, 2) and "not a regular file" in done.stderr, done.stderr


@pytest.mark.parametrize("where", ["w.safetensors", "run/model.safetensors"])
def test_publishing_a_fifo_says_so(tmp_path, fifo, where):
    made = fifo(where)
    source = made if where == "w.safetensors" else made.parent
    one_line_error(invoke("publish", str(source), "--registry", str(tmp_path / "reg")), 2,
                   "not a regular file")
    assert not (tmp_path / "reg").exists()


def test_check_regular_names_the_kind(tmp_path, fifo):
    with pytest.raises(weights.UsageError, match="not a regular file"):
        weights.read_header(fifo("x.safetensors"))
    with pytest.raises(weights.UsageError, match="directory"):
        weights.read_header(tmp_path)
    text = tmp_path / "notes.pt"
    text.write_text("just some text, not weights")
    with pytest.raises(weights.ZooError, match="not a PyTorch weights file"):
        weights.load_file(text)
    as_st = tmp_path / "notes.safetensors"
    as_st.write_text("just some text, not weights")
    with pytest.raises(weights.ZooError, match="not a safetensors file .it starts with text"):
        weights.load_file(as_st)


# ------------------------------------------------------------------ tampered checkpoints on --resume


def _retamper(path: Path, meta_edit=None, tensor_edit=None) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    if meta_edit:
        meta = meta_edit(meta)
    if tensor_edit:
        tensor_edit(tensors)
    save_file(tensors, str(path), metadata=meta)


def _state_edit(change):
    def edit(meta: dict) -> dict:
        state = json.loads(meta["zoo.checkpoint"])
        change(state)
        return {**meta, "zoo.checkpoint": json.dumps(state)}
    return edit


def _drop_pair(name: str):
    def change(state: dict) -> None:
        state["__dict__"] = [pair for pair in state["__dict__"] if pair[0] != name]
    return change


def _set_position(key: str, value):
    def change(state: dict) -> None:
        position = next(v for k, v in state["__dict__"] if k == "position")
        for pair in position["__dict__"]:
            if pair[0] == key:
                pair[1] = value
    return change


def _reshape_first_model_tensor(tensors: dict) -> None:
    key = sorted(k for k in tensors if k.startswith("s.0."))[0]
    tensors[key] = torch.zeros(3, 3)


TAMPERED = {
    "metadata not JSON": dict(meta_edit=lambda m: {**m, "zoo.checkpoint": "{not json"}),
    "metadata a list": dict(meta_edit=lambda m: {**m, "zoo.checkpoint": "[1, 2]"}),
    "no zoo state": dict(meta_edit=lambda m: {}),
    "dangling tensor reference": dict(tensor_edit=lambda t: t.pop(sorted(t)[0])),
    "wrong shape": dict(tensor_edit=_reshape_first_model_tensor),
    "position missing": dict(meta_edit=_state_edit(_drop_pair("position"))),
    "model missing": dict(meta_edit=_state_edit(_drop_pair("model"))),
    "epoch a string": dict(meta_edit=_state_edit(_set_position("epoch", "two"))),
    "step negative": dict(meta_edit=_state_edit(_set_position("global_step", -3))),
    "best a list": dict(meta_edit=_state_edit(_set_position("best", [1]))),
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One short toy run with a checkpoint, trained once for all tampering cases."""
    import sys

    from zoo import plugins

    here = Path(__file__).parent
    sys.path.insert(0, str(here))
    import zoo_toy

    plugins.register_plugin(zoo_toy, "toy")
    run = tmp_path_factory.mktemp("run") / "toy"
    old_home = os.environ.get("ZOO_HOME")
    os.environ["ZOO_HOME"] = str(run.parent / "home")
    try:
        result = invoke("run", "toy.regression", "--epochs", "1", "--limit-batches", "2", "--out", str(run))
        assert result.exit_code == 0, result.output
    finally:
        if old_home is None:
            os.environ.pop("ZOO_HOME", None)
        else:
            os.environ["ZOO_HOME"] = old_home
        plugins.unregister_plugin("toy")
        sys.path.remove(str(here))
    return run


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_checkpoint_on_resume_is_one_line(finished_run, tmp_path, toy, case):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    _retamper(run / "checkpoint.safetensors", **TAMPERED[case])
    result = invoke("run", "toy.regression", "--resume", str(run))
    one_line_error(result, 1, "checkpoint")


@pytest.mark.parametrize("content", ["text", "fifo"])
def test_checkpoint_that_is_not_a_checkpoint_is_one_line(finished_run, tmp_path, toy, content):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoint.safetensors").unlink()
    if content == "fifo":
        os.mkfifo(run / "checkpoint.safetensors")
    else:
        (run / "checkpoint.safetensors").write_text("hello")
    result = invoke("run", "toy.regression", "--resume", str(run))
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), result.output
    assert "checkpoint" in result.output


def test_disk_full_while_downloading_caches_nothing(reg, monkeypatch):
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(transfer, "_copy", full)
    one_line_error(invoke("pull", "toy.regression"), 1, "No space left on device", "nothing was cached")
    assert [p for p in hub.weights_dir().rglob("*") if p.is_file()] == []


# ------------------------------------------------------------------ fuzz: card JSON and index JSON


def json_values():
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([0, -1, 1, 8, 1e308, -1e308, "", "toy-mlp", "hf-hub:x/y",
                                         "https://example.org/x", "\x1b[2J", "../../etc/passwd"]),
                        st.text(max_size=8))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner,
                                                                         max_size=3)),
                        max_leaves=6)


def clean_exit(result, args) -> None:
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    if result.exit_code:
        assert sum(line.startswith("zoo: error: ") for line in result.output.splitlines()) == 1, \
            (args, result.output)


def untouched_outside(tmp_path: Path):
    """Files outside this test's folder that a hostile card or index could aim at."""
    project = Path(__file__).parents[1]
    return sorted(p.name for p in project.iterdir()), sorted(p.name for p in (project / "registry").iterdir())


def test_fuzzed_card_json_ends_in_a_clean_exit(tmp_path, toy, monkeypatch):
    """Random JSON in any field or section of a card's config (or as the whole config): `zoo eval`
    and `zoo info` exit 0, 1 or 2 with at most one error line, and never raise. Evaluation itself
    and the dataset are cut short: what is fuzzed is everything that reads the card."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import zoo.training.loop
    from zoo.experiment import resolve

    monkeypatch.setattr(zoo.training.loop, "evaluate", lambda *a, **k: {"mse": 0.5})
    monkeypatch.setattr(toy.Blobs, "split", lambda self, name, seed: list(range(4)))
    config = resolve("toy.regression").to_dict()
    paths = [(s, k) for s in ("task", "data", "model", "train") for k in config[s]]
    paths += [("model", "evil"), ("task", "name"), ("model", "name"), ("data", "name")]
    edits = st.one_of(
        st.tuples(st.sampled_from(paths), json_values()).map(lambda pv: ("field", *pv)),
        st.tuples(st.sampled_from(["task", "data", "model", "train", "experiment"]), json_values())
        .map(lambda sv: ("section", sv[0], sv[1])),
        json_values().map(lambda v: ("whole", None, v)))
    before = untouched_outside(tmp_path)
    path = tmp_path / "fuzz.safetensors"

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.lists(edits, min_size=1, max_size=3))
    def check(changes):
        def edit(card: dict) -> None:
            for kind, where, value in changes:
                if kind == "field" and isinstance(card.get(where[0]), dict):
                    card[where[0]][where[1]] = value
                elif kind == "section":
                    card[where] = value
                elif kind == "whole":
                    card.clear()
                    card["whole"] = value
        toy_weights(path, edit_config=edit)
        for args in (["eval", "toy.regression", "--weights", str(path), "--json"], ["info", str(path)]):
            result = invoke(*args)
            clean_exit(result, (args, changes))
            if args[0] == "eval" and result.exit_code == 0:
                json.loads(result.stdout)

    check()
    assert untouched_outside(tmp_path) == before


def test_fuzzed_index_json_ends_in_a_clean_exit(reg, tmp_path, monkeypatch):
    """Random JSON for the fields of index entries (and for whole entries): `zoo list` still lists
    the good entry, `zoo pull` of a fuzzed one exits 0, 1 or 2, and nothing outside the registry
    and the cache is read into the cache or written."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    good_index = index_of(reg)
    good = good_index["weights"]["toy.regression:default"]
    fields = ["url", "sha256", "size", "experiment", "tag", "main_metric", "higher_is_better",
              "metrics", "card", "published"]
    entry = st.one_of(
        st.dictionaries(st.sampled_from(fields), json_values(), max_size=4).map(lambda d: {**good, **d}),
        json_values())
    keys = st.one_of(st.sampled_from(["toy.regression:fuzz", "toy.gan:default", "x:y", "bad", ":", "a:b:c"]),
                     st.text(max_size=10))
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    before = untouched_outside(tmp_path)

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(keys, entry, min_size=1, max_size=3))
    def check(entries):
        write_index(reg, {**good_index, "weights": {**good_index["weights"], **entries}})
        listed = invoke("list", "--pretrained")
        clean_exit(listed, entries)
        assert listed.exit_code == 0 and "toy.regression" in listed.stdout
        for key in entries:
            if isinstance(key, str) and key.partition(":")[0] and ":" in key:
                clean_exit(invoke("pull", key), (key, entries[key]))
        cached = [p for p in hub.weights_dir().rglob("*") if p.is_file()] if hub.weights_dir().exists() else []
        assert all(p.read_bytes() != b"outside" for p in cached)
        assert secret.read_text() == "outside"

    check()
    assert untouched_outside(tmp_path) == before


@pytest.mark.parametrize("content", [b"hello, these are not images\n", b"", b"PK\x03\x04zip"])
def test_a_text_file_named_npy_is_called_what_it_is(tmp_path, content):
    """numpy says "Cannot load file containing pickled data" for any non-.npy bytes."""
    from zoo.plugins import catalog

    data = tmp_path / "clocks"
    data.mkdir()
    (data / "images.npy").write_bytes(content)
    (data / "labels.npy").write_bytes(content)
    dataset_cls = catalog().get("datasets", "clock-npy").obj
    dataset = dataset_cls(dataset_cls.Config(root=str(data)))
    with pytest.raises(weights.UsageError, match=r"images.npy is not a .npy file \(it starts with") as info:
        dataset.split("train", 0)
    assert "pickled" not in str(info.value)


@pytest.mark.parametrize("control", CONTROL)
def test_a_failing_plugins_error_text_cannot_drive_the_terminal(control):
    import types

    from zoo import hookimpl, plugins

    module = types.ModuleType("evil_plugin")

    @hookimpl
    def zoo_register_models(register):
        raise RuntimeError(f"boom{control}done")

    module.zoo_register_models = zoo_register_models
    plugins.register_plugin(module, "evil")
    try:
        for args in (["list"], ["plugins"]):
            result = invoke(*args)
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert "boom" in result.output and printable(result.output) == result.output, \
                repr(result.output)
    finally:
        plugins.unregister_plugin("evil")


def test_publishing_beside_malformed_entries_keeps_them_and_works(reg, tmp_path):
    index = index_of(reg)
    good = index["weights"]["toy.regression:default"]
    index["weights"]["toy.regression:nan"] = {**good, "metrics": {"mse": math.nan}}
    index["weights"]["toy.regression:list"] = {**good, "main_metric": ["mse"]}
    write_index(reg, index)
    other = toy_weights(tmp_path / "o.safetensors", edit_tensors=lambda t: t["1.bias"].add_(1))
    result = invoke("publish", str(other), "--registry", str(reg), "--tag", "fresh")
    assert result.exit_code == 0, result.output
    after = index_of(reg)["weights"]
    assert math.isnan(after["toy.regression:nan"]["metrics"]["mse"])  # not ours to change
    assert after["toy.regression:list"]["main_metric"] == ["mse"] and "toy.regression:fresh" in after


def test_publish_sweeps_temp_files_of_killed_publishes_only(reg, tmp_path):
    folder = reg / "toy.regression"
    now = time.time()
    dead, live = folder / ".default.killed.part", folder / ".default.running.part"
    for part in (dead, live):
        part.write_bytes(b"\0" * 100)
        os.utime(part, (now - 120, now - 120))
    with open(live, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a publish still writing it
        other = toy_weights(tmp_path / "o.safetensors", edit_tensors=lambda t: t["1.bias"].add_(1))
        assert invoke("publish", str(other), "--registry", str(reg), "--tag", "new").exit_code == 0
    assert not dead.exists() and live.exists()
    assert sorted(p.name for p in folder.glob(".*.part")) == [live.name]  # its own temp file is gone
