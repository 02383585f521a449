"""Weight files: header checks (fuzzed), cards, loading with clear key/shape errors, .pt safety."""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

from zoo.cli import cli
from zoo.errors import ZooError
from zoo.storage.files import atomic_write
from zoo.storage.weights import (
    load_file,
    load_into,
    read_card,
    read_header,
    save_weights,
    strip_prefixes,
)

from conftest import assert_no_crash

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.safetensors"
        save_file({"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": torch.ones(4, dtype=torch.int64),
                   "c": torch.zeros(0)}, str(path), metadata={"zoo.experiment": "x.y"})
        return path.read_bytes()


VALID = valid_bytes()


def check(data: bytes) -> None:
    """Reading never crashes: a clear ZooError, or tensors matching what the header promised."""
    fd, name = tempfile.mkstemp(suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            header = read_header(Path(name))
        except ZooError as e:
            assert name in str(e) and "\n" not in str(e)
            return
        tensors = load_file(Path(name))  # the header passed: safetensors must agree with us
        for key, info in header.items():
            if key != "__metadata__":
                assert list(tensors[key].shape) == info["shape"]
    finally:
        os.unlink(name)


def framed(header: bytes, data: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if length is None else length) + header + data


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_are_a_clear_error(data):
    check(data)


@FUZZ
@given(st.integers(0, len(VALID)), st.data())
def test_truncated_or_flipped_files_are_a_clear_error(cut, data):
    blob = bytearray(VALID[:cut])
    if blob and data.draw(st.booleans()):
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    check(bytes(blob))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
dims = st.integers(-2, 2**40) | st.sampled_from([0, 1, 2, 3, 4])
entries = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "I64", "U8", "BOOL", "F4", "X", ""]) | json_values,
    "shape": st.lists(dims, max_size=3) | json_values,
    "data_offsets": st.lists(st.integers(-1, 2**63) | st.sampled_from([0, 4, 8, 16, 24]), min_size=0,
                             max_size=3) | json_values,
})
headers = st.dictionaries(st.text(max_size=5), entries | json_values, max_size=4).map(
    lambda h: h) | json_values


@FUZZ
@given(headers, st.binary(max_size=64), st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_absurd_headers_are_a_clear_error(header, data, length):
    check(framed(json.dumps(header).encode(), data, length))


@FUZZ
@given(st.sampled_from(["F32", "F16", "I64", "U8"]), st.lists(st.integers(0, 5), max_size=3),
       st.integers(-8, 8), st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers(),
                                           max_size=2))
def test_nearly_valid_headers(dtype, shape, slack, metadata):
    size = {"F32": 4, "F16": 2, "I64": 8, "U8": 1}[dtype]
    n = size
    for d in shape:
        n *= d
    header = {"t": {"dtype": dtype, "shape": shape, "data_offsets": [0, n + max(slack, -n)]},
              "__metadata__": metadata}
    check(framed(json.dumps(header).encode(), b"\0" * (n + max(slack, 0))))


@pytest.mark.parametrize("header", [b"[" * 100_000, b"1" * 5000, b'{"a": 1e999999}', b"\xff\xfe",
                                    b'{"__metadata__": {"a": 1}}', b'{"t": {"dtype": "F32", '
                                    b'"shape": [1e30], "data_offsets": [0, 4]}}'])
def test_pathological_headers(header):
    check(framed(header, b"\0" * 4))


def test_header_length_beyond_the_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(framed(b"{}", length=2**62))
    with pytest.raises(ZooError, match="header of 4611686018427387904 bytes, file of 10"):
        read_header(path)


def test_card_round_trip_and_bad_card(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, {"w": torch.ones(2)}, {"zoo.experiment": "x.y", "zoo.metrics": '{"acc": 0.5}',
                                              "zoo.config": '{"task": "t"}'})
    assert read_card(path) == {"experiment": "x.y", "metrics": {"acc": 0.5}, "config": {"task": "t"}}
    save_file({"w": torch.ones(2)}, str(path), metadata={"zoo.metrics": "[1, 2]"})
    with pytest.raises(ZooError, match="zoo.metrics is not a JSON object"):
        read_card(path)


