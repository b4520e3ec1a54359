"""debpulse-dns: announce a publisher in DNS, withdraw it, look publishers
up as a subscriber would, and print zone-file lines for hand-edited zones."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .. import cli
from ..announce import DNS_COMMAND_PORT, Announcer, announce_section, announcement_from
from ..config import Config, Section
from ..discovery import Discovery, PublisherInfo
from ..errors import ConfigError

EPILOG = """\
examples:
  debpulse-dns announce --domain example.org --server ns1.example.org:53 \\
      --tsig-key-file /etc/debpulse/tsig.key --target relay.example.org --port 9940 \\
      --name relay@ftp-master --fingerprint 0123...CDEF --replay tcp://relay.example.org:9941
  debpulse-dns withdraw --domain example.org --server ns1.example.org:53 \\
      --tsig-key-file /etc/debpulse/tsig.key --target relay.example.org --port 9940
  debpulse-dns lookup example.org
  debpulse-dns lookup example.org --nameserver 192.0.2.53 --trust-anchor /etc/debpulse/example.org.ds
  debpulse-dns zone --domain example.org --target relay.example.org --port 9940 --name relay@ftp-master

Unset publisher options come from the [dns.announce] table of the configuration.
Exit status: 0 done, 1 DNS server unreachable or a lookup failed, 2 bad usage,
configuration, or an update the server refused (key or ACL).
"""

# flag dest -> [dns.announce] key
PUBLISHER_FLAGS = {
    "domain": "domain", "zone": "zone", "server": "server", "tsig_key_file": "tsig_key_file",
    "target": "target", "port": "port", "priority": "priority", "weight": "weight", "ttl": "ttl",
    "name": "name", "fingerprint": "fingerprint", "replay": "replay", "timeout": "timeout",
}


def build_parser() -> cli.Parser:
    p = cli.parser("debpulse-dns", "Announce debpulse publishers in DNS SRV records and find them.", EPILOG)
    cli.add_common(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "announce": "add this publisher's SRV and TXT records (RFC 2136, TSIG), or refresh them",
        "withdraw": "remove this publisher's SRV and TXT records",
        "zone": "print the zone-file lines (or an endpoints-file line) instead of updating",
    }
    for command, text in helps.items():
        sp = sub.add_parser(command, help=text, description=text, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        _publisher_options(sp)
        if command == "zone":
            sp.add_argument("--endpoints", action="store_true", help="print a line for the endpoints file instead")
        cli.add_common(cli.after_command(sp))
    sp = sub.add_parser("lookup", help="print the publishers a subscriber would connect to",
                        description="Resolve like a subscriber; without arguments, use the [subscribe] table.",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("domains", nargs="*", metavar="DOMAIN", help="look up _fedmsg._tcp.DOMAIN SRV records")
    sp.add_argument("--endpoint", action="append", default=[], metavar="URL", help="a publisher given outright")
    sp.add_argument("--endpoints-file", metavar="FILE", help="the static endpoints file")
    sp.add_argument("--nameserver", action="append", default=[], metavar="HOST[:PORT]",
                    help="ask this server (repeatable; default [dns] nameservers, then /etc/resolv.conf)")
    sp.add_argument("--trust-anchor", metavar="FILE", help="DS or DNSKEY records: answers must validate with DNSSEC")
    sp.add_argument("--json", action="store_true", help="one JSON object per publisher")
    cli.add_common(cli.after_command(sp))
    return p


def _publisher_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("publisher (default: the [dns.announce] table)")
    g.add_argument("--domain", help="records go under _fedmsg._tcp.DOMAIN")
    g.add_argument("--zone", help="the zone to update (default: DOMAIN)")
    # `zone` takes these too (and ignores them), so one command line serves all three.
    g.add_argument("--server", metavar="HOST[:PORT]", help="the primary name server that takes updates")
    g.add_argument("--tsig-key-file", metavar="FILE", help="TSIG key as `keymgr -t` or `tsig-keygen` print it")
    g.add_argument("--timeout", type=float, help="seconds to wait for the server (default 5)")
    g.add_argument("--target", metavar="HOST", help="host name subscribers connect to (default: this host's FQDN)")
    g.add_argument("--port", type=int, help=f"PUB port (default {DNS_COMMAND_PORT})")
    g.add_argument("--priority", type=int, help="SRV priority (default 0: lower is tried first)")
    g.add_argument("--weight", type=int, help="SRV weight (default 0)")
    g.add_argument("--ttl", type=int, help="record TTL in seconds (default 300)")
    g.add_argument("--name", help="publisher name for the TXT record, e.g. relay@ftp-master")
    g.add_argument("--fingerprint", metavar="FPR", help="signing-key fingerprint hint for the TXT record")
    g.add_argument("--replay", metavar="URL", help="replay endpoint for the TXT record")


def _announce_section(args: argparse.Namespace, config: Config) -> Section:
    """[dns.announce] with the flags laid over it."""
    section = announce_section(config)
    table = section.data if section is not None else {}
    merged: dict[str, Any] = dict(table)
    for dest, key in PUBLISHER_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            merged[key] = value
    for key in ("domain",) + (("server",) if args.command != "zone" else ()):
        if key not in merged:
            raise ConfigError(f"--{key} (or [dns.announce] {key}) is required")
    merged.setdefault("port", DNS_COMMAND_PORT)
    where = config.where("dns") if table else "command line"
    return Section("dns.announce", merged, where)


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    if args.command == "lookup":
        return _lookup(args, config)
    section = _announce_section(args, config)
    if args.command == "zone":
        announcement = announcement_from(section)
        lines = [announcement.info.describe()] if args.endpoints else announcement.zone_lines()
        print("\n".join(lines))
        return 0
    announcer = Announcer.from_section(section)
    changed = announcer.announce() if args.command == "announce" else announcer.withdraw()
    verb = {"announce": ("announced", "already announced"), "withdraw": ("withdrawn", "not announced")}
    info = announcer.announcement.info
    print(f"{info.endpoint} {verb[args.command][0 if changed else 1]} in {announcer.announcement.owner}")
    return 0


def _lookup(args: argparse.Namespace, config: Config) -> int:
    args.srv = args.domains
    discovery = Discovery.from_args(args, config)
    if discovery.is_empty_configuration():
        raise ConfigError("nothing to look up: give DOMAIN, --endpoint or --endpoints-file, "
                              "or [subscribe] srv_domains in the configuration")
    discovery.warn_when_empty = False  # an empty answer is this command's output, not a warning
    publishers = discovery.current()
    for p in publishers:
        print(json.dumps(_as_dict(p), sort_keys=True) if args.json else p.describe())
    for source, error in discovery.errors.items():
        print(f"debpulse-dns: {source}: {error}", file=sys.stderr)
    return 1 if discovery.errors else 0


def _as_dict(p: PublisherInfo) -> dict[str, Any]:
    return {"endpoint": p.endpoint, "replay": p.replay, "name": p.name, "fingerprint": p.fingerprint,
            "priority": p.priority, "weight": p.weight}


if __name__ == "__main__":
    raise SystemExit(main())
