"""fedmsg 1.1.7's signed path, for bench_bus.py: run with the Python of the
fedmsg virtual environment.

    fedmsg_reference.py publish GNUPGHOME FPR ENDPOINT N   (after a line on stdin: go)
    fedmsg_reference.py receive GNUPGHOME ENDPOINT N        (prints the elapsed seconds as JSON)

The publisher is fedmsg's own FedMsgContext with the gpg crypto backend.
fedmsg 1.1.7's gpg signing crashes on Python 3 (fedmsg issue #506: the
signature is bytes where JSON needs text); the one-line fix below decodes
it, as the captured fixtures were made.  The receiver validates each
message with fedmsg.crypto.validate, as fedmsg-tail --validate does.
"""

import json
import sys
import time

import zmq


def publish(home, fpr, endpoint, n):
    import fedmsg.core
    import fedmsg.crypto.gpg as fgpg

    original = fgpg.sign

    def sign(message, gpg_home=None, gpg_signing_key=None, **config):
        signed = original(message, gpg_home=gpg_home, gpg_signing_key=gpg_signing_key, **config)
        if isinstance(signed.get("signature"), bytes):
            signed["signature"] = signed["signature"].decode("ascii")  # fedmsg #506
        return signed

    fgpg.sign = sign
    import fedmsg.crypto

    fedmsg.crypto._implementation = None
    ctx = fedmsg.core.FedMsgContext(
        name="bench.host", topic_prefix="org.debian", environment="dev",
        endpoints={"bench.host": [endpoint]}, sign_messages=True, crypto_backend="gpg",
        crypto_validate_backends=["gpg"], gpg_home=home, gpg_signing_key=fpr, high_water_mark=0,
        io_threads=1, post_init_sleep=0, zmq_linger=5000, active=False, zmq_enabled=True, zmq_strict=False,
        validate_signatures=False,
    )
    fedmsg.crypto._implementation = fgpg
    fedmsg.crypto._validate_implementations = [fgpg]
    sys.stdin.readline()
    body = {"log": "x" * 900}
    for _ in range(n):
        ctx.publish(topic="log", msg=body, modname="bench")
    time.sleep(2)


def receive(home, endpoint, n):
    import fedmsg.crypto

    config = {"crypto_validate_backends": ["gpg"], "gpg_home": home, "validate_signatures": True}
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    print("ready", flush=True)
    sys.stdin.readline()  # the publisher starts now
    t0 = time.perf_counter()
    ok = 0
    while ok < n:
        if not sock.poll(30000):
            break
        topic, raw = sock.recv_multipart()
        if fedmsg.crypto.validate(json.loads(raw), **config):
            ok += 1
    print(json.dumps({"valid": ok, "seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        publish(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        receive(sys.argv[2], sys.argv[3], int(sys.argv[4]))