def test_info_prints_the_card(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, {"w": torch.ones(2, 3), "n": torch.zeros(1, dtype=torch.int64)},
                 {"zoo.experiment": "x.y", "zoo.metrics": '{"acc": 0.5}', "zoo.config": '{"task": "t"}',
                  "zoo.version": "0.1.0", "zoo.created": "now"})
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 0, result.output
    for line in ("experiment: x.y", "metric acc: 0.5", 'config: {"task": "t"}', "params: 7",
                 "tensors: 2 (F32, I64)", "sha256: ", "version: 0.1.0"):
        assert line in result.output
    path.write_bytes(b"garbage!garbage!")
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 1 and "not a safetensors file" in result.output
    assert_no_crash(result)


def test_atomic_write_never_shows_a_partial_file(tmp_path):
    """A reader sees the old file until the new one is complete; a failed write leaves the old one."""
    dest = tmp_path / "index.json"
    dest.write_text("old")
    seen = []

    def fails_halfway(tmp: Path) -> None:
        tmp.write_text("new but only half")
        seen.append(dest.read_text())
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(dest, fails_halfway)
    assert dest.read_text() == "old" and seen == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]  # no temp file left

    def writes(tmp: Path) -> None:
        tmp.write_text("new")
        seen.append(dest.read_text())

    atomic_write(dest, writes)
    assert dest.read_text() == "new" and seen == ["old", "old"]


def test_saving_weights_over_a_file_keeps_it_if_the_write_fails(tmp_path, monkeypatch):
    import safetensors.torch

    path = tmp_path / "model.safetensors"
    save_weights(path, {"w": torch.ones(3)}, {"zoo.experiment": "x.y"})

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x08\x00\x00")  # a few bytes, then the disk is full
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(OSError):
        save_weights(path, {"w": torch.zeros(3)}, {"zoo.experiment": "x.y"})
    assert torch.equal(load_file(path)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_prefixes_are_stripped():
    model = nn.Sequential(nn.Linear(2, 3))
    state = {f"module._orig_mod.{k}": v + 1 for k, v in model.state_dict().items()}
    load_into(model, state)
    assert torch.equal(model[0].bias, state["module._orig_mod.0.bias"])
    with pytest.raises(ZooError, match="'0.bias' twice"):
        strip_prefixes({"module.0.bias": torch.ones(1), "0.bias": torch.ones(1)})


def test_misfit_keys_are_named():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    state = dict(model.state_dict())
    del state["1.bias"]
    state["0.weight"] = torch.zeros(4, 2)
    state["extra"] = torch.zeros(1)
    with pytest.raises(ZooError) as e:
        load_into(model, state, source="w.safetensors")
    message = str(e.value)
    assert "missing: 1.bias" in message and "unexpected: extra" in message
    assert "mis-shaped: 0.weight (4, 2) vs model (3, 2)" in message


def test_fp16_weights_load_into_an_fp32_model(tmp_path):
    model = nn.Linear(2, 2)
    path = tmp_path / "w.safetensors"
    save_weights(path, model.state_dict(), {}, dtype=torch.float16)
    other = nn.Linear(2, 2)
    load_into(other, load_file(path))
    assert other.weight.dtype == torch.float32
    assert torch.allclose(other.weight, model.weight, atol=1e-3)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pt_files_load_weights_only(tmp_path):
    model = nn.Linear(2, 2)
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ok.pt")
    assert set(load_file(tmp_path / "ok.pt")) == {"weight", "bias"}
    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ZooError, match="weights_only"):
        load_file(tmp_path / "evil.pt")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(ZooError, match="junk.pth"):
        load_file(tmp_path / "junk.pth")
