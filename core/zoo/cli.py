"""The ``zoo`` command line. Listing and describing names never imports torch."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import traceback
import typing
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, cli_options
from . import config as cfg
from .cli_options import pick_weights
from .env import debug
from .errors import UsageError, ZooError, printable
from .plugins import catalog, plugin_info, pm, report_failures

log = logging.getLogger("zoo")


def exit_with(error: ZooError) -> NoReturn:
    """One line on stderr and the error's exit code; the traceback behind it only when asked
    for (``-v/--verbose`` or ``ZOO_DEBUG=1``), above that line."""
    if verbose():
        cause = error.__cause__ or error.__context__
        shown = cause if cause is not None and error.__suppress_context__ else error
        click.echo("".join(traceback.format_exception(type(shown), shown, shown.__traceback__)),
                   err=True, nl=False)
    click.echo("zoo: error: " + printable(" ".join(str(error).splitlines())), err=True)
    sys.exit(error.exit_code)


def echo(text: object = "", err: bool = False) -> None:
    """``click.echo`` for lines holding someone else's strings (a card, an index, a plugin's
    names and docstrings): terminal control characters are stripped, so none can recolour,
    retitle or rewrite the user's terminal."""
    click.echo(printable(text), err=err)


def json_line(obj: Any) -> str:
    """One valid JSON document: JSON has no NaN or Infinity, so a non-finite number becomes
    ``null``, and stderr says which."""
    import math

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            click.echo(f"zoo: warning: {printable(where)} is {value}; written as null", err=True)
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    return json.dumps(clean(obj, ""), allow_nan=False)


def verbose() -> bool:
    """Diagnostics wanted: ``-v`` set the ``zoo`` logger to DEBUG, or ``ZOO_DEBUG`` is on."""
    if log.isEnabledFor(logging.DEBUG):
        return True
    try:
        return debug()
    except ZooError:  # a malformed ZOO_DEBUG is reported where it is parsed, not here
        return False


def setup_logging(debug_on: bool) -> None:
    """``zoo: LEVEL: logger: message`` on stderr; DEBUG with ``-v``/``ZOO_DEBUG``, else WARNING."""
    if not any(isinstance(h, StderrHandler) for h in log.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("zoo: %(levelname)s: %(name)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if debug_on else logging.WARNING)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class ZooGroup(click.Group):
    """Adds plugin commands on first lookup; turns ZooError into one line and its exit code."""

    plugin_commands_added = False

    def _plugin_commands(self) -> None:
        if not self.plugin_commands_added:
            self.plugin_commands_added = True
            _add_plugin_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            setup_logging(ctx.params.get("verbose_") or debug())  # before plugins load
            return super().invoke(ctx)
        except ZooError as e:
            exit_with(e)
        except KeyboardInterrupt as e:  # Ctrl-C: 130; a run stopped by SIGTERM: 143
            click.echo("zoo: interrupted", err=True)
            sys.exit(getattr(e, "exit_code", 130))
        except BrokenPipeError:  # `zoo list | head`: the reader left; that is not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
            sys.exit(0)
        except OSError as e:  # read-only folder, disk full, name too long…: one line, exit 1
            where = f"{e.filename}: " if e.filename else ""
            exit_with(ZooError(f"{where}{e.strerror or e}"))


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo")
@click.option("-v", "--verbose", "verbose_", is_flag=True,
              help="Diagnostics on stderr, and the traceback behind an error (or ZOO_DEBUG=1).")
def cli(verbose_: bool) -> None:
    """zoo: deep-learning recipes you run by name, extend with plugins and share as weights."""


def precision_option(default: str | None = "auto") -> Any:
    """``--precision`` of run, eval and predict: ``auto`` takes the device's fast path; eval's
    metrics can be asked for in full precision with ``--precision fp32``."""
    return click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                        default=default, help="auto (default): the fast path this device has "
                        "(docs/trainer.md); fp32: full precision.")


def set_option(f: Any) -> Any:
    return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                        help="Override a setting, e.g. model.width=64 or train.ema=true (repeatable).")(f)


