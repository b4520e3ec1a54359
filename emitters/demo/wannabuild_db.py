"""A throwaway PostgreSQL with the part of wanna-build's schema that
debpulse-wanna-build reads, and a state change written the way
wanna-build writes one.

The tables and public views follow wanna-build's published schema (same
names, columns and types; the version column is a debversion where the
postgresql-debversion extension is installed).  Only the columns and
tables the demo touches are there.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import time
from pathlib import Path

from .children import Children, StepFailed

DATABASE = "wanna-build"
GUEST = "guest"          # the read-only role the adapter connects as
ARCH, SUITE = "amd64", "sid"
PORT = 5432              # only names the Unix socket: the server listens on no TCP port

SCHEMA = """
CREATE TABLE public.distributions (
    distribution character varying NOT NULL PRIMARY KEY,
    public boolean DEFAULT true NOT NULL
);
CREATE TABLE public.locks (
    distribution character varying,
    architecture character varying
);
CREATE TABLE public.packages (
    architecture character varying NOT NULL,
    package character varying NOT NULL,
    distribution character varying NOT NULL,
    version {version},
    state character varying,
    previous_state character varying,
    state_change timestamp without time zone,
    builder character varying
);
CREATE TABLE public.transactions (
    architecture character varying,
    package character varying,
    distribution character varying,
    version {version},
    action character varying,
    prevstate character varying,
    state character varying,
    real_user character varying,
    set_user character varying,
    "time" timestamp without time zone
);
CREATE TABLE public.pkg_history (
    architecture character varying NOT NULL,
    package character varying NOT NULL,
    distribution character varying NOT NULL,
    version {version} NOT NULL,
    "timestamp" timestamp without time zone NOT NULL,
    result character varying NOT NULL,
    build_time integer,
    disk_space bigint,
    builder character varying
);
CREATE SCHEMA "{arch}_public";
CREATE VIEW "{arch}_public".transactions AS
    SELECT transactions.package, transactions.distribution, transactions.version, transactions.action,
           transactions.prevstate, transactions.state, transactions.real_user, transactions.set_user,
           transactions."time"
    FROM (public.transactions NATURAL JOIN public.distributions)
    WHERE ((distributions.public = true) AND ((transactions.architecture)::text = '{arch}'::text));
CREATE VIEW "{arch}_public".pkg_history AS
    SELECT pkg_history.package, pkg_history.distribution, pkg_history.version, pkg_history."timestamp",
           pkg_history.result, pkg_history.build_time, pkg_history.disk_space, pkg_history.builder
    FROM (public.pkg_history NATURAL JOIN public.distributions)
    WHERE ((distributions.public = true) AND ((pkg_history.architecture)::text = '{arch}'::text));
CREATE ROLE {guest} LOGIN;
GRANT USAGE ON SCHEMA "{arch}_public" TO {guest};
GRANT SELECT ON ALL TABLES IN SCHEMA "{arch}_public" TO {guest};
INSERT INTO public.distributions VALUES ('{suite}', true);
INSERT INTO public.locks VALUES ('{suite}', '{arch}');
"""


def postgres_bin() -> tuple[Path | None, str]:
    """The PostgreSQL server binaries (15 preferred), or None and why not."""
    base = Path("/usr/lib/postgresql")
    found = sorted(base.glob("*/bin/postgres"), key=lambda p: (p.parent.parent.name != "15", p))
    if not found:
        return None, f"no PostgreSQL server in {base} (apt-get install postgresql-15 postgresql-15-debversion)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root, and there is no postgres account to run the server as"
    return found[0].parent, ""


def unreachable_by_postgres(directory: Path) -> Path | None:
    """The first directory on the way to `directory` that the postgres
    account cannot pass through (a private TMPDIR, say), when we are root."""
    if os.geteuid() != 0:
        return None
    account = pwd.getpwnam("postgres")
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if "postgres" in g.gr_mem}
    for d in [*reversed(directory.parents), directory]:
        st = d.stat()
        if st.st_uid == account.pw_uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid in groups:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return d
    return None


class ThrowawayPostgres:
    """initdb in `directory`, a server on a Unix socket there, owned by PID."""

    def __init__(self, directory: Path, bindir: Path, children: Children) -> None:
        self.dir = directory
        self.bindir = bindir
        self.children = children
        # The server refuses to run as root: it runs as postgres then.
        self.as_user = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
        directory.mkdir(parents=True)
        if self.as_user:
            shutil.chown(directory, "postgres", "postgres")

    def dsn(self, user: str = GUEST, dbname: str = DATABASE) -> str:
        return f"host={self.dir} port={PORT} dbname={dbname} user={user}"

    def start(self) -> None:
        import psycopg

        env = {**self.children.env, "LC_ALL": "C"}
        self.children.run("initdb", [str(self.bindir / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                                     "-A", "trust", "--no-sync", "--no-instructions", "-E", "UTF8"],
                          cwd=self.dir, env=env, timeout=60, **self.as_user)
        server = self.children.start(
            "postgres", [str(self.bindir / "postgres"), "-D", str(self.dir / "data"), "-p", str(PORT),
                         "-k", str(self.dir), "-c", "listen_addresses=", "-c", "fsync=off"],
            stop_signal=signal.SIGINT,  # fast shutdown
            cwd=self.dir, env=env, **self.as_user)
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(self.dsn("postgres", "postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if server.proc.poll() is not None or time.monotonic() > deadline:
                    raise StepFailed(f"PostgreSQL did not start{server.log_tail()}") from None
                time.sleep(0.05)

    def load_schema(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres", "postgres"), autocommit=True) as conn:
            # wanna-build's database is SQL_ASCII: the adapter gets bytes, as in production.
            conn.execute(f'CREATE DATABASE "{DATABASE}" ENCODING SQL_ASCII LC_COLLATE "C" LC_CTYPE "C"'
                         " TEMPLATE template0")
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            version = "text"
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'debversion'").fetchone():
                conn.execute("CREATE EXTENSION debversion")
                version = "public.debversion"
            conn.execute(SCHEMA.format(version=version, arch=ARCH, suite=SUITE, guest=GUEST))  # type: ignore[arg-type]

    def change_state(self, package: str, version: str, state: str, action: str, *,
                     previous: str, builder: str, real_user: str = "buildd") -> None:
        """One state change as wanna-build makes it: in one database
        transaction, lock the (suite, arch), log the change into transactions
        with time = now() (bin/wanna-build's log_ta), update packages."""
        import psycopg

        with psycopg.connect(self.dsn("postgres")) as conn:
            # The package as the archive import left it, before the change.
            conn.execute("INSERT INTO public.packages (architecture, package, distribution, version, state)"
                         " VALUES (%s, %s, %s, %s, %s)", (ARCH, package, SUITE, version, previous))
            conn.commit()
            with conn.transaction():
                conn.execute("SELECT 1 FROM public.locks WHERE architecture = %s AND distribution = %s FOR UPDATE",
                             (ARCH, SUITE))
                conn.execute(
                    "INSERT INTO public.transactions (architecture, package, distribution, version, action,"
                    " prevstate, state, real_user, set_user, time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
                    (ARCH, package, SUITE, version, action, previous, state, real_user, builder))
                conn.execute(
                    "UPDATE public.packages SET state = %s, previous_state = %s, state_change = now(), builder = %s"
                    " WHERE architecture = %s AND package = %s AND distribution = %s",
                    (state, previous, builder, ARCH, package, SUITE))
