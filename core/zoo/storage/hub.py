"""Where weights come from: registry indexes, names → verified files in the local cache, listing.

Every file that is not the user's own local path goes through one door, ``transfer.download``: it is
streamed to a temp file beside its final place while its sha256 is computed, checked against the
hash the index (or a URL's ``#sha256=`` fragment) promises, and only then renamed into
``$ZOO_HOME/weights/``. A wrong or short file never lands in the cache and leaves no temp file.
Cache paths are built only from validated names and hex digests, so nothing can escape the cache.

This module never imports torch: ``zoo list --pretrained`` stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import posixpath
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..env import cache_dir, offline
from ..errors import UnknownName, UsageError, ZooError, printable
from .files import atomic_write, check_regular, open_regular, sha256_file
from .transfer import (
    SHA256_RE,
    TIMEOUT,
    TooSlow,
    check_sha256,
    download,
    download_seconds,
    is_url,
    open_source,
    read_bounded,
    sweep_partials,
    url_path,
)

log = logging.getLogger(__name__)

DEFAULT_TAG = "default"
INDEX_FILE = "index.json"
INDEX_FORMAT = 1
# Dot-separated segments of letters, digits, '_' and '-': no '..', no '/', nothing absolute.
NAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
# What an index may use as a relative url: plain path segments, no scheme, no '..', no leading '/'.
RELATIVE_URL_RE = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
INDEX_SCHEMES = ("http", "https", "hf")  # what an index entry may point to besides relative paths
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
MAX_INDEX_BYTES = 16 << 20
LIST_INDEX_MAX_AGE = 3600.0  # `zoo list` reuses a cached remote index this long (seconds)
USER_SOURCE, BUILT_IN_SOURCE = "user", "built-in"


# ------------------------------------------------------------------ places and names


zoo_home = cache_dir  # $ZOO_HOME, else the platform's user cache directory


def weights_dir() -> Path:
    return zoo_home() / "weights"


def is_remote(location: str) -> bool:
    """True for what needs the network (http, https, hf); file:// and paths are local."""
    return is_url(location) and urlsplit(location).scheme.lower() in INDEX_SCHEMES


def parse_name(spec: str) -> tuple[str, str]:
    """``NAME[:TAG]`` → (name, tag); refuses anything that could be a path."""
    name, _, tag = spec.partition(":")
    tag = tag or DEFAULT_TAG
    if not NAME_RE.fullmatch(name) or not NAME_RE.fullmatch(tag):
        raise UsageError(f"invalid weights name '{spec}': expected NAME[:TAG], each made of letters, "
                         "digits, '_', '-' and single dots")
    return name, tag


