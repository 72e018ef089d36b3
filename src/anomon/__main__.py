"""``python -m anomon`` runs the CLI."""

from anomon.cli.main import main

raise SystemExit(main())