# ------------------------------------------------------------------ list / info / plugins


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--kind", type=click.Choice(["experiments", "tasks", "datasets", "models"]),
              default="experiments", show_default=True)
@click.option("--pretrained", is_flag=True, help="Only names with published weights.")
def list_(pattern: str | None, kind: str, pretrained: bool) -> None:
    """List registered names; PATTERN may use wildcards (clock.*)."""
    from .python_api import listing

    rows = []
    for entry, weights in listing(pattern, kind, pretrained):
        if kind != "experiments":
            rows.append((entry.name, entry.plugin, entry.summary))
            continue
        e = entry.obj
        source = (weights.source,) if pretrained and weights else ()
        rows.append((entry.name, f"{e.task} / {e.dataset} / {e.model}",
                     weights.headline if weights else "", *source, entry.summary))
    report_failures()
    if not rows:
        click.echo(f"no {kind} match" + (f" '{pattern}'" if pattern else ""), err=True)
        return
    header = ("NAME", "PLUGIN", "DESCRIPTION")
    if kind == "experiments":
        header = ("NAME", "TASK / DATA / MODEL", "PRETRAINED", *(("SOURCE",) if pretrained else ()),
                  "DESCRIPTION")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        row = tuple(printable(c) for c in row)  # names, summaries, metrics: plugin and index text
        echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])


def _find(name: str) -> tuple[str, Any]:
    """Look a name up in every table, experiments first; unknown → exit 2 with close matches."""
    from .errors import UnknownName

    reg = catalog()
    for kind in ("experiments", "tasks", "datasets", "models"):
        if name in reg.tables[kind]:
            return kind, reg.tables[kind][name]
    everything = [n for table in reg.tables.values() for n in table]
    raise UnknownName("name", name, everything)


def _echo_fields(settings: Any, prefix: str = "") -> None:
    """One line per setting, with the range or choices ``--set`` will check: what is allowed."""
    try:
        types = cfg.field_types(type(settings))
    except Exception:  # a plugin's annotation that does not resolve: show the values without choices
        types = {}
    for f in dataclasses.fields(settings):
        allowed = cfg.field_range(f)
        kind = types.get(f.name)
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()
        note = f"  ({allowed})" if allowed is not None else f"  (one of {', '.join(choices)})" if choices else ""
        click.echo(f"  {prefix}{f.name} = {getattr(settings, f.name)!r}{note}")


def _echo_settings(config: cfg.RunConfig) -> None:
    for section in ("task", "data", "model", "train"):
        component = "" if section == "train" else f" ({getattr(config, section)})"
        click.echo(f"{section}{component}:")
        _echo_fields(config.section(section), f"{section}.")


@cli.command()
@click.argument("name")
@set_option
def info(name: str, sets: tuple[str, ...]) -> None:
    """What an experiment assembles, a component's settings, or a weight file's card."""
    report_failures()
    if name.endswith(".safetensors") or Path(name).is_file():
        return _info_file(Path(name))
    kind, entry = _find(name)
    if kind != "experiments":
        if sets:
            raise UsageError(f"--set applies to experiments; {name} is a {kind[:-1]}: its defaults "
                             "are below, set them on an experiment that uses it")
        echo(f"{name}: {kind[:-1]} from plugin {entry.plugin}")
        if entry.summary:
            echo(f"  {entry.summary}")
        _echo_fields(entry.obj.Config())
        return
    from .experiment import assemble, count_parameters, resolve

    config = resolve(name, cfg.parse_sets(sets))
    echo(f"experiment: {name}  (plugin {entry.plugin})")
    if entry.obj.description:
        echo(f"description: {entry.obj.description}")
    _echo_settings(config)
    assembled = assemble(config)
    click.echo(f"input: {assembled.spec.input_shape}")
    click.echo(f"outputs: {dict(assembled.spec.outputs)}")
    click.echo(f"main metric: {assembled.task.main_metric} "
               f"({'higher' if assembled.task.higher_is_better else 'lower'} is better)")
    click.echo(f"params: {count_parameters(assembled.build_model())}")