def _inside(path: Path, root: Path) -> Path:
    """Defence in depth: the names are validated already, but never write outside ``root``."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise ZooError(f"refusing a cache path outside {root}: {path}")
    return path


def cache_path(name: str, tag: str, sha256: str) -> Path:
    """``$ZOO_HOME/weights/NAME/TAG-<sha256 prefix>.safetensors``: a new upload never clashes."""
    name, tag = parse_name(f"{name}:{tag}")
    sha256 = check_sha256(sha256, f"{name}:{tag}")
    root = weights_dir()
    return _inside(root / name / f"{tag}-{sha256[:16]}.safetensors", root)


def _warn(message: str) -> None:
    print(f"zoo: {printable(message)}", file=sys.stderr)


def sweep_cache_partials() -> None:
    """Sweep every folder of the weights cache: run by each pull, cache hits included, so a
    partial left by a killed download of any name does not stay forever."""
    root = weights_dir()
    with contextlib.suppress(OSError):
        for folder in [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]:
            sweep_partials(folder)


def _valid_cached(path: Path, sha256: str, size: int | None) -> bool:
    """A cached file counts only if it still hashes right; a corrupt one is dropped."""
    if not path.is_file():
        return False
    if (size is None or path.stat().st_size == size) and sha256_file(path) == sha256:
        with contextlib.suppress(OSError):  # its "last used" for `zoo cache clear --older-than`
            os.utime(path)
        return True
    _warn(f"cached {path} is corrupt; fetching it again")
    path.unlink(missing_ok=True)
    return False


# ------------------------------------------------------------------ the index


def project_registry() -> Path | None:
    """``registry/`` of the source tree this package runs from (a clone or an editable install).

    None for an installed wheel: it ships no registry (the weights would bloat every install);
    such installs point ``ZOO_REGISTRY`` at a clone's folder or at the index's URL instead.
    """
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").is_file() and (root / "core" / "zoo").is_dir():
        return root / "registry"
    return None


def as_index_location(where: str | Path) -> str:
    """A registry given as a path, a folder holding index.json, or a URL → its index location."""
    where = str(where)
    if is_url(where) and urlsplit(where).scheme.lower() != "file":
        return where
    path = url_path(where) if is_url(where) else Path(where).expanduser()
    return str(path / INDEX_FILE if path.is_dir() else path)


def user_registries() -> list[str]:
    """``$ZOO_REGISTRY``: index locations separated by whitespace, searched before all others."""
    return [as_index_location(item) for item in os.environ.get("ZOO_REGISTRY", "").split()]


def index_locations() -> list[tuple[str, str]]:
    """``(source, location)`` of every registry, in search order, like ``PATH``: the user's
    (``ZOO_REGISTRY``), then those plugins declare (``zoo_register_weights``), then the built-in
    ``registry/``. ``source`` is ``user``, the plugin's name or ``built-in``."""
    from ..plugins import weight_registries

    found = [(USER_SOURCE, location) for location in user_registries()]
    found += [(plugin, as_index_location(where)) for plugin, where in weight_registries()]
    own = project_registry()
    if own is not None and (own / INDEX_FILE).is_file():
        found.append((BUILT_IN_SOURCE, str(own / INDEX_FILE)))
    seen: set[str] = set()
    return [(s, loc) for s, loc in found if not (loc in seen or seen.add(loc))]


def index_location() -> str | None:
    """The registry ``zoo publish`` writes to by default: the user's first, else the built-in."""
    users = user_registries()
    if users:
        return users[0]
    own = project_registry()
    return str(own / INDEX_FILE) if own is not None and (own / INDEX_FILE).is_file() else None


@dataclass
class Index:
    """A parsed ``index.json``; ``location`` is where relative urls resolve from."""

    location: str
    weights: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # malformed entries: key → problem

    def entry(self, name: str, tag: str) -> tuple[str, dict[str, Any]]:
        key = f"{name}:{tag}"
        entry = self.weights.get(key)
        if entry is None and key in self.skipped:
            raise ZooError(f"{self.location}: entry {key} is malformed: {self.skipped[key]}")
        if entry is None:
            tags = sorted(k.partition(":")[2] for k in self.weights if k.partition(":")[0] == name)
            if tags:
                raise UsageError(f"no tag '{tag}' for {name} in {self.location}; "
                                 f"published tags: {', '.join(tags)}")
            if not self.weights:
                raise UsageError(f"no pretrained weights for {name}: the index {self.location} "
                                 "lists none yet (zoo publish RUN_DIR adds some)")
            raise UnknownName(f"pretrained weights (index {self.location})", key, self.weights)
        if not isinstance(entry, dict):
            raise ZooError(f"{self.location}: entry {key} is not an object")
        return key, entry

    def url_of(self, key: str, entry: Mapping[str, Any]) -> str:
        """The entry's url made absolute; refuses what would leave the registry."""
        url = entry.get("url")
        if not isinstance(url, str) or not url:
            raise ZooError(f"{self.location}: entry {key} has no url")
        if is_url(url):
            scheme = urlsplit(url).scheme.lower()
            if scheme not in INDEX_SCHEMES:
                raise ZooError(f"{self.location}: entry {key}: {scheme}:// is not allowed in an index "
                               "(use https, http, hf, or a path relative to the index)")
            return url
        if not RELATIVE_URL_RE.fullmatch(url) or any(p in (".", "..") for p in url.split("/")):
            raise ZooError(f"{self.location}: entry {key}: url '{url}' must stay inside the "
                           "registry (relative, no '..', no absolute path)")
        base = self.location
        if base.startswith("hf://"):
            return posixpath.join(posixpath.dirname(base), url)
        if is_url(base):
            return urljoin(base, url)
        local = Path(base).parent / url
        if not local.resolve().is_relative_to(Path(base).parent.resolve()):
            raise ZooError(f"{self.location}: entry {key}: '{url}' resolves outside the registry "
                           "(a symlink out of it); expected a file inside the registry folder")
        return str(local)


