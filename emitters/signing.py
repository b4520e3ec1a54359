"""OpenPGP detached signatures, two backends that read each other's output.

- `SequoiaSigner` / `SequoiaKeyring`: in-process (pysequoia), about a
  hundred times faster than spawning gpg.
- `GnuPGSigner` / `GnuPGKeyring`: the system gpg through python-gnupg, for
  keys that live in a GnuPG home, an agent or a smartcard.

Signers return binary detached signatures; keyrings return the fingerprint
of the certificate that made a good signature.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from .errors import ConfigError
from .helper import Halves, Helper

log = logging.getLogger(__name__)


class BadSignature(Exception):
    """The signature does not verify."""


class UnknownKey(Exception):
    """The signature may be fine, but its key is not in the keyring."""


# What a check gives: the fingerprint of a good signature's certificate,
# or the exception that says why not.
Answer = str | BadSignature | UnknownKey


class Signer(Protocol):
    fingerprint: str

    def sign(self, data: bytes) -> bytes: ...


class Keyring(Protocol):
    def verify(self, data: bytes, signature: bytes) -> str:
        """Fingerprint (upper-case hex) of the signer, or raise BadSignature / UnknownKey."""
        ...

    def fingerprints(self) -> list[str]: ...


def _clear_backtrace() -> None:
    # Sequoia builds a long backtrace for every error when RUST_BACKTRACE is
    # set, which makes every rejected signature slow.
    os.environ.pop("RUST_BACKTRACE", None)


# -- in-process: Sequoia ---------------------------------------------------


class SequoiaSigner:
    """`processes`: how many processes sign a large batch (`sign_many`):
    this one, and a helper process (signworker) beside it when 2."""

    def __init__(self, secret_key: bytes, *, processes: int = 1) -> None:
        import pysequoia

        _clear_backtrace()
        self._ps = pysequoia
        self.processes = processes
        self._secret = secret_key
        self._halves: Halves[bytes, bytes] = Halves(self._start_helper, "signing")
        try:
            tsk = pysequoia.Tsk.from_bytes(secret_key)
        except Exception as exc:
            raise ConfigError(f"cannot read the secret key: {_first_line(exc)}") from None
        try:
            self._signer = tsk.signer()
        except Exception as exc:
            raise ConfigError(f"the key cannot sign (protected or no signing subkey?): {_first_line(exc)}") from None
        cert = tsk.extract_certificate()
        self.fingerprint = cert.fingerprint.upper()
        # The armored public certificate, for keyrings of subscribers.
        self.certificate: str | None = str(cert)
        self._detached = pysequoia.SignatureMode.DETACHED

    @classmethod
    def from_file(cls, path: str | Path) -> SequoiaSigner:
        try:
            return cls(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None

    @classmethod
    def from_gnupg_home(cls, home: str | None, key: str) -> SequoiaSigner:
        """Export the (unprotected) secret key from a GnuPG home once, then
        sign in-process.  Keys on smartcards need the gnupg backend."""
        env = dict(os.environ)
        if home:
            env["GNUPGHOME"] = home
        proc = subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "error", "--export-secret-keys", key],
            env=env, capture_output=True,
        )
        if proc.returncode != 0 or not proc.stdout:
            raise ConfigError(
                f"cannot export secret key {key} from {home or '~/.gnupg'} "
                "(passphrase-protected or on a card? use backend = \"gnupg\")"
            )
        return cls(proc.stdout)

    def sign(self, data: bytes) -> bytes:
        return self._ps.sign(self._signer, data, mode=self._detached, armor=False)

    def sign_many(self, data: list[bytes]) -> list[bytes]:
        """Signatures of each item; with two processes, a helper signs the
        second half of a large batch while this process signs the first."""
        return self._halves.map(self.sign, data, self.processes)

    def _start_helper(self) -> Helper[bytes, bytes]:
        return _SigningHelper(self._secret)

    def close(self) -> None:
        self._halves.close()  # its helper process, if it started one


class SequoiaKeyring:
    """Certificates from armored or binary keyring files (Debian's keyrings
    included), verified in-process."""

    def __init__(self, certs: list[object], *, processes: int = 1) -> None:
        import pysequoia

        _clear_backtrace()
        self._ps = pysequoia
        self._certs = certs
        self._by_fpr = {c.fingerprint.upper(): c for c in certs}  # type: ignore[attr-defined]
        self._by_keyid = {f[-16:]: c for f, c in self._by_fpr.items()}
        # 2: a helper process (verifyworker) checks half of each large batch.
        self.processes = processes
        self._halves: Halves[tuple[bytes, bytes], Answer] = Halves(self._start_helper, "verifying")

    @classmethod
    def from_files(cls, paths: list[str | Path]) -> SequoiaKeyring:
        import pysequoia

        _clear_backtrace()
        certs: list[object] = []
        for p in paths:
            try:
                certs.extend(pysequoia.Cert.split_file(str(p)))
            except Exception as exc:
                raise ConfigError(f"{p}: not a readable keyring: {_first_line(exc)}") from None
        return cls(certs)

    def fingerprints(self) -> list[str]:
        return list(self._by_fpr)

    def _store(self, ids: list[str]) -> list[object]:
        found = [self._by_keyid[i.upper()[-16:]] for i in ids if i.upper()[-16:] in self._by_keyid]
        # A signing subkey's id is not a primary fingerprint: offer all.
        return found or self._certs

    def verify(self, data: bytes, signature: bytes) -> str:
        ps = self._ps
        try:
            sig = ps.Sig.from_bytes(signature)
        except Exception:
            raise BadSignature("not an OpenPGP signature") from None
        try:
            result = ps.verify(bytes=data, store=self._store, signature=sig)
        except Exception:
            issuer = (sig.issuer_fingerprint or sig.issuer_key_id or "").upper()
            if issuer and not any(f.endswith(issuer[-16:]) for f in self._by_fpr):
                raise UnknownKey(issuer) from None
            raise BadSignature(issuer or "no issuer") from None
        valid = result.valid_sigs
        if not valid:
            raise BadSignature("no valid signature")
        return str(valid[0].certificate).upper()

    def check(self, data: bytes, signature: bytes) -> Answer:
        """verify, but the exception returned where it would be raised."""
        try:
            return self.verify(data, signature)
        except (BadSignature, UnknownKey) as exc:
            return exc

    def check_many(self, pairs: list[tuple[bytes, bytes]]) -> list[Answer]:
        """`check` of each (signed data, signature); with two processes, a
        helper checks the second half of a large batch while this process
        checks the first."""
        processes = self.processes if self._certs else 1
        return self._halves.map(lambda pair: self.check(*pair), pairs, processes)

    def _start_helper(self) -> Helper[tuple[bytes, bytes], Answer]:
        return _VerifyingHelper([bytes(c) for c in self._certs])  # type: ignore[call-overload]

    def close(self) -> None:
        self._halves.close()  # its helper process, if it started one


class _SigningHelper(Helper[bytes, bytes]):
    """Signs the data it is given with the key it got first (signworker)."""

    def __init__(self, secret_key: bytes) -> None:
        super().__init__("debpulse.emitters.signworker", [secret_key])

    def encode(self, items: list[bytes]) -> list[bytes]:
        return items

    def decode(self, answer: bytes) -> bytes:
        return answer


class _VerifyingHelper(Helper[tuple[bytes, bytes], Answer]):
    """Checks (signed data, signature) pairs against the certificates it
    got first (verifyworker)."""

    def __init__(self, certificates: list[bytes]) -> None:
        super().__init__("debpulse.emitters.verifyworker", certificates)

    def encode(self, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        return [part for pair in items for part in pair]

    def decode(self, answer: bytes) -> Answer:
        return answer_from_bytes(answer)


def answer_to_bytes(answer: Answer) -> bytes:
    """"+" and the fingerprint, "U" and the issuer of an unknown key, or
    "B" and what is wrong with a bad signature."""
    if isinstance(answer, str):
        return b"+" + answer.encode("ascii")
    return (b"U" if isinstance(answer, UnknownKey) else b"B") + str(answer).encode("utf-8", "replace")


def answer_from_bytes(answer: bytes) -> Answer:
    kind, text = answer[:1], answer[1:].decode("utf-8", "replace")
    if kind == b"+":
        return text
    if kind == b"U":
        return UnknownKey(text)
    if kind == b"B":
        return BadSignature(text)
    raise ValueError(f"the verifying helper answered {answer[:40]!r}")


# -- the system gpg ----------------------------------------------------------


class GnuPGSigner:
    def __init__(self, home: str | None, key: str) -> None:
        import gnupg

        self._gpg = gnupg.GPG(gnupghome=home) if home else gnupg.GPG()
        keys = self._gpg.list_keys(True, keys=[key])
        if not keys:
            raise ConfigError(f"no secret key {key} in {home or '~/.gnupg'}")
        self.fingerprint = keys[0]["fingerprint"].upper()

    def sign(self, data: bytes) -> bytes:
        # passphrase=None, never "": with an empty string python-gnupg makes
        # gpg read the first line of the data as the passphrase.
        result = self._gpg.sign(data, keyid=self.fingerprint, detach=True, binary=True, passphrase=None)
        if not result.data:
            raise ConfigError(f"gpg could not sign: {result.status or result.stderr.strip()[-200:]}")
        return result.data


class GnuPGKeyring:
    def __init__(self, home: str | None) -> None:
        import gnupg

        self._gpg = gnupg.GPG(gnupghome=home) if home else gnupg.GPG()

    def fingerprints(self) -> list[str]:
        return [k["fingerprint"].upper() for k in self._gpg.list_keys()]

    def verify(self, data: bytes, signature: bytes) -> str:
        with tempfile.NamedTemporaryFile(suffix=".sig") as fh:
            fh.write(signature)
            fh.flush()
            result = self._gpg.verify_data(fh.name, data)
        if result.valid:
            return (result.pubkey_fingerprint or result.fingerprint).upper()
        if result.status == "no public key":
            raise UnknownKey(result.key_id or "")
        raise BadSignature(result.status or "bad signature")


def sign_many(signer: Signer, data: list[bytes]) -> list[bytes]:
    """Signatures of each item: the signer's own batch method where it has
    one (in parallel processes), else one by one."""
    batch = getattr(signer, "sign_many", None)
    if batch is not None:
        return batch(data)  # type: ignore[no-any-return]
    return [signer.sign(d) for d in data]


def open_signer(backend: str, key: str, gnupg_home: str | None, *, processes: int = 1) -> Signer:
    """`key` is a fingerprint in the GnuPG home or a secret key file;
    `processes`: how many sign a large batch (the in-process backend)."""
    if backend == "gnupg":
        return GnuPGSigner(gnupg_home, key)
    if os.path.sep in key or os.path.exists(key):
        signer = SequoiaSigner.from_file(key)
    else:
        signer = SequoiaSigner.from_gnupg_home(gnupg_home, key)
    signer.processes = processes
    return signer


def open_keyring(paths: list[str], gnupg_home: str | None, *, processes: int = 1) -> Keyring:
    """Keyring files (in-process), else the certificates in a GnuPG home;
    `processes`: how many check a large batch."""
    if paths:
        keyring = SequoiaKeyring.from_files(list(paths))
    elif gnupg_home:
        keyring = SequoiaKeyring(_export_certs(gnupg_home))
    else:
        keyring = SequoiaKeyring([])
    keyring.processes = processes
    return keyring


def _export_certs(home: str) -> list[object]:
    import pysequoia

    proc = subprocess.run(
        ["gpg", "--batch", "--export"], env={**os.environ, "GNUPGHOME": home}, capture_output=True
    )
    if proc.returncode != 0:
        raise ConfigError(f"{home}: cannot read the GnuPG keyring")
    return list(pysequoia.Cert.split_bytes(proc.stdout)) if proc.stdout else []


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or ["error"])[0]
