"""The optional fast path: a trigger that NOTIFYs on new rows.

Installed by a database administrator on the base tables (the per-arch
views write into them through rules), so one trigger covers every
architecture; the payload is the architecture.  PostgreSQL delivers a
notification at commit and folds identical ones of one transaction, so a
`--merge-v3` run of thousands of rows sends one per architecture.
The guest needs no privilege to LISTEN.
"""

from __future__ import annotations

import re

from debpulse.emitters.errors import ConfigError

TABLES = ("transactions", "pkg_history")
FUNCTION = "debpulse_notify"
TRIGGER = "debpulse_notify"


def _check(channel: str) -> None:
    # The channel lands in SQL text; keep it a plain identifier.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", channel):
        raise ConfigError(f"channel {channel!r} must be a lower-case SQL identifier")


def install_sql(channel: str) -> str:
    _check(channel)
    parts = [
        "BEGIN;",
        f"CREATE OR REPLACE FUNCTION public.{FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$",
        "BEGIN",
        f"    PERFORM pg_notify('{channel}', NEW.architecture);",
        "    RETURN NULL;",
        "END;",
        "$$;",
    ]
    for table in TABLES:
        parts += [
            f"DROP TRIGGER IF EXISTS {TRIGGER} ON public.{table};",
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON public.{table}",
            f"    FOR EACH ROW EXECUTE FUNCTION public.{FUNCTION}();",
        ]
    parts.append("COMMIT;")
    return "\n".join(parts) + "\n"


def uninstall_sql() -> str:
    parts = ["BEGIN;"]
    parts += [f"DROP TRIGGER IF EXISTS {TRIGGER} ON public.{table};" for table in TABLES]
    parts += [f"DROP FUNCTION IF EXISTS public.{FUNCTION}();", "COMMIT;"]
    return "\n".join(parts) + "\n"