def _info_file(path: Path) -> None:
    from math import prod

    from .storage.weights import read_card, read_header

    header = read_header(path)
    card = read_card(path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    from .storage.files import sha256_file

    echo(f"file: {path}")
    click.echo(f"size: {path.stat().st_size}")
    click.echo(f"sha256: {sha256_file(path)}")
    for key in ("experiment", "plugin", "plugin_version", "version", "torch_version", "created"):
        if key in card:
            echo(f"{key}: {card[key]}")
    for key, value in card.get("metrics", {}).items():
        echo(f"metric {key}: {value}")
    if "config" in card:
        click.echo("config: " + json.dumps(card["config"], sort_keys=True))
    dtypes = sorted({v["dtype"] for v in tensors.values()})
    echo(f"tensors: {len(tensors)} ({', '.join(dtypes)})")
    click.echo(f"params: {sum(prod(v['shape']) for v in tensors.values())}")


@cli.command()
def plugins() -> None:
    """Installed plugins: version, hooks, and the error of any that failed."""
    catalog()
    for name, info_ in sorted(plugin_info.items()):
        version = f" {info_.version}" if info_.version else ""
        dist = f" ({info_.distribution}{version})" if info_.distribution else ""
        if info_.error:
            echo(f"{name}{dist}: FAILED: {info_.error}")
        else:
            echo(f"{name}{dist}: {', '.join(info_.hooks) or 'no hooks'}")
        for message in info_.warnings:
            echo(f"  warning: {message}")
    from .plugins import unknown_wanted, unknown_wanted_message

    if unknown_wanted:
        click.echo(unknown_wanted_message())


# ------------------------------------------------------------------ run / eval / predict


@cli.command()
@click.argument("name")
@click.option("--epochs", type=int)
@click.option("--max-steps", type=int, help="Stop after N optimizer steps.")
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--limit-batches", type=int, help="Batches per epoch and per evaluation (smoke runs).")
@cli_options.device(default=None)
@precision_option(default=None)
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the model.")
@click.option("--seed", type=int)
@click.option("--deterministic", is_flag=True, default=None, help="Deterministic algorithms only.")
@click.option("--data", "data_path", metavar="PATH", help="Dataset folder (e.g. images.npy + labels.npy).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Run directory.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out (default: refuse).")
@click.option("--resume", is_flag=False, flag_value="latest", default=None, metavar="[RUN_DIR]",
              help="Continue a run from its checkpoint (default: the latest run of NAME).")
@click.option("--checkpoint-every", type=int, help="Also checkpoint every N steps.")
@cli_options.weights()
@set_option
def run(name: str, data_path: str | None, out_dir: Path | None, overwrite: bool, resume: str | None,
        weights: str | None, pretrained: bool, sets: tuple[str, ...], **flags: Any) -> None:
    """Train experiment NAME; writes a run directory with weights, metrics and figures."""
    from .experiment import resolve

    report_failures()
    overrides = {f"train.{k.rstrip('_')}": v for k, v in flags.items() if v is not None}
    overrides.update(cfg.parse_sets(sets))
    init = pick_weights(name, weights, pretrained, required=False)
    if resume:
        from .training.rundir import latest_run_dir

        run_dir = latest_run_dir(name) if resume == "latest" else Path(resume)
        config_file = run_dir / "config.json"
        if not config_file.is_file():
            raise UsageError(f"cannot resume: {config_file} does not exist")
        try:
            saved = json.loads(config_file.read_text())
        except ValueError as e:
            raise UsageError(f"cannot resume: {config_file} is not valid JSON ({e})") from None
        if isinstance(saved, dict) and saved.get("experiment") != name:
            raise UsageError(f"{run_dir} is a run of {saved.get('experiment')}, not {name}")
        config = resolve(saved, overrides, data_path=data_path)
    else:
        run_dir = out_dir
        config = resolve(name, overrides, data_path=data_path)
    from .training.loop import train
    from .training.rundir import check_run_dir

    if run_dir is not None and not resume:
        check_run_dir(run_dir, overwrite)  # before the model is built: fail fast
    summary = train(config, run_dir, resume=bool(resume), init_weights=init, overwrite=overwrite)
    if summary:
        metric = summary["main_metric"]
        click.echo(f"test {metric}: {summary['test'].get(metric, float('nan')):.4f}")
        for key, value in summary["test"].items():
            if key != metric:
                click.echo(f"  {key}: {value:.4f}")
        click.echo(f"weights: {summary['weights']}")
        click.echo(f"run: {Path(summary['weights']).parent}")
        from .api import Task
        from .training.progress import finish_block

        task = catalog().get("tasks", config.task).obj
        click.echo("\n" + finish_block(summary, decodes=task.decode is not Task.decode), err=True)


def _device(name: str) -> Any:
    from .training.runtime import pick_device

    return pick_device(name)


def prepare_for(module: Any, device: Any, precision: str = "auto") -> Any:
    """Eval and predict take the same fast path as training (``zoo.training.runtime``)."""
    from .training.runtime import pick_precision, prepare

    chosen = pick_precision(precision, device, module)
    prepare(module, chosen)
    return chosen


@cli.command("eval")
@click.argument("name")
@cli_options.weights()
@click.option("--data", "data_path", metavar="PATH")
@click.option("--split", default="test", show_default=True)
@cli_options.device(default="auto")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True)
@click.option("--limit-batches", type=click.IntRange(0), default=0)
@precision_option()
@cli_options.json()
@set_option
def eval_(name: str, weights: str | None, pretrained: bool, data_path: str | None, split: str,
          device: str, batch_size: int, limit_batches: int, precision: str, as_json: bool,
          sets: tuple[str, ...]) -> None:
    """Evaluate trained weights of NAME on a split (default: test)."""
    from .loading import load_model
    from .training.loop import evaluate

    report_failures()
    dev = _device(device)
    assembled, module = load_model(name, pick_weights(name, weights, pretrained), cfg.parse_sets(sets),
                                   device=str(dev), data_path=data_path)
    assembled.use_split(split)
    seed = assembled.config.train.seed
    available = len(assembled.dataset.split(split, seed))  # reads (and reports) unreadable rows
    scored = min(available, limit_batches * batch_size) if limit_batches else available
    skipped = assembled.dataset.skipped(split, seed)
    chosen = prepare_for(module, dev, precision)
    metrics = evaluate(assembled, module, split, dev, chosen.dtype, batch_size=batch_size,
                       limit_batches=limit_batches, seed=seed, channels_last=chosen.channels_last)
    click.echo(_scored_line(assembled, split, scored, available, skipped), err=True)
    result: dict[str, Any] = {"split": split, "samples": scored, "skipped": skipped}
    result.update((k, v) for k, v in metrics.items() if k not in result)
    if as_json:
        click.echo(json_line(result))
        return
    for key, value in result.items():
        click.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def _scored_line(assembled: Any, split: str, scored: int, available: int, skipped: int) -> str:
    """What eval scored, said every time: the split, the count, the dataset and its folder."""
    root = getattr(assembled.config.data_config, "root", None)
    where = f" at {root}" if root else ""
    count = f"{scored} of {available}" if scored < available else f"{scored}"
    notes = [f"{skipped} unreadable skipped"] if skipped else []
    if scored < available:
        notes.append("--limit-batches")
    extra = f"; {', '.join(notes)}" if notes else ""
    noun = "sample" if available == 1 else "samples"
    return f"zoo: scored {count} {noun} (split {split} of {assembled.config.data}{where}{extra})"


