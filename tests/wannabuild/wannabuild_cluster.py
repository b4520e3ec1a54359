"""A real PostgreSQL 15 (tests/pg.py) with wanna-build's published schema,
for tests and benchmarks.  Also writes state changes the way wanna-build does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import psycopg
from pg import Postgres

DATABASE = "wanna-build"
ARCHES = ("amd64", "arm64")
PUBLIC_SUITES = ("sid", "experimental")
HIDDEN_SUITE = "sid-security"  # distributions.public = false: not in the _public views
GUEST = "guest"


class WannaBuildCluster(Postgres):
    def __init__(self, fixtures: Path, arches: Iterable[str] = ARCHES) -> None:
        super().__init__(prefix="wbpg-")
        self.fixtures = fixtures / "wanna-build"
        self.arches = tuple(arches)

    def dsn(self, user: str = GUEST, dbname: str = DATABASE) -> str:
        return super().dsn(user=user, dbname=dbname)

    def connect(self, user: str = "postgres", dbname: str = DATABASE, **kw: object) -> psycopg.Connection:
        return super().connect(user=user, dbname=dbname, **kw)

    # -- schema -------------------------------------------------------------

    def load_schema(self) -> None:
        """The published schema, with the three steps PostgreSQL 15 needs."""
        with psycopg.connect(self.dsn(user="postgres", dbname="postgres"), autocommit=True) as c:
            # wanna-build's dump says client_encoding SQL_ASCII: the real
            # database stores bytes, which is what the adapter must expect.
            c.execute(f'CREATE DATABASE "{DATABASE}" ENCODING SQL_ASCII LC_COLLATE "C" LC_CTYPE "C" TEMPLATE template0')
        with self.connect(autocommit=True) as c:
            c.execute("DROP SCHEMA public CASCADE")
            c.execute((self.fixtures / "roles.sql").read_text())
            c.execute((self.fixtures / "main-tables.sql").read_text())
            c.execute("SET search_path = public")
            c.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
            template = (self.fixtures / "arches-tables.in.sql").read_text()
            for arch in self.arches:
                c.execute(template.replace("ARCH", arch))
                c.execute("SET search_path = public")
            c.execute(f"CREATE ROLE {GUEST} LOGIN")
            c.execute("INSERT INTO public.distributions (distribution, public, build_dep_resolver) VALUES"
                      + ",".join(f"('{s}', true, 'apt')" for s in PUBLIC_SUITES)
                      + f",('{HIDDEN_SUITE}', false, 'apt')")
            for arch in self.arches:
                c.execute("INSERT INTO public.architectures VALUES (%s)", (arch,))
                for suite in (*PUBLIC_SUITES, HIDDEN_SUITE):
                    c.execute("INSERT INTO public.distribution_architectures (distribution, architecture, archive)"
                              " VALUES (%s, %s, 'debian')", (suite, arch))
                    c.execute("INSERT INTO public.locks VALUES (%s, %s)", (suite, arch))

    def reset(self) -> None:
        """Empty the package tables and drop any trigger a test installed."""
        with self.connect(autocommit=True) as c:
            c.execute("DROP TRIGGER IF EXISTS debpulse_notify ON public.transactions")
            c.execute("DROP TRIGGER IF EXISTS debpulse_notify ON public.pkg_history")
            c.execute("TRUNCATE public.transactions, public.pkg_history, public.packages")


class WannaBuild:
    """Writes as wanna-build does: in one database transaction, lock the
    (suite, arch), update "<arch>".packages and log the change into
    "<arch>".transactions with time = now() (the transaction's start).
    `log_ta()` in bin/wanna-build runs before the packages update."""

    def __init__(self, conn: psycopg.Connection, user: str = "buildd_amd64-x86-01") -> None:
        self.conn = conn
        self.user = user

    def change(self, arch: str, package: str, version: str, action: str, state: str,
               suite: str = "sid", *, builder: str | None = None, real_user: str = "buildd",
               binnmu: int | None = None, commit: bool = True) -> None:
        cur = self.conn.cursor()
        cur.execute("SELECT 1 FROM public.locks WHERE architecture = %s AND distribution = %s FOR UPDATE",
                    (arch, suite))
        cur.execute(f'SELECT state FROM "{arch}".packages WHERE package = %s AND distribution = %s',
                    (package, suite))
        row = cur.fetchone()
        # An SQL_ASCII database hands text back as bytes.
        prev = (row[0].decode() if isinstance(row[0], bytes) else row[0]) if row else "(none)"
        cur.execute(
            f'INSERT INTO "{arch}".transactions (package, distribution, version, action, prevstate, state,'
            ' real_user, set_user, time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())',
            (package, suite, version, action, prev, state, real_user, self.user),
        )
        if row is None:
            cur.execute(f'INSERT INTO "{arch}".packages (package, distribution) VALUES (%s, %s)', (package, suite))
        cur.execute(
            f'UPDATE "{arch}".packages SET version = %s, state = %s, previous_state = %s, state_change = now(),'
            ' builder = %s, binary_nmu_version = %s WHERE package = %s AND distribution = %s',
            (version, state, None if row is None else prev, builder, binnmu, package, suite),
        )
        if commit:
            self.conn.commit()

    def build_result(self, arch: str, package: str, version: str, result: str, build_time: int,
                     disk_space: int, builder: str, suite: str = "sid", *, when: datetime | None = None) -> None:
        self.conn.execute(
            f'INSERT INTO "{arch}".pkg_history (package, distribution, version, "timestamp", result, build_time,'
            ' disk_space, builder) VALUES (%s, %s, %s, coalesce(%s, now()), %s, %s, %s, %s)',
            (package, suite, version, when, result, build_time, disk_space, builder),
        )
        self.conn.commit()

    def log(self, arch: str, package: str, state: str, *, time: datetime | None = None, suite: str = "sid",
            version: str = "1.0-1", action: str = "--update", prevstate: str = "Needs-Build",
            set_user: str | None = None, commit: bool = True) -> None:
        """A bare transactions row (log_ta alone), with an explicit time if given."""
        self.conn.execute(
            f'INSERT INTO "{arch}".transactions (package, distribution, version, action, prevstate, state,'
            ' real_user, set_user, time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s::timestamp, now()))',
            (package, suite, version, action, prevstate, state, "wbadm", set_user or self.user, time),
        )
        if commit:
            self.conn.commit()

    def server_now(self) -> datetime:
        row = self.conn.execute("SELECT localtimestamp").fetchone()
        self.conn.rollback()
        assert row is not None
        return row[0]


def public_transactions(cluster: WannaBuildCluster) -> list[tuple[str, str, str, str, str]]:
    """What the public views hold: (arch, package, action, state, time) per row."""
    with cluster.connect() as c:
        rows = c.execute(
            "SELECT t.architecture, t.package, t.action, t.state, t.time FROM public.transactions t"
            " JOIN public.distributions d USING (distribution) WHERE d.public").fetchall()
    return sorted((a.decode(), p.decode(), ac.decode(), s.decode(), t.isoformat()) for a, p, ac, s, t in rows)
