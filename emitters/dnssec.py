"""DNSSEC for discovery: trust anchors (DS or DNSKEY records for the zones
that hold the SRV records) and the check that verified NSEC or NSEC3
records really deny a name or type.  Signature verification itself is
dnspython's (`dns.dnssec.validate`); this is what it leaves to the caller.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dns._features
import dns.dnssec
import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zonefile
from dns.rdtypes.util import Bitmap

from .errors import ConfigError, DiscoveryError


class TrustAnchors:
    """DS or DNSKEY records (zone-file lines, as `keymgr ZONE ds` or
    `dnssec-dsfromkey` print them) for the zones that hold SRV records."""

    def __init__(self, rrsets: Iterable[dns.rrset.RRset], where: str = "trust anchor") -> None:
        self.where = where
        self.by_zone: dict[dns.name.Name, list[dns.rrset.RRset]] = {}
        for rrset in rrsets:
            if rrset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
                raise ConfigError(f"{where}: only DS and DNSKEY records can be trust anchors, not "
                                  f"{dns.rdatatype.to_text(rrset.rdtype)} for {rrset.name}")
            self.by_zone.setdefault(rrset.name, []).append(rrset)
        if not self.by_zone:
            raise ConfigError(f"{where}: no DS or DNSKEY record in the trust anchor file")

    @classmethod
    def from_file(cls, path: Path) -> TrustAnchors:
        if not dns._features.have("dnssec"):
            raise ConfigError(f"{path}: DNSSEC validation needs dnspython's dnssec extra "
                              "(pip install 'dnspython[dnssec]': a recent python3-cryptography)")
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"{path}: cannot read trust anchor: {exc}") from None
        try:
            rrsets = dns.zonefile.read_rrsets(text, rdclass=None, default_ttl=3600, relativize=False)
        except dns.exception.DNSException as exc:
            raise ConfigError(f"{path}: not DS or DNSKEY records in zone-file form: {exc}") from None
        return cls(rrsets, str(path))

    def trusted_keys(self, zone: dns.name.Name, dnskeys: dns.rrset.RRset) -> dns.rrset.RRset:
        """The members of a zone's DNSKEY RRset that an anchor vouches for."""
        anchors = self.by_zone.get(zone)
        if not anchors:
            known = ", ".join(str(z) for z in self.by_zone)
            raise DiscoveryError(f"no trust anchor for zone {zone} (anchors are for {known})")
        trusted = dns.rrset.RRset(zone, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for key in dnskeys:
            for anchor in anchors:
                if anchor.rdtype == dns.rdatatype.DNSKEY and key in anchor:
                    trusted.add(key)
                elif anchor.rdtype == dns.rdatatype.DS and any(
                    _ds_matches(zone, key, ds) for ds in anchor
                ):
                    trusted.add(key)
        if not trusted:
            raise DiscoveryError(f"no DNSKEY of {zone} matches the trust anchor (key rolled over?)")
        return trusted


def _ds_matches(zone: dns.name.Name, key: object, ds: object) -> bool:
    try:
        return dns.dnssec.make_ds(zone, key, ds.digest_type) == ds  # type: ignore[attr-defined,arg-type]
    except dns.dnssec.UnsupportedAlgorithm:
        return False


def denies(proofs: list[dns.rrset.RRset], qname: dns.name.Name, rdtype: dns.rdatatype.RdataType,
            nxdomain: bool) -> bool:
    """Do these (already verified) NSEC or NSEC3 RRsets prove that `qname`
    has no `rdtype` records?  NODATA: a record at the name without the type.
    NXDOMAIN: the name falls in a gap (NSEC), or the closest encloser matches
    and the next closer name falls in a gap (NSEC3, RFC 5155 8.4).  The
    wildcard proof is not checked: our zones hold no wildcards there."""
    gaps: list[tuple[Any, Any, Any]] = []  # (owner, next, rdata) in one comparable form
    hashed = any(p.rdtype == dns.rdatatype.NSEC3 for p in proofs)
    params = None
    for proof in proofs:
        for rd in proof:
            if proof.rdtype == dns.rdatatype.NSEC3:
                params = (rd.salt, rd.iterations, rd.algorithm)
                nxt = base64.b32hexencode(rd.next).decode().rstrip("=")
                gaps.append((proof.name.labels[0].decode().upper(), nxt, rd))
            elif not hashed:
                gaps.append((proof.name, rd.next, rd))

    def key(name: dns.name.Name) -> Any:
        return dns.dnssec.nsec3_hash(name, *params) if hashed and params else name

    def matching(name: dns.name.Name) -> Any:
        return next((rd for owner, _, rd in gaps if owner == key(name)), None)

    def covered(name: dns.name.Name) -> bool:
        return any(_in_gap(owner, key(name), nxt) for owner, nxt, _ in gaps)

    if not nxdomain:
        rd = matching(qname)
        types = set(Bitmap(rd.windows).to_text().split()) if rd is not None else set()
        return rd is not None and dns.rdatatype.to_text(rdtype) not in types and "CNAME" not in types
    if not hashed:
        return covered(qname)
    name = qname
    while len(name) > 1:
        if matching(name.parent()) is not None and covered(name):
            return True
        name = name.parent()
    return False


def _in_gap(owner: Any, name: Any, nxt: Any) -> bool:
    # Canonical DNS order; the last record of the zone wraps round to the apex.
    if owner < nxt:
        return owner < name < nxt
    return name > owner or name < nxt