@cli.command()
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@cli_options.weights()
@cli_options.device(default="cpu")
@click.option("--top", type=click.IntRange(1), default=1, show_default=True,
              help="Also print the next most likely answers, with their probabilities.")
@precision_option()
def predict(name: str, images: tuple[Path, ...], weights: str | None, pretrained: bool, device: str,
            top: int, precision: str) -> None:
    """Predict for each IMAGE: `IMAGE  ANSWER  (confidence P)` (a clock reader: HH:MM)."""
    import torch

    from .loading import load_model
    from .python_api import read_image
    from .storage.files import check_regular
    from .training.data import to_device
    from .training.runtime import autocast

    report_failures()
    _refuse_unless_it_predicts(name)
    for path in images:  # before any weights load: absent, a folder, a FIFO or /dev/zero is one line
        check_regular(path, "image")
    dev = _device(device)
    assembled, module = load_model(name, pick_weights(name, weights, pretrained), device=str(dev))
    chosen = prepare_for(module, dev, precision)
    inputs = [read_image(assembled, path) for path in images]  # every file readable first
    for path, x in zip(images, inputs):
        with torch.no_grad(), autocast(dev, chosen.dtype):
            outputs = assembled.task.forward(module, (to_device(x[None], dev, chosen.channels_last),))
        click.echo(_prediction_line(path, assembled.task.predict(outputs, top)[0]))


