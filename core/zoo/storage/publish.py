"""``zoo publish``: add a run's weights to a registry folder (file + ``index.json`` entry),
checked, under a lock, atomically; a replaced entry must not be worse unless forced."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UsageError, ZooError
from . import hub
from .files import atomic_write_text, check_regular, replace_from_temp, sha256_file
from .hub import (
    DEFAULT_TAG,
    INDEX_FILE,
    INDEX_FORMAT,
    NAME_RE,
    _inside,
    _warn,
    entry_problem,
    is_remote,
    metrics_problem,
    parse_name,
)
from .transfer import SHA256_RE, lock_partial, sweep_partials


def default_registry_dir() -> Path:
    """Where ``zoo publish`` writes: the first ``$ZOO_REGISTRY`` location if it is local, else
    the project's ``registry/``."""
    users = hub.user_registries()
    if users:
        if is_remote(users[0]):
            raise UsageError(f"ZOO_REGISTRY's first location is a URL ({users[0]}): pass "
                             "--registry DIR to publish into")
        return Path(users[0]).parent
    own = hub.project_registry()
    if own is None:
        raise UsageError("this zoo is installed, not a source tree: pass --registry DIR")
    return own


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise index updates between processes (POSIX); elsewhere the atomic rename suffices."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(folder / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _component(config: Mapping[str, Any], section: str) -> str | None:
    """The component name of a card's config section (``{"name": ..., settings...}``)."""
    value = config.get(section)
    value = value.get("name") if isinstance(value, dict) else value
    return value if isinstance(value, str) else None


def _task_info(config: Mapping[str, Any]) -> tuple[str | None, bool | None]:
    """Main metric and direction of the card's task, if its plugin is installed."""
    try:
        from ..plugins import catalog

        task = catalog().tables["tasks"][_component(config, "task")].obj
        return task.main_metric, task.higher_is_better
    except Exception:  # a card from a plugin that is not installed: publish still works
        return None, None


def _weights_file(source: Path) -> tuple[Path, dict[str, Any]]:
    """A run directory → its final ``model.safetensors`` (and summary); a file → itself."""

    if source.is_dir():
        path = source / "model.safetensors"
        if path.exists() and not path.is_file():  # a FIFO or folder: say so, not "no such file"
            check_regular(path)
        if not path.is_file():
            raise UsageError(f"{source} has no model.safetensors (not a finished run?); "
                             "pass a .safetensors file to publish another one")
        summary_file = source / "summary.json"
        try:
            summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        except ValueError:
            summary = {}
        return path, summary if isinstance(summary, dict) else {}
    if source.exists() and not source.is_file():
        check_regular(source)
    if not source.is_file():
        raise UsageError(f"no such run directory or weight file: {source}")
    return source, {}


def _write_published(src: Path, tmp: Path, dtype: str | None) -> None:
    if dtype is None:
        shutil.copyfile(src, tmp)
        return
    import torch
    from safetensors.torch import save_file

    from .weights import load_file, read_header

    target = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    metadata = read_header(src).get("__metadata__", {})
    tensors = {k: v.to(target) if v.is_floating_point() else v for k, v in load_file(src).items()}
    save_file(tensors, str(tmp), metadata=metadata)


def _read_index(index_file: Path) -> dict[str, Any]:
    """The registry's index as it is on disk (``{}`` before the first publish), or one clear error."""
    try:
        data = json.loads(index_file.read_text()) if index_file.is_file() else {}
    except (ValueError, RecursionError):
        raise ZooError(f"{index_file} is not valid JSON; fix or remove it first") from None
    if not isinstance(data, dict) or not isinstance(data.setdefault("weights", {}), dict):
        raise ZooError(f"{index_file} is not a registry index")
    return data


