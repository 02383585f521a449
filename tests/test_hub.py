"""Registry, verified downloads, the cache and publishing, against a registry served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from zoo import loading
from zoo.cli import cli
from zoo.storage import files, hub, publish, transfer

from conftest import SUBPROCESS_TIMEOUT, assert_no_crash, run_zoo, zoo_env


class Served:
    """A folder over HTTP with faults on demand: tampered, truncated or failing paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.tamper: set[str] = set()
        self.truncate: set[str] = set()
        self.fail: set[str] = set()
        served = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                served.requests.append(path)
                file = served.root / path.lstrip("/")
                if path in served.fail:
                    self.send_error(500)
                    return
                if not file.is_file():
                    self.send_error(404)
                    return
                body = bytearray(file.read_bytes())
                if path in served.tamper:
                    body[len(body) // 2] ^= 0x01
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in served.truncate:
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(bytes(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def hits(self, suffix: str) -> int:
        return sum(r.endswith(suffix) for r in self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_weights(path: Path, mse: float = 0.5, experiment: str = "toy.regression", seed: int = 0) -> Path:
    """A small zoo weight file with a card (no training needed for transport tests)."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.randn(256, generator=g), "b": torch.randn(8, generator=g)}, str(path), metadata={
        "zoo.experiment": experiment,
        "zoo.config": json.dumps({"experiment": experiment, "task": {"name": "toy-regression"},
                                  "data": {"name": "toy-blobs"}, "model": {"name": "toy-mlp"}}),
        "zoo.metrics": json.dumps({"mse": mse, "split": "test"}),
        "zoo.version": "0.1.0", "zoo.torch_version": torch.__version__,
        "zoo.created": "2024-01-01T00:00:00+00:00"})
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def registry(tmp_path, toy):
    """A registry folder holding toy.regression:default, published the ordinary way."""
    reg = tmp_path / "registry"
    entry = publish.publish(write_weights(tmp_path / "w.safetensors"), reg)
    return reg, entry


@pytest.fixture
def server(registry, monkeypatch):
    reg, entry = registry
    served = Served(reg.parent)
    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setenv("ZOO_REGISTRY", f"{served.url}/registry/index.json")
    yield served, entry
    served.close()


def cache_files() -> list[Path]:
    root = hub.weights_dir()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_good_pull_verifies_and_caches(server):
    served, entry = server
    dest = hub.cache_path("toy.regression", "default", entry["sha256"])
    dest.parent.mkdir(parents=True)
    stale = dest.parent / f".{dest.name}.killed.part"  # left by a process killed mid-download
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.is_relative_to(hub.weights_dir())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert cache_files() == [path]  # no temp file left beside it
    assert served.hits("index.json") == 1 and served.hits(".safetensors") == 1


def test_cache_is_reused_without_a_second_download(server, monkeypatch):
    served, _ = server
    first = invoke("pull", "toy.regression:default")
    assert first.exit_code == 0, first.output
    again = invoke("pull", "toy.regression")
    assert again.exit_code == 0 and again.stdout == first.stdout
    assert served.hits(".safetensors") == 1
    monkeypatch.setenv("ZOO_OFFLINE", "1")  # offline: the cached index and file, no request at all
    before = len(served.requests)
    offline = invoke("pull", "toy.regression")
    assert offline.exit_code == 0 and offline.stdout == first.stdout
    assert len(served.requests) == before


@pytest.mark.parametrize("fault", ["tamper", "truncate"])
def test_tampered_or_truncated_file_is_refused_and_not_cached(server, fault):
    served, entry = server
    url = "/registry/" + entry["url"]
    getattr(served, fault).add(url)
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("zoo: error:") and entry["sha256"] in message
    assert ("truncated" if fault == "truncate" else "sha256 mismatch") in message
    actual = message.split("got ")[-1].split(";")[0]
    assert len(actual) == 64 and actual != entry["sha256"]
    assert cache_files() == []  # nothing cached, no temp file
    getattr(served, fault).clear()  # the next pull retries and succeeds
    assert invoke("pull", "toy.regression").exit_code == 0
    assert served.hits(".safetensors") == 2


def test_server_error_is_one_line_and_nothing_cached(server):
    served, entry = server
    served.fail.add("/registry/" + entry["url"])
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 1 and "HTTP 500" in result.output
    assert_no_crash(result)
    assert cache_files() == []
    served.fail.add("/registry/index.json")  # no index and no cached copy either
    hub._index_cache(f"{served.url}/registry/index.json").unlink()
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 1 and "HTTP 500" in result.output


@pytest.mark.parametrize("outage", ["http-500", "server-gone"])
def test_index_falls_back_to_the_cached_copy_when_the_server_is_down(server, outage):
    served, entry = server
    first = invoke("pull", "toy.regression")
    assert first.exit_code == 0, first.output
    if outage == "http-500":
        served.fail.add("/registry/index.json")
    else:
        served.close()
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 0, result.output
    assert result.stdout == first.stdout  # the same verified file, from the cache
    assert "using the cached copy of the index" in result.stderr
    assert served.hits("index.json") == (2 if outage == "http-500" else 1)


def test_list_reuses_a_fresh_cached_index_and_fetches_a_stale_one(server):
    """``zoo list --pretrained`` asks the server at most once per LIST_INDEX_MAX_AGE; a pull always asks."""
    served, _ = server
    for expected_hits in (1, 1):
        listed = invoke("list", "--pretrained")
        assert listed.exit_code == 0 and "toy.regression" in listed.output, listed.output
        assert served.hits("index.json") == expected_hits
    cached = hub._index_cache(os.environ["ZOO_REGISTRY"])
    almost = time.time() - hub.LIST_INDEX_MAX_AGE + 60
    os.utime(cached, (almost, almost))
    assert invoke("list", "--pretrained").exit_code == 0
    assert served.hits("index.json") == 1  # still fresh enough
    stale = time.time() - hub.LIST_INDEX_MAX_AGE - 60
    os.utime(cached, (stale, stale))
    assert invoke("list", "--pretrained").exit_code == 0
    assert served.hits("index.json") == 2
    assert invoke("pull", "toy.regression").exit_code == 0
    assert served.hits("index.json") == 3


def test_offline_says_what_is_missing(server, monkeypatch):
    served, _ = server
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 1 and "ZOO_OFFLINE=1" in result.output and "index" in result.output
    monkeypatch.delenv("ZOO_OFFLINE")
    hub.load_index()  # caches the index only
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    result = invoke("eval", "toy.regression", "--pretrained")
    assert result.exit_code == 1
    assert "ZOO_OFFLINE=1" in result.output and "toy.regression:default is not in the cache" in result.output
    assert served.hits(".safetensors") == 0


def test_corrupt_cache_file_is_fetched_again(server):
    served, _ = server
    path = Path(invoke("pull", "toy.regression").stdout.strip())
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 0 and "corrupt" in result.output
    assert served.hits(".safetensors") == 2 and files.sha256_file(path) == server[1]["sha256"]


def test_names_and_index_entries_cannot_escape(registry, monkeypatch):
    reg, entry = registry
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    for bad in ("../toy", "toy..regression", "toy.regression:../x", "toy.regression:a/b", ".x", "/abs"):
        result = invoke("pull", bad)
        assert result.exit_code == 2 and "invalid weights name" in result.output, (bad, result.output)
    index = json.loads((reg / "index.json").read_text())
    good = index["weights"]["toy.regression:default"]
    for url in ("../outside.safetensors", "/etc/passwd", "file:///etc/passwd", "a/../../b",
                "C:\\x.safetensors", "~/x.safetensors"):
        index["weights"]["toy.regression:default"] = {**good, "url": url}
        (reg / "index.json").write_text(json.dumps(index))
        result = invoke("pull", "toy.regression")
        assert result.exit_code == 1 and ("inside the registry" in result.output
                                          or "not allowed in an index" in result.output), url
    index["weights"]["toy.regression:default"] = {**good, "sha256": "../../../evil"}
    (reg / "index.json").write_text(json.dumps(index))
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 1 and "64 hex digits" in result.output
    assert cache_files() == []


def test_unknown_name_offers_close_matches(registry, monkeypatch):
    monkeypatch.setenv("ZOO_REGISTRY", str(registry[0] / "index.json"))
    result = invoke("pull", "toy.regresion")
    assert result.exit_code == 2 and "did you mean toy.regression:default" in result.output
    result = invoke("pull", "toy.regression:v9")
    assert result.exit_code == 2 and "no tag 'v9' for toy.regression" in result.output
    assert "published tags: default" in result.output
    empty = registry[0].parent / "empty"
    empty.mkdir()
    (empty / "index.json").write_text('{"weights": {}}')
    monkeypatch.setenv("ZOO_REGISTRY", str(empty))
    monkeypatch.setattr(hub, "project_registry", lambda: None)  # the user's registry alone
    result = invoke("eval", "toy.regression", "--pretrained")
    assert result.exit_code == 2 and "lists none yet" in result.output


def test_local_registry_works_offline_and_is_verified(registry, monkeypatch):
    reg, entry = registry
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))  # a folder: its index.json
    path = hub.fetch("toy.regression")
    assert files.sha256_file(path) == entry["sha256"] and path.is_relative_to(hub.weights_dir())
    (reg / entry["url"]).write_bytes(b"\0" * entry["size"])  # local files are verified too
    path.unlink()
    result = invoke("pull", "toy.regression")
    assert result.exit_code == 1 and "sha256 mismatch" in result.output and cache_files() == []


def test_relative_urls_resolve_against_the_index(tmp_path):
    index = hub.Index("http://host/reg/v1/index.json")
    assert index.url_of("k", {"url": "a/b.safetensors"}) == "http://host/reg/v1/a/b.safetensors"
    assert hub.Index("hf://me/repo/index.json").url_of("k", {"url": "x.safetensors"}) == \
        "hf://me/repo/x.safetensors"
    assert hub.Index(str(tmp_path / "index.json")).url_of("k", {"url": "x/y.safetensors"}) == \
        str(tmp_path / "x" / "y.safetensors")
    assert index.url_of("k", {"url": "https://cdn/x.safetensors"}) == "https://cdn/x.safetensors"


def test_url_needs_a_hash_and_is_verified(server):
    served, entry = server
    url = f"{served.url}/registry/{entry['url']}"
    result = invoke("eval", "toy.regression", "--weights", url)
    assert result.exit_code == 2 and "#sha256=" in result.output
    assert served.hits(".safetensors") == 0
    wrong = invoke("pull", f"{url}#sha256={'0' * 64}")
    assert wrong.exit_code == 1 and "sha256 mismatch" in wrong.output and cache_files() == []
    good = invoke("pull", f"{url}#sha256={entry['sha256']}")
    assert good.exit_code == 0, good.output
    assert files.sha256_file(Path(good.stdout.strip())) == entry["sha256"]
    assert invoke("pull", f"{url}#sha256={entry['sha256']}").exit_code == 0
    assert served.hits(".safetensors") == 2  # the wrong one and the good one; then the cache


def test_hf_urls_need_the_optional_extra(registry, monkeypatch):
    reg, entry = registry
    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    spec = f"hf://me/zoo-weights/{entry['url']}#sha256={entry['sha256']}"
    result = invoke("pull", spec)
    assert result.exit_code == 1 and "pip install 'zoo[hf]'" in result.output
    calls = []

    def hf_hub_download(repo_id: str, filename: str, revision: str | None = None) -> str:
        calls.append((repo_id, filename, revision))
        return str(reg / filename)

    fake = types.ModuleType("huggingface_hub")
    fake.hf_hub_download = hf_hub_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    result = invoke("pull", spec.replace("zoo-weights/", "zoo-weights@v1/"))
    assert result.exit_code == 0, result.output
    assert calls == [("me/zoo-weights", entry["url"], "v1")]
    monkeypatch.setenv("ZOO_REGISTRY", "hf://me/zoo-weights/index.json")  # a whole index on the Hub
    assert files.sha256_file(hub.fetch("toy.regression")) == entry["sha256"]
    assert calls[-2:] == [("me/zoo-weights", "index.json", None), ("me/zoo-weights", entry["url"], None)]


def test_publish_keeps_only_improvements(tmp_path, toy):
    reg = tmp_path / "reg"
    first = publish.publish(write_weights(tmp_path / "a.safetensors", mse=0.5), reg)
    worse = write_weights(tmp_path / "b.safetensors", mse=0.7, seed=1)
    result = invoke("publish", str(worse), "--registry", str(reg))
    assert result.exit_code == 1 and "not better than the published 0.5" in result.output
    same = invoke("publish", str(tmp_path / "a.safetensors"), "--registry", str(reg))
    assert same.exit_code == 1 and "already published with these exact weights" in same.output
    assert json.loads((reg / "index.json").read_text())["weights"]["toy.regression:default"]["sha256"] \
        == first["sha256"]
    better = write_weights(tmp_path / "c.safetensors", mse=0.25, seed=2)
    result = invoke("publish", str(better), "--registry", str(reg), "--dtype", "fp16")
    assert result.exit_code == 0, result.output
    index = json.loads((reg / "index.json").read_text())
    entry = index["weights"]["toy.regression:default"]
    assert entry["metrics"]["mse"] == 0.25 and entry["main_metric"] == "mse"
    assert entry["higher_is_better"] is False and entry["card"]["task"] == "toy-regression"
    assert list(index) == ["format", "weights"]
    assert entry["size"] < first["size"] and entry["card"]["dtype"] == "fp16"
    assert not (reg / first["url"]).exists() and (reg / entry["url"]).is_file()  # replaced file gone
    assert sorted(p.name for p in (reg / "toy.regression").iterdir()) == [Path(entry["url"]).name]
    other = invoke("publish", str(worse), "--registry", str(reg), "--tag", "small")
    assert other.exit_code == 0 and "toy.regression:small" in json.loads((reg / "index.json").read_text())["weights"]
    big = invoke("publish", str(worse), "--registry", str(reg), "--tag", "x", "--max-mb", "0.0001")
    assert big.exit_code == 1 and "--dtype fp16" in big.output
    assert not list(reg.rglob("*.part"))


def test_publish_force_replaces_even_a_better_entry(tmp_path, toy):
    reg = tmp_path / "reg"
    good = publish.publish(write_weights(tmp_path / "a.safetensors", mse=0.25), reg)
    worse = write_weights(tmp_path / "b.safetensors", mse=0.7, seed=1)
    assert invoke("publish", str(worse), "--registry", str(reg)).exit_code == 1
    forced = invoke("publish", str(worse), "--registry", str(reg), "--force")
    assert forced.exit_code == 0, forced.output
    entry = json.loads((reg / "index.json").read_text())["weights"]["toy.regression:default"]
    assert entry["metrics"]["mse"] == 0.7 and entry["sha256"] == files.sha256_file(worse)
    assert (reg / entry["url"]).is_file() and not (reg / good["url"]).exists()


def test_publish_then_pull_round_trip_over_http(tmp_path, toy, monkeypatch):
    run = tmp_path / "run"
    assert invoke("run", "toy.regression", "--epochs", "1", "--out", str(run)).exit_code == 0
    reg = tmp_path / "site" / "registry"
    result = invoke("publish", str(run), "--registry", str(reg))
    assert result.exit_code == 0, result.output
    card_mse = json.loads((run / "summary.json").read_text())["test"]["mse"]
    entry = json.loads((reg / "index.json").read_text())["weights"]["toy.regression:default"]
    assert entry["main_metric"] == "mse" and entry["higher_is_better"] is False
    assert entry["metrics"]["mse"] == card_mse and entry["card"]["model"] == "toy-mlp"
    served = Served(tmp_path / "site")
    try:
        monkeypatch.delenv("ZOO_OFFLINE")
        monkeypatch.setenv("ZOO_REGISTRY", f"{served.url}/registry/index.json")
        listed = invoke("list", "--pretrained")
        assert listed.exit_code == 0 and "toy.regression" in listed.output
        assert f"mse={card_mse:.4g}" in listed.output and "toy.gan" not in listed.output
        result = invoke("eval", "toy.regression", "--pretrained", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["mse"] == pytest.approx(card_mse, rel=1e-4)
        assert served.hits(".safetensors") == 1
        again = invoke("run", "toy.regression", "--pretrained", "--max-steps", "1", "--limit-batches", "1",
                       "--out", str(tmp_path / "again"))
        assert again.exit_code == 0, again.output
        assert served.hits(".safetensors") == 1  # the cache served the second use
    finally:
        served.close()


def test_list_pretrained_without_an_index_is_empty(monkeypatch, toy, tmp_path):
    monkeypatch.setattr(hub, "project_registry", lambda: None)  # as in a wheel install
    result = invoke("list", "--pretrained")
    assert result.exit_code == 0 and "toy.regression" not in result.output
    assert hub.pretrained_summary() == {}
    with pytest.raises(hub.ZooError, match="ZOO_REGISTRY"):
        hub.fetch("toy.regression")
    with pytest.raises(hub.ZooError, match="--registry DIR"):
        publish.publish(write_weights(tmp_path / "w.safetensors"))


def shipped_weights() -> list[str]:
    """``NAME:TAG`` of every weight file in the project's registry/index.json."""
    own = hub.project_registry()
    assert own is not None  # the tests run from the source tree
    return sorted(json.loads((own / "index.json").read_text())["weights"])


@pytest.mark.parametrize("key", shipped_weights())
def test_shipped_weights_are_intact_and_load_into_their_model(key):
    """Each file the registry ships: inside it, the size and sha256 the index says, and loadable
    strictly into the model today's code builds from its card (a changed layer fails here)."""
    from safetensors.torch import load_file

    own = hub.project_registry()
    index = hub.load_index(str(own / "index.json"))
    entry = index.weights[key]
    name, _ = hub.parse_name(key)
    path = Path(index.url_of(key, entry))
    assert path.is_file() and path.resolve().is_relative_to(own.resolve()), key
    assert entry["size"] == path.stat().st_size and files.sha256_file(path) == entry["sha256"], key
    assert entry["experiment"] == name and entry["size"] <= 10_000_000
    opened = loading.open_weights(name, str(path))
    assert opened.card["experiment"] == name
    stored, loaded = load_file(str(path)), opened.model.state_dict()
    assert stored.keys() == loaded.keys()
    for tensor_name, tensor in stored.items():
        assert torch.equal(loaded[tensor_name], tensor.to(loaded[tensor_name].dtype)), tensor_name


def test_list_pretrained_is_torch_free_and_pull_works_from_the_real_cli(server, toy_site):
    """`zoo list --pretrained` reads the index without torch; `zoo pull` in a real process."""
    served, entry = server
    env = zoo_env(toy_site, ZOO_HOME=str(hub.zoo_home()), ZOO_REGISTRY=os.environ["ZOO_REGISTRY"])
    code = ("import sys\nfrom zoo.cli import cli\n"
            "try:\n    cli(['list', '--pretrained'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=SUBPROCESS_TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert "toy.regression" in out.stdout and "mse=0.5" in out.stdout and "toy.gan" not in out.stdout
    pulled = run_zoo(["pull", "toy.regression"], env)
    assert pulled.returncode == 0, pulled.stderr
    assert files.sha256_file(Path(pulled.stdout.strip())) == entry["sha256"]
    assert "fetching toy.regression:default" in pulled.stderr


def test_written_files_get_umask_permissions_not_mkstemps_0600(tmp_path, toy, monkeypatch):
    """Published, downloaded and atomically written files are readable by a shared cache's users."""
    old = os.umask(0o022)
    try:
        reg = tmp_path / "registry"
        entry = publish.publish(write_weights(tmp_path / "w.safetensors"), reg)
        served = Served(reg.parent)
        try:
            fetched = transfer.download(f"{served.url}/registry/{entry['url']}", tmp_path / "cache" / "w.safetensors",
                                   entry["sha256"])
        finally:
            served.close()
        written = tmp_path / "note.txt"
        files.atomic_write_text(written, "x")
        for path in (reg / entry["url"], fetched, written, reg / "index.json"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    finally:
        os.umask(old)


# ------------------------------------------------------------------ zoo cache


def test_zoo_cache_lists_a_pull_and_clears_what_has_not_been_used(server):
    """A pulled file is listed with its size; a pull served from the cache counts as a use, so
    ``clear --older-than`` keeps it; once unused long enough it goes, and the next pull fetches it."""
    served, entry = server
    path = Path(invoke("pull", "toy.regression").stdout.strip())
    listed = invoke("cache", "list")
    assert listed.exit_code == 0, listed.output
    row = next(ln for ln in listed.output.splitlines() if ln.startswith("weights "))
    assert row.endswith(path.relative_to(hub.zoo_home()).as_posix()) and "today" in row
    assert any(ln.startswith("index ") for ln in listed.output.splitlines())  # the remote index's copy

    month_ago = time.time() - 30 * 86400
    os.utime(path, (month_ago, month_ago))
    assert invoke("pull", "toy.regression").exit_code == 0  # a cache hit: used now
    kept = invoke("cache", "clear", "--kind", "weights", "--older-than", "7")
    assert kept.exit_code == 0 and path.is_file() and "0 entries" in kept.output, kept.output

    os.utime(path, (month_ago, month_ago))
    dry = invoke("cache", "clear", "--kind", "weights", "--older-than", "7", "--dry-run")
    assert "would remove weights" in dry.output and path.is_file(), dry.output
    gone = invoke("cache", "clear", "--kind", "weights", "--older-than", "7")
    assert gone.exit_code == 0 and not path.exists(), gone.output
    assert "1 entries, freed" in gone.output
    assert served.hits(".safetensors") == 1
    assert Path(invoke("pull", "toy.regression").stdout.strip()) == path and served.hits(".safetensors") == 2
