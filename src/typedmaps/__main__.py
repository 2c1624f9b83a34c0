"""``python -m typedmaps``: the same command line as the ``typedmaps`` script."""

from ._cli import main

raise SystemExit(main())
