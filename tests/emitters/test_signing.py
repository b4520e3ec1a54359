"""Both backends make standard signatures that the other verifies."""

from __future__ import annotations

import pytest

from debpulse.emitters.signing import (
    BadSignature,
    GnuPGKeyring,
    GnuPGSigner,
    SequoiaKeyring,
    SequoiaSigner,
    UnknownKey,
)

DATA = b'{"msg":{"log":"hello"},"topic":"org.debian.dev.logger.log"}'


@pytest.fixture(params=["gpg_key", "rsa_key"])
def key(request):
    return request.getfixturevalue(request.param)


def test_sequoia_signs_gnupg_verifies(key):
    sig = SequoiaSigner.from_file(key.secret_file).sign(DATA)
    assert GnuPGKeyring(str(key.home)).verify(DATA, sig) == key.fingerprint


def test_gnupg_signs_sequoia_verifies(key):
    sig = GnuPGSigner(str(key.home), key.fingerprint).sign(DATA)
    assert SequoiaKeyring.from_files([key.public_file]).verify(DATA, sig) == key.fingerprint


def test_signer_from_gnupg_home_exports_the_key_once(gpg_key):
    signer = SequoiaSigner.from_gnupg_home(str(gpg_key.home), gpg_key.fingerprint)
    assert signer.fingerprint == gpg_key.fingerprint
    assert SequoiaKeyring.from_files([gpg_key.public_file]).verify(DATA, signer.sign(DATA))


@pytest.mark.parametrize("keyring", ["sequoia", "gnupg"])
def test_tampered_data_and_unknown_keys(gpg_key, rsa_key, keyring):
    sig = SequoiaSigner.from_file(gpg_key.secret_file).sign(DATA)
    ring = SequoiaKeyring.from_files([gpg_key.public_file]) if keyring == "sequoia" else GnuPGKeyring(str(gpg_key.home))
    with pytest.raises(BadSignature):
        ring.verify(DATA + b" ", sig)
    other = SequoiaKeyring.from_files([rsa_key.public_file]) if keyring == "sequoia" else GnuPGKeyring(
        str(rsa_key.home))
    with pytest.raises(UnknownKey):
        other.verify(DATA, sig)


def test_garbage_signature_is_bad_not_a_crash(gpg_key):
    with pytest.raises(BadSignature):
        SequoiaKeyring.from_files([gpg_key.public_file]).verify(DATA, b"not a signature")
