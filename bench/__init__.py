"""anomon's benchmark: ``python -m bench`` (or ``make bench``). Not a test."""
