"""The ``anomon`` command: argument parsing, exit codes and error printing.

One module per command group; :mod:`.main` holds the parser and dispatch.
"""