def _parse_index(raw: bytes, location: str) -> Index:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ZooError(f"registry index {location} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("weights", {}), dict):
        raise ZooError(f"registry index {location}: expected an object with a 'weights' object")
    weights, skipped = {}, {}
    for key, entry in data.get("weights", {}).items():
        problem = entry_problem(key, entry)
        if problem is None:
            weights[key] = entry
        else:  # one bad entry must not break listing and pulling for every user of the index
            skipped[key] = problem
            _warn(f"warning: {location}: skipping entry {key!r}: {problem}")
    return Index(location, weights, skipped)


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {value!r:.40}"
    return None if math.isfinite(value) else f"expected a finite number, got {value}"


def metrics_problem(main: Any, higher: Any, metrics: Any) -> str | None:
    """What is wrong with an entry's main metric, direction and metrics (None: nothing)."""
    if main is not None and not isinstance(main, str):
        return f"main_metric must be a name or null, got {main!r:.40}"
    if higher is not None and not isinstance(higher, bool):
        return f"higher_is_better must be true, false or null, got {higher!r:.40}"
    if not isinstance(metrics, dict):
        return f"metrics must be an object, got {metrics!r:.40}"
    for name, value in metrics.items():
        if isinstance(value, str) or value is None:
            continue  # e.g. "split": "test"
        problem = _number_problem(value)
        if problem is not None:
            return f"metric {name!r}: {problem}"
    return None


def entry_problem(key: Any, entry: Any) -> str | None:
    """Why an index entry cannot be used (None if it can): checked on every read and before
    ``publish`` writes one, so a bad field never reaches ``zoo list`` or a download."""
    name, sep, tag = key.partition(":") if isinstance(key, str) else ("", "", "")
    if not sep or not NAME_RE.fullmatch(name) or not NAME_RE.fullmatch(tag):
        return "the key must be NAME:TAG"
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("url"), str) or not entry["url"]:
        return f"url must be a non-empty string, got {entry.get('url')!r:.40}"
    if not isinstance(entry.get("sha256"), str) or not SHA256_RE.fullmatch(entry["sha256"].lower()):
        return f"sha256 must be 64 hex digits, got {entry.get('sha256')!r:.80}"
    size = entry.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        return f"size must be a byte count, got {size!r:.40}"
    for field_name in ("experiment", "tag", "published"):
        if entry.get(field_name) is not None and not isinstance(entry[field_name], str):
            return f"{field_name} must be a string, got {entry[field_name]!r:.40}"
    card = entry.get("card", {})
    if not isinstance(card, dict) or not all(isinstance(v, str) or v is None for v in card.values()):
        return "card must map names to strings"
    return metrics_problem(entry.get("main_metric"), entry.get("higher_is_better"),
                           entry.get("metrics", {}))


def _read_local_index(path: Path) -> bytes:
    """A local index.json: a regular file (a FIFO would hang) that resolves inside its own
    folder (a symlink out of the registry is refused), at most MAX_INDEX_BYTES."""

    if not path.exists():
        raise FileNotFoundError(path)
    if not path.resolve().is_relative_to(path.parent.resolve()):
        raise ZooError(f"registry index {path} resolves outside its folder (a symlink out of the "
                       "registry); expected index.json inside the registry folder")
    with open_regular(path, "registry index") as f:
        raw = f.read(MAX_INDEX_BYTES + 1)
    if len(raw) > MAX_INDEX_BYTES:
        raise ZooError(f"registry index {path} is larger than {MAX_INDEX_BYTES} bytes")
    return raw


def index_cache_dir() -> Path:
    """Where copies of remote indexes are kept (``zoo cache`` lists them)."""
    return zoo_home() / "registry"


