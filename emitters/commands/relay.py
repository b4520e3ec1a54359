"""debpulse-relay: sign, number, store and publish for local publishers."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from .. import cli, metrics, systemd
from ..options import BUS, RELAY_PUBLISH, BusOptions
from ..publisher import Publisher
from ..relay import Relay
from ..signing import SequoiaSigner, Signer

log = logging.getLogger("debpulse-relay")

EPILOG = """\
example:
  debpulse-relay --publish tcp://*:9940 --signing-key 0123...CDEF --gnupg-home /etc/debpulse/gnupg

With no signing key configured the relay makes one on first start
(<state>/relay/secret-key.asc) and publishes its certificate beside it as
signing-key.asc, which local subscribers trust by default: enough for a
first try, not for production (see the manual, "Security model").
"""


def _own_key(opts: BusOptions) -> Signer:
    import pysequoia

    secret = opts.own_state / "secret-key.asc"
    if not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        tsk = pysequoia.Tsk.generate(f"debpulse relay <{opts.username}@localhost>")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(tsk))
        log.warning("no signing key configured: made %s (fine for a first try, not for production)", secret)
    return SequoiaSigner.from_file(secret)


def _export_certificate(signer: Signer, opts: BusOptions) -> None:
    """Publish our certificate for local subscribers (not a secret)."""
    import pysequoia

    cert_file = opts.own_state / "signing-key.asc"
    try:
        if isinstance(signer, SequoiaSigner) and signer.certificate is not None:
            data = signer.certificate
        else:
            import subprocess

            env = {**os.environ, **({"GNUPGHOME": opts.gnupg_home} if opts.gnupg_home else {})}
            data = subprocess.run(["gpg", "--batch", "--armor", "--export", signer.fingerprint],
                                  env=env, capture_output=True, check=True).stdout.decode()
            pysequoia.Cert.from_bytes(data.encode())
        tmp = cert_file.with_name(".signing-key.asc.tmp")
        tmp.write_text(data)
        os.chmod(tmp, 0o644)
        os.rename(tmp, cert_file)
    except Exception as exc:
        log.warning("could not write %s: %s", cert_file, exc)


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-relay", "Sign, number, store and publish events handed over by local publishers.", EPILOG)
    cli.add_common(p, publish=True)
    p.add_argument("--listen", metavar="URL", help="local socket for publishers (default: the runtime directory)")
    p.add_argument("--replay", metavar="URL", help="replay endpoint (default: the publish port + 1)")
    p.add_argument("--socket-mode", default="0660", help="file mode of the local socket (default 0660)")
    p.add_argument("--backend", choices=("sequoia", "gnupg"), help="signing backend (default sequoia)")
    p.add_argument("--fedmsg-scope", action="store_true", help="sign msg only, as fedmsg's gpg backend")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    if args.publish is None and not BUS.read(config).given("publish"):
        args.publish = RELAY_PUBLISH
    opts = BusOptions.from_args(args, config, name="relay", own_key=True)
    if args.replay:
        opts.replay = args.replay
    if args.backend:
        opts.backend = args.backend
    if args.fedmsg_scope:
        opts.scope = "fedmsg"
    if args.metrics_port is not None:
        opts.metrics_port = args.metrics_port
    try:
        mode = int(args.socket_mode, 8)
    except ValueError:
        p.error(f"--socket-mode {args.socket_mode!r} is not an octal mode")
    listen = args.listen or opts.relay

    signer = None if opts.signing_key else _own_key(opts)
    publisher = Publisher(opts, signer=signer)
    relay: Relay | None = None
    try:
        _export_certificate(publisher.signer, opts)
        relay = Relay(publisher, listen, socket_mode=mode)
        if opts.metrics_port is not None:
            metrics.serve(opts.metrics_port)
        # Waits for the first announcement; a stop meanwhile still withdraws
        # it (the finally below), and READY=1 means "announced or tried".
        publisher.announce(config)
        log.info("relay %s: publishing on %s, replay on %s, local socket %s, key %s",
                 publisher.stream, opts.publish, publisher.replay_endpoint, listen, publisher.signer.fingerprint)
        systemd.notify("READY=1")
        relay.run(threading.Event())
    except KeyboardInterrupt:
        pass
    finally:
        # A second SIGTERM must not cut the withdrawal short.
        with cli.signals_held():
            systemd.notify("STOPPING=1")
            if relay is not None:
                relay.close()
            publisher.close()  # withdraws the DNS announcement
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
