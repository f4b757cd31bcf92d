"""DataLoaders live for one request: kept on that request's context object, created on first use.

A loader caches what it loaded, so sharing one between requests would leak one person's rows into
another's answer and serve stale data; the context dies with its request, and its loaders with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strawberry.dataloader import DataLoader

_ATTRIBUTE = "_dataloaders"


def request_loader(context: Any, name: str, make: Callable[[], DataLoader]) -> DataLoader:
    """The request's loader called `name`, made by `make` the first time it is asked for."""
    loaders: dict[str, DataLoader] | None = getattr(context, _ATTRIBUTE, None)
    if loaders is None:
        loaders = {}
        setattr(context, _ATTRIBUTE, loaders)
    if name not in loaders:
        loaders[name] = make()
    return loaders[name]
