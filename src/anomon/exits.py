"""Exit codes of every ``anomon`` command, defined once.

====  =====================================================================
code  meaning
====  =====================================================================
0     success
1     failure (the broker refused, a file could not be read, a goal missed)
2     usage: a wrong argument or setting; the message names the fix
3     a resource the command needs is not installed (an optional extra)
130   interrupted (Ctrl-C)
====  =====================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130
