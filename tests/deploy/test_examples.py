"""Each example /etc/debpulse loads through the readers the programs use."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from testbus import GpgKey

from debpulse.adapters.common.service import check_tables, metrics_port
from debpulse.emitters import cli
from debpulse.emitters.announce import Announcer
from debpulse.emitters.config import KNOWN_TABLES, load_config
from debpulse.emitters.consumer import open_verifier
from debpulse.emitters.discovery import Discovery
from debpulse.emitters.emitter import open_emitter
from debpulse.emitters.options import BusOptions
from debpulse.emitters.relay_client import RelayClient
from debpulse.emitters.signing import open_signer

from .roles import ROLES, Role, drop_role, install_role

RELAY_UNIT_PUBLISH = "tcp://*:9940"  # debpulse-relay.service's --publish


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest, gpg_key: GpgKey) -> Iterator[Role]:
    r = install_role(request.param, gpg_key)
    yield r
    drop_role(r)


def _common(config: str, **kinds: bool) -> argparse.Namespace:
    """The common flags as every program parses them, with only --config given."""
    p = cli.parser("test", "")
    cli.add_common(p, **kinds)
    return p.parse_args(["--config", config])


def test_roles_are_the_four_hosts() -> None:
    assert ROLES == ["bugs", "buildd-db", "ftp-master", "git-host"]


def test_example_configuration_loads(role: Role, gpg_key: GpgKey) -> None:
    cfg = str(role.config)
    config = load_config(cfg)
    check_tables(config)
    read: set[str] = set()

    # [bus]: the relay or the direct publisher, with its signing key.
    opts = BusOptions.from_args(_common(cfg, publish=True), config, name="relay")
    assert opts.environment == "production"
    assert opts.replay == "tcp://*:9941"
    if "relay" in opts.relay and opts.publish is None:
        # A relay host: the adapters read the same [bus] and hand events to
        # the relay (the relay's unit gives --publish).
        emitter = open_emitter(_common(cfg, publish=True), config, name="adapter")
        assert isinstance(emitter, RelayClient)
        assert emitter.opts.relay == f"ipc://{role.root}/run/debpulse/relay.sock"
        assert emitter.spool.directory == role.path("/var/lib/debpulse/spool")
    else:
        assert role.name == "buildd-db" and opts.publish == "tcp://*:9940"  # one direct publisher
    signer = open_signer(opts.backend, opts.signing_key or "", opts.gnupg_home)
    assert signer.fingerprint == gpg_key.fingerprint
    assert opts.state_dir == role.path("/var/lib/debpulse")
    read.add("bus")

    if "dns" in config.data:
        announcer = Announcer.from_config(config, name="relay@x", endpoint=opts.publish or RELAY_UNIT_PUBLISH,
                                          replay=opts.replay,
                                          fingerprint=signer.fingerprint)
        assert announcer is not None and announcer.key is not None
        assert str(announcer.announcement.owner) == "_fedmsg._tcp.example.org."
        read.add("dns")

    if "subscribe" in config.data:
        verifier = open_verifier(_common(cfg, subscribe=True), config)
        assert verifier.keyring.fingerprints() == [gpg_key.fingerprint]
        assert not verifier.policy.open
        assert verifier.policy.allows("0123456789ABCDEF0123456789ABCDEF01234567",
                                      "org.debian.production.dak.package.accept")
        assert not verifier.policy.allows("0123456789ABCDEF0123456789ABCDEF01234567",
                                          "org.debian.production.git.receive")
        discovery = Discovery.from_args(_common(cfg, subscribe=True), config)
        assert discovery.srv_domains == ["example.org"]
        read.add("subscribe")

    if "dak" in config.data:
        from debpulse.adapters.dak.cli import DAK, _parser, settings_from

        args = _parser().parse_args(["--config", cfg])
        s = settings_from(args, config)
        assert s.done == role.path("/srv/ftp-master.debian.org/queue/done") and s.maildir is not None
        assert len(s.keyrings) == 2
        assert metrics_port(args, DAK.read(config)) == 9951
        read.add("dak")

    if "wannabuild" in config.data:
        from debpulse.adapters.wannabuild.cli import WANNABUILD
        from debpulse.adapters.wannabuild.cli import build_parser as wb_parser
        from debpulse.adapters.wannabuild.cli import settings_from as wb_settings

        args = wb_parser().parse_args(["--config", cfg])
        s = wb_settings(args, config)
        assert s.dsn == "service=wanna-build" and "amd64" in s.architectures
        assert metrics_port(args, WANNABUILD.read(config)) == 9952
        read.add("wannabuild")

    if "debbugs" in config.data:
        from debpulse.adapters.debbugs.cli import DEBBUGS, _client, build_parser

        section = DEBBUGS.read(config)
        args = build_parser().parse_args(["--config", cfg, "maildir"])
        assert _client(args, section) is not None
        assert metrics_port(args, section) == 9953
        assert metrics_port(args, section, "poll_metrics_port") == 9954
        read.add("debbugs")

    if "git" in config.data:
        from debpulse.adapters.scm.cli import _address, _token, build_parser, check_web_url, git_section

        git = git_section(config)
        check_web_url(git["web_url"], git.where)
        assert _address(git["listen"], git.where) == ("127.0.0.1", 9945)
        assert _token(build_parser().parse_args(["webhook", "--config", cfg]), git) == "s3cret-token"
        read.add("git")

    # No table the test (and so no program) left unread.
    assert set(config.data) == read
    assert read <= KNOWN_TABLES
