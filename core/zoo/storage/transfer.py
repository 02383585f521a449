"""Moving bytes safely: open a source (http, https, file, hf or a path), stream it to a temp file
beside its destination while hashing, and keep it only if the hash is the one promised.

The hub (indexes, cache names) and the plugins' dataset fetchers both come through
:func:`download`; nothing here knows about registries. Never imports torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from ..errors import UsageError, ZooError
from .files import CHUNK, open_regular, replace_from_temp

SHA256_RE = re.compile(r"[0-9a-f]{64}")
URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
TIMEOUT = 30.0  # seconds a socket may wait for the next bytes
STALE_PART_SECONDS = 3600.0  # a temp download untouched this long belongs to a dead process
PART_GRACE_SECONDS = 10.0  # an unlocked temp download older than this belongs to a dead process
DOWNLOAD_FLOOR_SECONDS = 300.0  # default overall deadline of one download: this much …
DOWNLOAD_MIN_RATE = 256 * 1024  # … plus its size at this many bytes per second


def is_url(text: str) -> bool:
    return bool(URL_RE.match(text))


def check_sha256(value: Any, where: str) -> str:
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value.lower()):
        raise ZooError(f"{where}: sha256 must be 64 hex digits, got {value!r}")
    return value.lower()


def url_path(url: str) -> Path:
    from urllib.request import url2pathname

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"{url}: file:// URLs must name a local file")
    return Path(url2pathname(unquote(parts.path)))


def _hf_file(url: str) -> Path:
    """``hf://OWNER/REPO[@REVISION]/PATH`` → a local file via huggingface_hub (optional extra)."""
    parts = url[len("hf://"):].split("/")
    if len(parts) < 3 or not all(parts):
        raise UsageError(f"{url}: expected hf://OWNER/REPO[@REVISION]/PATH")
    owner, repo, *path = parts
    repo, _, revision = repo.partition("@")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ZooError(f"{url}: hf:// needs huggingface_hub, an optional extra: "
                       "pip install 'zoo[hf]' (or pip install huggingface_hub)") from None
    try:
        return Path(hf_hub_download(repo_id=f"{owner}/{repo}", filename="/".join(path),
                                    revision=revision or None))
    except Exception as e:  # huggingface_hub raises many types; all mean "could not get it"
        raise ZooError(f"cannot download {url} from the Hugging Face Hub: {e}") from None