def _index_cache(url: str) -> Path:
    return index_cache_dir() / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def load_index(location: str | None = None, max_age: float | None = None) -> Index:
    """Read the index; a remote one is cached in ``$ZOO_HOME/registry/`` for offline use.

    ``max_age`` (seconds) lets a fresh enough cached copy stand in for a request (listing).
    """
    location = location or index_location()
    if location is None:
        raise ZooError("no registry index: this zoo runs outside its source tree (a wheel ships no "
                       "registry/); set ZOO_REGISTRY to the path or URL of an index.json")
    if not is_remote(location):
        path = url_path(location) if is_url(location) else Path(location)
        try:
            return _parse_index(_read_local_index(path), str(path))
        except FileNotFoundError:
            raise ZooError(f"registry index not found: {path}") from None
        except OSError as e:
            raise ZooError(f"cannot read registry index {path}: {e}") from None
    cached = _index_cache(location)
    if offline():
        if cached.is_file():
            return _parse_index(cached.read_bytes(), location)
        raise ZooError(f"offline (ZOO_OFFLINE=1) and no cached copy of the registry index {location}: "
                       "run once with network access, or point ZOO_REGISTRY to a local index.json")
    if max_age is not None and cached.is_file() and time.time() - cached.stat().st_mtime < max_age:
        return _parse_index(cached.read_bytes(), location)
    seconds = download_seconds(None)
    try:
        with open_source(location, timeout=min(TIMEOUT, seconds)) as (stream, _):
            raw = read_bounded(stream, MAX_INDEX_BYTES + 1, seconds)
    except TooSlow:
        raise ZooError(f"registry index {location} did not arrive within {seconds:g} s (set "
                       "ZOO_DOWNLOAD_TIMEOUT=SECONDS to allow more)") from None
    except ZooError as e:
        if not cached.is_file():
            raise
        _warn(f"warning: {e}; using the cached copy of the index")
        return _parse_index(cached.read_bytes(), location)
    if len(raw) > MAX_INDEX_BYTES:
        raise ZooError(f"registry index {location} is larger than {MAX_INDEX_BYTES} bytes")
    index = _parse_index(raw, location)

    atomic_write(cached, lambda tmp: tmp.write_bytes(raw))
    return index


# ------------------------------------------------------------------ fetching


def find_entry(name: str, tag: str) -> tuple[Index, str, dict[str, Any]]:
    """The first registry (in :func:`index_locations` order) that lists ``NAME:TAG``, and the entry.

    A registry that cannot be read is skipped with a warning while another may still hold the
    name; if none does, its error is the one raised (it is the likelier cause).
    """
    locations = index_locations()
    if len(locations) <= 1:  # one registry (or none): its own, precise errors
        index = load_index(locations[0][1] if locations else None)
        return index, *index.entry(name, tag)
    key = f"{name}:{tag}"
    indexes, errors = [], []
    for source, location in locations:
        try:
            index = load_index(location)
        except ZooError as e:
            errors.append(e)
            _warn(f"warning: skipping the {source} registry: {e}")
            continue
        if key in index.weights or key in index.skipped:
            log.info("%s found in the %s registry %s", key, source, location)
            return index, *index.entry(name, tag)
        indexes.append(index)
    if errors:
        raise errors[0]
    known = {k for index in indexes for k in index.weights}
    tags = sorted({k.partition(":")[2] for k in known if k.partition(":")[0] == name})
    if tags:
        raise UsageError(f"no tag '{tag}' for {name} in any registry; published tags: "
                         f"{', '.join(tags)}")
    if not known:
        raise UsageError(f"no pretrained weights for {name}: the registries "
                         f"({', '.join(i.location for i in indexes)}) list none yet "
                         "(zoo publish RUN_DIR adds some)")
    raise UnknownName("pretrained weights", key, known)