def _prediction_line(path: Path, readings: list[tuple[str, float | None]]) -> str:
    """``IMAGE  ANSWER  (confidence P)`` then, with ``--top``, ``  ANSWER (P)`` per alternative."""
    (answer, p), *others = readings
    line = f"{path}  {answer}" + (f"  (confidence {p:.2f})" if p is not None else "")
    return line + "".join(f"  {a} ({q:.2f})" if q is not None else f"  {a}" for a, q in others)


def _refuse_unless_it_predicts(name: str) -> None:
    """Before loading any weights: a task without ``decode`` has no per-image answer."""
    from .experiment import resolve
    from .python_api import ensure_predicts

    ensure_predicts(catalog().get("tasks", resolve(name).task).obj, name)


# ------------------------------------------------------------------ pull / publish (weights)


@cli.command()
@click.argument("spec", metavar="NAME[:TAG]")
def pull(spec: str) -> None:
    """Download published weights into the cache (sha256 verified); prints the cached path.

    Also takes a URL pinned by hash: https://.../file.safetensors#sha256=HEX.
    """
    from .storage import hub

    path = hub.fetch_url(spec) if hub.is_url(spec) else hub.pull(spec)
    click.echo(str(path))


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path, exists=True))
@click.option("--tag", default="default", show_default=True, help="Publish as NAME:TAG.")
@click.option("--registry", "registry_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Catalog folder (index.json + files). Default: a local $ZOO_REGISTRY, "
                   "else the project's registry/.")
@click.option("--dtype", type=click.Choice(["keep", "fp32", "fp16", "bf16"]), default="keep",
              show_default=True, help="Cast float tensors (fp16 halves the file).")
@click.option("--max-mb", type=float, default=10.0, show_default=True,
              help="Refuse files larger than this (registry binaries live in git history).")
@click.option("--force", is_flag=True, help="Replace a published entry even if not better.")
def publish(run_dir: Path, tag: str, registry_dir: Path | None, dtype: str, max_mb: float,
            force: bool) -> None:
    """Copy a run's model.safetensors (or a given file) into a registry and index it."""
    from .storage import hub
    from .storage.publish import publish as publish_weights

    report_failures()
    entry = publish_weights(run_dir, registry_dir, tag=tag, dtype=None if dtype == "keep" else dtype,
                            max_mb=max_mb, force=force)
    echo(f"published {entry['key']}: {entry['path']} ({entry['size'] / 1e6:.2f} MB, "
         f"sha256 {entry['sha256']}) {hub.headline(entry)}")


# ------------------------------------------------------------------ plugin commands


def _add_plugin_commands(group: click.Group) -> None:
    """Let each plugin add its subcommands; one that fails is reported, the rest still work."""
    from .plugins import PluginInfo, _fail

    try:
        catalog()
        for impl in pm.hook.zoo_register_commands.get_hookimpls():
            name = pm.get_name(impl.plugin)
            info_ = plugin_info.setdefault(name, PluginInfo(name))
            if info_.error:
                continue
            try:
                impl.function(cli=group)
            except Exception as e:
                _fail(info_, e)
    except ZooError as e:  # strict mode: a failed plugin is fatal
        exit_with(e)


from .caches import cache_group  # noqa: E402  (click only: `zoo cache list`)
from .datasources import data_group  # noqa: E402  (click only: `zoo data pull mnist`)

cli.add_command(data_group)
cli.add_command(cache_group)


def main() -> None:
    prog = "python -m zoo" if sys.argv[0].endswith("__main__.py") else "zoo"
    cli.main(prog_name=prog)
