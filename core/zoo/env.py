"""What the user's environment says: where zoo keeps things, and which switches are on.

One parser for every ``ZOO_*`` switch, so ``ZOO_OFFLINE=off`` means the same in the core and in
every plugin. Plugins use these through ``zoo.data_dir()``, ``zoo.cache_dir()``, ``zoo.offline()``
and ``zoo.env_flag()`` instead of reading ``os.environ`` themselves. No torch, no click here.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError

TRUE = ("1", "true", "yes", "on")
FALSE = ("", "0", "false", "no", "off")


def env_flag(name: str, default: bool = False) -> bool:
    """``1/true/yes/on`` → True, ``0/false/no/off`` or empty → False, unset → ``default``.

    Case and surrounding spaces are ignored; anything else is a one-line usage error, so a typo
    such as ``ZOO_OFFLINE=ture`` is reported instead of silently meaning one or the other.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise UsageError(f"{name}={raw!r} is not a switch: use 1/true/yes/on or 0/false/no/off")


def cache_dir() -> Path:
    """``$ZOO_HOME``, else the platform's user cache directory: weights, indexes, data."""
    home = os.environ.get("ZOO_HOME", "").strip()
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("zoo"))


def data_dir() -> Path:
    """``$ZOO_DATA``, else ``$ZOO_HOME/data``: the root under which datasets live."""
    data = os.environ.get("ZOO_DATA", "").strip()
    return Path(data).expanduser() if data else cache_dir() / "data"


def offline() -> bool:
    """``ZOO_OFFLINE``: never touch the network (no index, weight or dataset downloads)."""
    return env_flag("ZOO_OFFLINE")


def debug() -> bool:
    """``ZOO_DEBUG``: show the traceback behind a one-line error."""
    return env_flag("ZOO_DEBUG")
