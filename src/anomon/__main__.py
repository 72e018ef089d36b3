"""``python -m anomon`` runs the CLI."""

from anomon.cli import main

raise SystemExit(main())
