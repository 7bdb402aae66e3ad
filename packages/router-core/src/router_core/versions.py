"""Versions of the installed packages that wrote an artefact (a saved model's meta.json, an export's manifest)."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """`{"python": ..., name: version}` for each of `names` that is installed (missing ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
