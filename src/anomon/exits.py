"""Exit codes of every ``anomon`` command, and the one way a command reports a failure.

====  =====================================================================
code  meaning
====  =====================================================================
0     success
1     failure (the broker refused or stayed away, a file could not be
      read, every input line was rejected, a goal missed)
2     usage: a wrong argument or setting; the message names the fix
3     a resource the command needs is not installed (an optional extra)
130   interrupted (Ctrl-C, SIGTERM, the terminal closed)
====  =====================================================================

A failure is one line on stderr, ``anomon COMMAND: what went wrong (the fix)``,
never a traceback:

>>> import io
>>> err = io.StringIO()
>>> report("tail", "broker 127.0.0.1:9 unreachable for 30 s", fix="is it running? "
...        "pass --broker", err=err)
1
>>> err.getvalue()
'anomon tail: broker 127.0.0.1:9 unreachable for 30 s (is it running? pass --broker)\\n'
>>> error_text(ConnectionRefusedError(111, "Connection refused"))
'[Errno 111] Connection refused'
>>> class KafkaConnectionError(Exception): ...
>>> error_text(KafkaConnectionError("KafkaConnectionError: Unable to bootstrap from x"))
'KafkaConnectionError: Unable to bootstrap from x'
"""

from __future__ import annotations

import sys
from typing import TextIO

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


def error_text(err: BaseException) -> str:
    """``err`` in one line, its class named once (some errors repeat it in their text)."""
    name = type(err).__name__
    text = " ".join(str(err).split()) or name
    if text.startswith(name) or text.startswith("["):
        return text
    if isinstance(err, OSError | TimeoutError | ValueError | KeyError | LookupError):
        return text
    return f"{name}: {text}"


def report(command: str, message: str, *, fix: str = "", code: int = EXIT_FAIL,
           err: TextIO | None = None) -> int:
    """Print ``anomon COMMAND: MESSAGE (FIX)`` on stderr; returns ``code`` (1 by default)."""
    stream = err if err is not None else sys.stderr
    line = f"anomon {command}: {message}" + (f" ({fix})" if fix else "")
    try:
        stream.write(line + "\n")
        stream.flush()
    except (BrokenPipeError, ValueError):  # stderr closed: the exit code still tells
        pass
    return code


def usage(command: str, message: str, *, fix: str = "", err: TextIO | None = None) -> int:
    """A usage error (exit code 2): a wrong argument or setting."""
    return report(command, message, fix=fix, code=EXIT_USAGE, err=err)
