"""The package version: the one place it is written.

pyproject.toml reads it from here (hatchling's ``[tool.hatch.version]``), so
the wheel's metadata, ``typedmaps.__version__`` and ``typedmaps --version``
always agree.
"""

__version__ = "0.1.0"