def pull(spec: str) -> Path:
    """``NAME[:TAG]`` from the registries → a verified file in the cache (downloaded if needed)."""
    name, tag = parse_name(spec)
    index, key, entry = find_entry(name, tag)
    sha256 = check_sha256(entry.get("sha256"), f"{index.location}: entry {key}")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ZooError(f"{index.location}: entry {key}: size must be a byte count, got {size!r}")
    dest = cache_path(name, tag, sha256)
    sweep_cache_partials()
    if _valid_cached(dest, sha256, size):
        return dest
    url = index.url_of(key, entry)
    if offline() and is_remote(url):
        raise ZooError(f"offline (ZOO_OFFLINE=1) and {key} is not in the cache (would be {dest}); "
                       f"run `zoo pull {key}` with network access, or unset ZOO_OFFLINE")
    _warn(f"fetching {key} from {url}")
    return download(url, dest, sha256, size, label=key)


def fetch_url(spec: str) -> Path:
    """``URL[#sha256=HEX]``: remote URLs need the hash, since sha256 is always verified."""
    url, _, fragment = spec.partition("#")
    sha256 = None
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "sha256":
            raise UsageError(f"{spec}: the only URL fragment understood is #sha256=<64 hex digits>")
        sha256 = check_sha256(value, spec)
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file" and sha256 is None:
        return fetch(str(url_path(url)))  # the user's own local file, as a path would be
    if scheme not in ("http", "https", "hf", "file"):
        raise UsageError(f"unsupported URL scheme '{scheme}://' in {spec}: use https, http, file or hf")
    if sha256 is None:
        raise UsageError(f"{url}: no sha256 to verify it against; append '#sha256=<hex>' (`zoo info "
                         "FILE.safetensors` prints it) or list the file in a registry index")
    root = weights_dir()
    dest = _inside(root / "urls" / f"{sha256}.safetensors", root)
    sweep_cache_partials()
    if _valid_cached(dest, sha256, None):
        return dest
    if offline() and is_remote(url):
        raise ZooError(f"offline (ZOO_OFFLINE=1) and {url} is not in the cache; unset ZOO_OFFLINE")
    _warn(f"fetching {url}")
    return download(url, dest, sha256)


def fetch(spec: str) -> Path:
    """A local file for ``spec``: an existing path, a URL, or ``NAME[:TAG]`` from the index."""
    if is_url(spec):
        return fetch_url(spec)
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.exists():  # a FIFO, device or folder: say what it is, not "no such file"

        check_regular(path)
    if spec.endswith(WEIGHT_SUFFIXES) or "/" in spec or os.sep in spec or spec.startswith("~"):
        raise UsageError(f"no such weight file: {spec}")
    return pull(spec)


def headline(entry: Mapping[str, Any]) -> str:
    """``metric=value`` for an index entry: its main metric, else its first number."""
    metrics = entry.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    numbers = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    main = entry.get("main_metric")
    key = main if isinstance(main, str) and main in numbers else next(iter(numbers), None)
    return f"{key}={numbers[key]:.4g}" if key is not None else "yes"


@dataclass(frozen=True)
class Published:
    """One ``NAME:TAG`` as listed: its headline metric and the registry it comes from."""

    key: str
    name: str
    tag: str
    headline: str
    source: str  # "user", a plugin's name, or "built-in"
    location: str  # the index.json it is listed in


def published() -> list[Published]:
    """Every ``NAME:TAG`` of every registry; one the user's registry also lists hides the others'
    (the lookup order of :func:`find_entry`)."""
    found: dict[str, Published] = {}
    for source, location in index_locations():
        try:
            index = load_index(location, max_age=LIST_INDEX_MAX_AGE)
        except ZooError as e:
            _warn(f"warning: pretrained weights of the {source} registry unknown: {e}")
            continue
        for key, entry in sorted(index.weights.items()):
            name, _, tag = key.partition(":")
            if isinstance(entry, dict) and key not in found:
                found[key] = Published(key, name, tag or DEFAULT_TAG, headline(entry), source,
                                       index.location)
    return list(found.values())


def pretrained_by_name() -> dict[str, Published]:
    """Experiment name → its published weights (the ``default`` tag, else the first tag)."""
    out: dict[str, Published] = {}
    for item in sorted(published(), key=lambda p: p.key):
        if item.name not in out or item.tag == DEFAULT_TAG:
            out[item.name] = item
    return out


def pretrained_summary() -> dict[str, str]:
    """Experiment name → headline metric of its published weights (the ``default`` tag first)."""
    return {name: item.headline for name, item in pretrained_by_name().items()}
