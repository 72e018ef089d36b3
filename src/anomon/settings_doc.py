"""Render the settings as documentation (``config/README.md``, ``config/anomon.env.example``)."""

from __future__ import annotations

from anomon.settings import Settings

UNSET = "unset"
"""The default shown for a setting without one (its description says what unset means)."""


def settings_rows() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting."""
    return [
        (f"ANOMON_{name.upper()}", UNSET if field.default is None else str(field.default),
         field.description or "")
        for name, field in Settings.model_fields.items()
    ]


def markdown_table() -> str:
    """A Markdown table of every setting."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{var}` | `{default}` | {desc} |" for var, default, desc in settings_rows()]
    return "\n".join(lines)


def env_example() -> str:
    """An env file with every setting at its default, commented."""
    out = ["# anomon settings at their defaults; uncomment to change.", ""]
    for var, default, desc in settings_rows():
        out += [f"# {desc}", f"# {var}={'' if default == UNSET else default}", ""]
    return "\n".join(out)
