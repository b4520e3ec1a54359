"""OpenPGP checks of clearsigned .changes against the uploaders' keyrings.

In-process with Sequoia (pysequoia), like Debian's own `sqv`: binary
keyrings such as debian-keyring.gpg are read directly.  Loading happens
once, at start; verifying is pure computation on bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pysequoia
from pysequoia.packet import PacketPile, Tag

from debpulse.emitters.errors import ConfigError

VERIFIED, UNVERIFIED, BAD = "verified", "unverified", "bad"


@dataclass(frozen=True)
class SignatureCheck:
    status: str                     # VERIFIED, UNVERIFIED or BAD
    signed_by: str | None = None    # primary key fingerprint (upper-case hex) when verified
    detail: str = ""                # why unverified or bad, for the reason file and logs


class Keyring:
    """The certificates uploads may be signed with (e.g. debian-keyring.gpg)."""

    def __init__(self, certs: Iterable[pysequoia.Cert]) -> None:
        self._certs: dict[str, pysequoia.Cert] = {}
        # Every key and subkey, by fingerprint and by key id, to its certificate:
        # a signature names the (sub)key that made it.
        self._by_key: dict[str, str] = {}
        for cert in certs:
            primary = cert.fingerprint.lower()
            self._certs[primary] = cert
            for packet in PacketPile.from_bytes(bytes(cert)):
                if packet.tag in (Tag.PublicKey, Tag.PublicSubkey) and packet.fingerprint:
                    self._by_key[packet.fingerprint.lower()] = primary
                    if packet.key_id:
                        self._by_key[packet.key_id.lower()] = primary

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> Keyring:
        # Sequoia makes every error (a bad signature, say) build a long
        # backtrace when this is set: slow on the rejection path.
        os.environ.pop("RUST_BACKTRACE", None)
        certs: list[pysequoia.Cert] = []
        for path in paths:
            if not Path(path).is_file():
                raise ConfigError(f"keyring {path}: no such file")
            try:
                certs += pysequoia.Cert.split_file(str(path))
            except Exception as exc:  # pysequoia raises plain exceptions
                raise ConfigError(f"keyring {path}: cannot read certificates: {exc}") from None
        return cls(certs)

    def __len__(self) -> int:
        return len(self._certs)

    def check(self, clearsigned: bytes) -> SignatureCheck:
        """Check a clearsigned document.

        UNVERIFIED when it carries no signature or one by a key outside the
        keyring (nothing to check it against); BAD when a key of the
        keyring made a signature that does not match the text.
        """
        if b"-----BEGIN PGP SIGNATURE-----" not in clearsigned:
            return SignatureCheck(UNVERIFIED, detail="not signed")
        known: list[str] = []

        def store(ids: list[str]) -> list[pysequoia.Cert]:
            for key in ids:
                primary = self._by_key.get(key.lower())
                if primary and primary not in known:
                    known.append(primary)
            return [self._certs[p] for p in known]

        try:
            result = pysequoia.verify(clearsigned, store=store)
        except Exception as exc:
            if not known:
                return SignatureCheck(UNVERIFIED, detail="signer not in the keyring")
            return SignatureCheck(BAD, detail=f"bad signature by {known[0].upper()}: {exc}")
        sigs = result.valid_sigs
        if not sigs:
            return SignatureCheck(UNVERIFIED, detail="signer not in the keyring")
        return SignatureCheck(VERIFIED, signed_by=sigs[0].certificate.upper())
