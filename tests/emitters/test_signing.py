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


def test_two_signing_processes_sign_a_batch_and_outlive_their_helper(gpg_key, caplog):
    """signing_processes = 2: a helper process signs half of a large batch;
    if it dies, this process signs its share and nothing is lost."""
    import os
    import signal

    from debpulse.emitters.helper import PARALLEL_FROM

    signer = SequoiaSigner.from_file(gpg_key.secret_file)
    signer.processes = 2
    keyring = SequoiaKeyring.from_files([gpg_key.public_file])
    data = [f"event {n}".encode() * (n + 1) for n in range(40)]
    try:
        for _ in range(2):
            signatures = signer.sign_many(data)
            assert [keyring.verify(d, s) for d, s in zip(data, signatures, strict=True)] == [gpg_key.fingerprint] * 40
            helper = signer._halves.helper
            assert helper is not None and helper._proc.poll() is None
        os.kill(helper._proc.pid, signal.SIGKILL)
        helper._proc.wait(10)
        signatures = signer.sign_many(data)
        assert [keyring.verify(d, s) for d, s in zip(data, signatures, strict=True)] == [gpg_key.fingerprint] * 40
        assert signer._halves.helper is None and "signing helper process failed" in caplog.text
        assert len(signer.sign_many(data[:PARALLEL_FROM])) == PARALLEL_FROM  # in this process from now on
    finally:
        signer.close()


def test_two_verifying_processes_check_a_batch_and_outlive_their_helper(gpg_key, rsa_key, caplog):
    """verifying_processes = 2: a helper process checks half of a large
    batch and gives the same answers as this process alone, bad and
    unknown signatures included; if it dies, this process checks its
    share and nothing is lost."""
    import os
    import signal

    signer = SequoiaSigner.from_file(gpg_key.secret_file)
    stranger = SequoiaSigner.from_file(rsa_key.secret_file)
    data = [f"event {n}".encode() * (n + 1) for n in range(40)]
    pairs = [(d, signer.sign(d)) for d in data]
    pairs[25] = (data[25] + b" ", pairs[25][1])    # tampered, in the helper's half
    pairs[30] = (data[30], stranger.sign(data[30]))  # a key not in the keyring
    pairs[31] = (data[31], b"not a signature")
    pairs[3] = (data[3], pairs[4][1])              # in this process's half
    def shown(answers: list) -> list:
        return [a if isinstance(a, str) else (type(a).__name__, str(a)) for a in answers]

    alone = SequoiaKeyring.from_files([gpg_key.public_file])
    expected = shown(alone.check_many(pairs))
    assert alone._halves.helper is None
    assert [a if isinstance(a, str) else a[0] for a in expected] == (
        [gpg_key.fingerprint] * 3 + ["BadSignature"] + [gpg_key.fingerprint] * 21 + ["BadSignature"]
        + [gpg_key.fingerprint] * 4 + ["UnknownKey", "BadSignature"] + [gpg_key.fingerprint] * 8)
    keyring = SequoiaKeyring.from_files([gpg_key.public_file])
    keyring.processes = 2
    try:
        for _ in range(2):
            assert shown(keyring.check_many(pairs)) == expected
            helper = keyring._halves.helper
            assert helper is not None and helper._proc.poll() is None
        os.kill(helper._proc.pid, signal.SIGKILL)
        helper._proc.wait(10)
        assert shown(keyring.check_many(pairs)) == expected
        assert keyring._halves.helper is None and "verifying helper process failed" in caplog.text
    finally:
        keyring.close()
