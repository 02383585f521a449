"""benchmarks/clock_table.py: Table 1 and its figure from run directories (no training)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clock_table() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("clock_table",
                                                  ROOT / "benchmarks" / "clock_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def fake_run(root: Path, experiment: str, test_mean: float, val: list[float], *,
             epochs: int = 3, train_size: int = 1000, batch: int = 50, lr: float = 0.001,
             extra_train: dict | None = None) -> Path:
    """A finished run directory as `zoo run` writes it: config.json (only the keys the table
    reads), metrics.jsonl with train and val rows, summary.json with test metrics."""
    run = root / experiment
    run.mkdir(parents=True)
    train = {"epochs": epochs, "max_steps": 0, "batch_size": batch, "lr": lr, "accum_steps": 1,
             "seed": 0, **(extra_train or {})}
    config = {"experiment": experiment, "train": train,
              "task": {"name": "clock-multihead"},
              "data": {"name": "clock-synthetic", "train_size": train_size, "test_size": 2000},
              "model": {"name": "clock-fig2"}}
    (run / "config.json").write_text(json.dumps(config))
    steps = train_size // batch
    rows = []
    for epoch, error in enumerate(val, 1):
        rows.append({"split": "train", "epoch": epoch - 1, "step": epoch * steps, "loss": 1.0})
        rows.append({"split": "val", "epoch": epoch, "step": epoch * steps, "error_mean": error,
                     "error_median": error / 2, "epoch_seconds": 30.0})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"experiment": experiment, "main_metric": "error_mean",
               "test": {"error_mean": test_mean, "error_median": 7.0, "error_p90": 35.0,
                        "within_1min": 0.125, "within_5min": 0.42, "hour_acc": 0.8895},
               "steps": steps * len(val), "params": 286349, "device": "cpu", "world_size": 1}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def table_rows(text: str) -> dict[str, list[str]]:
    """Rows of the Table 1 block, by reader: the cells of each line starting with '| clock.'."""
    block = text.split("clock_table:table1 begin")[1].split("clock_table:table1 end")[0]
    return {cells[0]: cells for cells in
            ([c.strip() for c in line.strip("|").split("|")]
             for line in block.splitlines() if line.startswith("| clock."))}


def test_collect_writes_table_with_seed_column_marks_and_figure(
        clock_table: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    beats = fake_run(tmp_path / "runs", "clock.multihead", 19.0, [44.8, 30.2, 17.2],
                     epochs=3, lr=0.002, extra_train={"weight_decay": 0.05})
    loses = fake_run(tmp_path / "runs", "clock.cls24", 50.0, [150.0, 90.0], epochs=2,
                     batch=25)
    out, png = tmp_path / "docs" / "results.md", tmp_path / "docs" / "img" / "curves.png"
    out.parent.mkdir()
    out.write_text("# Clock results\n\nold generated table\n\n## Notes\n\nhand-written note\n")

    code = clock_table.main(["--collect", str(beats), str(loses), "--output", str(out),
                             "--figure", str(png)])

    assert code == 0
    text = out.read_text()
    rows = table_rows(text)
    assert list(rows) == ["clock.regression", "clock.cls24", "clock.cls72", "clock.cls720",
                          "clock.multihead"]
    mh = rows["clock.multihead"]
    assert mh[1:6] == ["0.8634", "51.8", "19.0", "✓", "7.0"]  # seed h, seed min, ours, beats
    assert mh[10] == "3,000"  # clocks seen: 3 epochs × 20 steps × batch 50
    assert mh[12] == "1.5 min"  # train wall: 3 × 30 s of epoch_seconds
    assert mh[13].startswith("3 ep × 1,000 clocks, batch 50, lr 0.002")
    assert "weight_decay=0.05" in mh[13]  # differs from clock.multihead's default
    cls24 = rows["clock.cls24"]
    assert cls24[1:5] == ["0.6206", "37.2", "50.0", "✗"]
    assert cls24[10] == "2,000"  # 2 epochs × 40 steps × batch 25
    assert rows["clock.regression"][1:4] == ["0.7053", "42.3", "not run"]
    assert ("`zoo run clock.multihead --epochs 3 --batch-size 50 "  # lr 0.002 is the default
            "--set train.weight_decay=0.05 --set data.train_size=1000`") in text
    assert "- command: `python benchmarks/clock_table.py --collect" in text
    assert "- date: " in text and "- machine: " in text
    assert "](img/curves.png)" in text
    assert text.startswith("# Clock results\n") and "old generated table" not in text
    assert text.rstrip().endswith("## Notes\n\nhand-written note")  # hand-written part kept
    with Image.open(png) as img:
        img.verify()
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == clock_table.FIGURE_SIZE
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    assert clock_table.COLOURS["clock.multihead"] in colours  # the lines are drawn
    assert clock_table.COLOURS["clock.cls24"] in colours
    assert capsys.readouterr().out.splitlines()[-1] == \
        "clock_table best=clock.multihead error_min=19.00"

    # regenerating replaces the table in place and keeps the hand-written section once
    assert clock_table.main(["--collect", str(loses), "--output", str(out),
                             "--figure", str(png)]) == 0
    again = out.read_text()
    assert table_rows(again)["clock.multihead"][3] == "not run"
    assert again.count("hand-written note") == 1 and again.count("table1 begin") == 1

    # --update-longer adds the 'Longer runs' block and leaves Table 1 as it was
    assert clock_table.main(["--update-longer", str(beats), "--output", str(out)]) == 0
    longer = out.read_text()
    assert table_rows(longer) == table_rows(again)
    block = longer.split("clock_table:longer begin")[1].split("clock_table:longer end")[0]
    assert "| clock.multihead | 3 ep × 1,000 clocks, batch 50, lr 0.002" in block
    assert longer.index("table1 end") < longer.index("longer begin") < longer.index("## Notes")


def test_unfinished_run_is_one_line_and_exit_2(
        clock_table: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_run(tmp_path, "clock.cls72", 60.0, [100.0])
    (run / "summary.json").unlink()
    out = tmp_path / "results.md"

    code = clock_table.main(["--collect", str(run), "--output", str(out)])

    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clock_table: ") and "summary.json is missing" in err
    assert len(err.splitlines()) == 1 and not out.exists()