@contextlib.contextmanager
def open_source(location: str, timeout: float = TIMEOUT) -> Iterator[tuple[IO[bytes], int | None]]:
    """A readable stream and its announced length for a URL (http, https, file, hf) or path."""
    import http.client
    import urllib.error
    import urllib.request

    scheme = urlsplit(location).scheme.lower() if is_url(location) else ""
    if scheme in ("http", "https"):
        from .. import __version__

        request = urllib.request.Request(location, headers={"User-Agent": f"zoo/{__version__}"})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise ZooError(f"download of {location} failed: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise ZooError(f"cannot reach {location}: {reason}") from None
        with response:
            length = response.headers.get("Content-Length")
            yield response, int(length) if length and length.isdigit() else None
        return
    if scheme == "hf":
        path = _hf_file(location)
    elif scheme == "file":
        path = url_path(location)
    elif scheme:
        raise UsageError(f"unsupported URL scheme '{scheme}://' in {location}: use https, http, "
                         "file or hf")
    else:
        path = Path(location).expanduser()

    if not path.exists():
        raise ZooError(f"no such file: {path}")
    with open_regular(path, "file") as f:
        yield f, os.fstat(f.fileno()).st_size


class TooSlow(Exception):
    """A transfer passed its overall deadline (``count`` bytes had arrived)."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def download_seconds(size: int | None) -> float:
    """The overall deadline of one download: ``ZOO_DOWNLOAD_TIMEOUT`` seconds, else 5 minutes plus
    the size at 256 KiB/s. A server dripping one byte every few seconds never trips the socket
    timeout, so without this a pull would hang forever."""
    text = os.environ.get("ZOO_DOWNLOAD_TIMEOUT", "").strip()
    if not text:
        return DOWNLOAD_FLOOR_SECONDS + (size or 0) / DOWNLOAD_MIN_RATE
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"ZOO_DOWNLOAD_TIMEOUT={text!r}: expected a positive number of seconds")
    return seconds


def read_bounded(stream: IO[bytes], limit: int, seconds: float) -> bytes:
    """Up to ``limit`` bytes, whatever arrives within ``seconds`` (raises :class:`TooSlow`)."""
    read = getattr(stream, "read1", stream.read)
    deadline, parts, count = time.monotonic() + seconds, [], 0
    while count < limit:
        chunk = read(min(CHUNK, limit - count))
        if not chunk:
            break
        parts.append(chunk)
        count += len(chunk)
        if time.monotonic() > deadline:
            raise TooSlow(count)
    return b"".join(parts)


def _copy(stream: IO[bytes], out: IO[bytes], total: int | None, limit: int | None,
          label: str, seconds: float | None = None) -> tuple[str, int, str | None]:
    """Copy in chunks, hashing as we go, with a progress bar on stderr (when it is a terminal).

    A connection that breaks off ends the copy like an early EOF (its error is returned), so the
    caller reports it as a truncated transfer with both hashes. Each read returns what has
    arrived (``read1``), so ``seconds``, the overall deadline, is checked even while a server
    trickles bytes (raises :class:`TooSlow`).
    """
    import http.client

    from tqdm import tqdm

    digest, count, error = hashlib.sha256(), 0, None
    read = getattr(stream, "read1", stream.read)
    deadline = None if seconds is None else time.monotonic() + seconds
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
              file=sys.stderr, disable=None, leave=False) as bar:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise TooSlow(count)
            want = CHUNK if limit is None else min(CHUNK, limit - count)
            if want <= 0:
                break
            try:
                chunk = read(want)
            except (OSError, http.client.HTTPException) as e:
                error = str(e) or type(e).__name__
                break
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            count += len(chunk)
            bar.update(len(chunk))
    return digest.hexdigest(), count, error


def download(location: str, dest: Path, sha256: str, size: int | None = None,
             label: str | None = None) -> Path:
    """Stream ``location`` into ``dest``, verified: a bad or short file raises and leaves nothing."""
    sha256 = check_sha256(sha256, label or location)
    label = label or dest.name
    seconds = download_seconds(size)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    lock_partial(fd)  # tells sweep_partials in other processes that this one is alive
    try:
        with os.fdopen(fd, "wb") as out:
            with open_source(location, timeout=min(TIMEOUT, seconds)) as (stream, announced):
                expected = size if size is not None else announced
                if size is None and announced is not None:
                    seconds = download_seconds(announced)
                limit = None if expected is None else expected + 1  # one byte more reveals excess
                actual, count, error = _copy(stream, out, expected, limit, label, seconds)
            out.flush()
            os.fsync(out.fileno())
        broke = f" ({error})" if error else ""
        if expected is not None and count != expected or error:
            what = "oversized" if expected is not None and count > expected else "truncated"
            of = f" of {expected}" if expected is not None else ""
            raise ZooError(f"{what} download of {label} from {location}: {count}{of} bytes{broke}; "
                           f"sha256 expected {sha256}, got {actual}; nothing was cached")
        if actual != sha256:
            raise ZooError(f"sha256 mismatch for {label} from {location}: expected {sha256}, "
                           f"got {actual}; nothing was cached")
        replace_from_temp(tmp, dest)
    except TooSlow as e:
        Path(tmp).unlink(missing_ok=True)
        raise ZooError(f"download of {label} from {location} passed its {seconds:g} s deadline "
                       f"({e.count} bytes arrived); expected it to finish in time (set "
                       "ZOO_DOWNLOAD_TIMEOUT=SECONDS to allow more); nothing was cached") from None
    except OSError as e:  # the cache's disk: full, read-only, …
        Path(tmp).unlink(missing_ok=True)
        raise ZooError(f"cannot write {dest}: {e.strerror or e}; nothing was cached") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def lock_partial(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # no flock: sweep_partials goes by age alone
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _held_by_live_process(part: Path) -> bool:
    """True while the download writing ``part`` holds its lock (or when locks are unavailable)."""
    try:
        import fcntl
    except ImportError:
        return True
    fd = os.open(part, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases our probe lock
    return False


def sweep_partials(folder: Path) -> int:
    """Delete the temp downloads (``.*.part``) a killed pull left in ``folder``: those no live
    download holds locked (after a few seconds' grace) and any untouched for an hour. Returns
    how many were removed."""
    removed, now = 0, time.time()
    for part in folder.glob(".*.part"):
        with contextlib.suppress(OSError):
            info = part.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue
            age = now - info.st_mtime
            if age > STALE_PART_SECONDS or (age > PART_GRACE_SECONDS
                                            and not _held_by_live_process(part)):
                part.unlink()
                removed += 1
    return removed
