"""voucher-core's adapters: everything that does I/O or runs as a program.

``python -m voucher_adapters`` runs the ``voucher`` command. Importing this package imports
nothing else (pytest loads its plugin, :mod:`voucher_adapters.pytest_plugin`, in every run of
a host's suite), so ``__version__`` is looked up from :mod:`voucher_core` when asked for.
"""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from voucher_core import __version__  # noqa: PLC0415  (only when asked)

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