def _entry(rel: str, sha256: str, size: int, name: str, tag: str, main: str | None,
           higher: bool | None, card: Mapping[str, Any], dtype: str | None) -> dict[str, Any]:
    """The index entry of a published file: where, what it hashes to, its metrics and card."""
    return {
        "url": rel,
        "sha256": sha256,
        "size": size,
        "experiment": name,
        "tag": tag,
        "main_metric": main,
        "higher_is_better": higher,
        "metrics": card.get("metrics", {}),
        "card": {k: card[k] for k in ("version", "torch_version", "created") if k in card}
        | {section: _component(card.get("config", {}), section) for section in ("task", "data", "model")}
        | {"dtype": dtype or "as trained"},
        "published": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _checked_source(source: Path, tag: str) -> tuple[Path, dict[str, Any], str, str, str | None,
                                                     bool | None]:
    """The weight file a run or path names, its card, experiment, tag and main metric (with its
    direction): every usage error comes here, before anything is written."""
    from .weights import read_card

    if not isinstance(tag, str) or not NAME_RE.fullmatch(tag):
        raise UsageError(f"invalid tag {tag!r}: expected letters, digits, '_', '-' and single dots")
    path, summary = _weights_file(source)
    card = read_card(path)
    experiment = card.get("experiment")
    if not experiment:
        raise UsageError(f"{path} has no zoo card (zoo.experiment): only zoo weight files are published")
    name, tag = parse_name(f"{experiment}:{tag}")
    main, higher = _task_info(card.get("config", {}))
    main = summary.get("main_metric") or main
    problem = metrics_problem(main, higher, card.get("metrics", {}))
    if problem is not None:
        raise UsageError(f"cannot publish {path}: {problem}")
    return path, card, name, tag, main, higher


def publish(source: Path, registry_dir: Path | None = None, tag: str = DEFAULT_TAG,
            dtype: str | None = None, max_mb: float | None = 10.0, force: bool = False) -> dict[str, Any]:
    """Copy a run's weights into a registry folder and add/update its index entry, atomically.

    The file is named by its hash, and the index rename is the single commit point: a reader sees
    the old entry and file, or the new ones. Replacing an entry needs a better main metric (or
    ``force``): binaries in a git registry stay in its history forever.
    """
    if max_mb is not None and not (math.isfinite(max_mb) and max_mb > 0):
        raise UsageError(f"invalid --max-mb {max_mb}: expected a positive number of megabytes")
    path, card, name, tag, main, higher = _checked_source(Path(source), tag)
    key, metrics = f"{name}:{tag}", card.get("metrics", {})
    registry_dir = Path(registry_dir) if registry_dir is not None else default_registry_dir()
    index_file = registry_dir / INDEX_FILE
    folder = _inside(registry_dir / name, registry_dir)
    folder.mkdir(parents=True, exist_ok=True)
    sweep_partials(folder)  # temp files of killed publishes
    fd, tmp_name = tempfile.mkstemp(prefix=f".{tag}.", suffix=".part", dir=folder)
    lock_partial(fd)  # held until publish ends (fd open): other sweeps leave this file alone
    tmp = Path(tmp_name)
    placed: Path | None = None  # a new weight file not yet in a committed index
    try:
        _write_published(path, tmp, dtype)
        size, sha256 = tmp.stat().st_size, sha256_file(tmp)
        if max_mb is not None and size > max_mb * 1e6:
            raise ZooError(f"{path} is {size / 1e6:.1f} MB, over the {max_mb:g} MB limit: "
                           "try --dtype fp16, or raise --max-mb")
        with _locked(registry_dir):
            data = _read_index(index_file)
            old = data["weights"].get(key)
            old = old if isinstance(old, dict) else None
            if old is not None and not force:
                _check_improves(key, old, sha256, main, metrics, higher)
            rel = f"{name}/{tag}-{sha256[:12]}.safetensors"
            dest = registry_dir / rel
            if not dest.exists():
                placed = dest
            replace_from_temp(tmp, dest)
            entry = _entry(rel, sha256, size, name, tag, main, higher, card, dtype)
            problem = entry_problem(key, entry)
            if problem is not None:
                raise UsageError(f"cannot publish {path}: {problem}")
            data["weights"][key] = entry
            data = {"format": INDEX_FORMAT, **data, "weights": dict(sorted(data["weights"].items()))}
            try:
                atomic_write_text(index_file, json.dumps(data, indent=2) + "\n")  # others kept as-is
            except BaseException:
                _unplace(placed)
                placed = None
                raise
            placed = None  # committed: the index names it now
            if old is not None:
                _remove_replaced(registry_dir, key, old, data["weights"], keep=dest)
    except OSError as e:  # disk full, read-only registry, …
        tmp.unlink(missing_ok=True)
        _unplace(placed)
        raise ZooError(f"cannot publish {path} into {registry_dir}: {e.strerror or e}; nothing "
                       "was published") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        _unplace(placed)
        raise
    finally:
        os.close(fd)
    return {"key": key, "path": str(dest), **entry}


def _unplace(placed: Path | None) -> None:
    """Remove a weight file publish placed but never indexed (its index write failed)."""
    if placed is not None:
        with contextlib.suppress(OSError):
            placed.unlink()


def _check_improves(key: str, old: Mapping[str, Any], sha256: str, main: str | None,
                    metrics: Mapping[str, Any], higher: bool | None) -> None:
    if old.get("sha256") == sha256:
        raise ZooError(f"{key} is already published with these exact weights")
    if entry_problem(key, old) is not None:
        raise ZooError(f"{key} is already published with a malformed entry "
                       f"({entry_problem(key, old)}); pass --force to replace it")
    before, after = (old.get("metrics") or {}).get(main), metrics.get(main)
    if main is None or higher is None or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after)):
        raise ZooError(f"{key} is already published and the two cannot be compared on a main metric; "
                       "pass --force to replace it")
    if (after > before) if higher else (after < before):
        return
    raise ZooError(f"{key}: {main}={after:.4g} is not better than the published {before:.4g}; "
                   "weights in a registry stay in its history forever, so only improvements replace "
                   "them (--force to replace anyway, or publish under another --tag)")


def _remove_replaced(registry_dir: Path, key: str, old: Mapping[str, Any],
                     weights: Mapping[str, Any], keep: Path) -> None:
    """Delete the file a replaced entry used, only if the registry owns it.

    An index entry is data, so its ``url`` must never choose what gets deleted: only the exact
    name publish gives that entry (``NAME/TAG-<its sha256 prefix>.safetensors``), a regular file
    (not a link) in the registry's own ``NAME/`` folder, that no other entry still uses.
    """
    name, _, tag = key.partition(":")
    url, sha256 = old.get("url"), old.get("sha256")
    if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
        return
    owned = f"{name}/{tag}-{sha256[:12]}.safetensors"
    if url != owned or any(isinstance(e, dict) and e.get("url") == owned for e in weights.values()):
        return
    path = registry_dir / owned
    try:
        if (stat.S_ISREG(path.lstat().st_mode)
                and path.parent.resolve() == registry_dir.resolve() / name
                and path.resolve() != keep.resolve()):
            path.unlink()
    except OSError as e:  # the new entry is committed; a leftover file is only clutter
        _warn(f"warning: could not remove the replaced {path}: {e.strerror or e}")
