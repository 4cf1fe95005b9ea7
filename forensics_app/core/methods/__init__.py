"""Method registry: every module in this package that defines ``METHOD`` is a method.

Adding a method is adding a file here; the pipeline, CLI, GUI and report find it by name.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from forensics_app.core.errors import ForensicsError

DEFAULT_METHODS = ("aedr",)


@lru_cache(maxsize=1)
def all_methods() -> dict:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if method is not None:
            found[method.name] = method
    return found


def get_method(name: str):
    methods = all_methods()
    if name not in methods:
        raise ForensicsError(f"Unknown method {name!r}. Available: {', '.join(sorted(methods))}.")
    return methods[name]
