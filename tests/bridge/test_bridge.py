"""debpulse-bridge end to end: a real relay, the bridge as a process, a
real RabbitMQ, and the real fedora-messaging consumer from PyPI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import zmq
from testbus import start_ready

from debpulse.consumers.bridge.amqp import envelope_from_amqp
from debpulse.consumers.bridge.cli import main as bridge_main
from debpulse.emitters import envelope as env
from debpulse.emitters.event import Event
from debpulse.emitters.signing import SequoiaKeyring, SequoiaSigner
from debpulse.emitters.verify import Verifier

from .amqp import TestQueue
from .rabbit import free_port
from .samples import dak_events, debbugs_events, git_events, publish


def join(bus, queue: TestQueue, bridge, timeout: float = 20.0) -> int:  # type: ignore[no-untyped-def]
    """Until the bridge's SUB socket has joined the relay (a plain
    subscriber misses what comes before): probe messages until one is
    through to `queue`.  Returns how many probes were sent."""
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        assert bridge.proc.poll() is None, bridge.output()
        publish(bus, [Event("logger.log", {"log": f"probe {sent}"})], name="probe")
        sent += 1
        if queue.drain(1, timeout=0.3, settle=0):
            return sent
    raise AssertionError(f"the bridge did not join: {bridge.output()[-2000:]}")


def logs(deliveries) -> list[str]:  # type: ignore[no-untyped-def]
    return [json.loads(d.body)["log"] for d in deliveries if d.routing_key.endswith(".logger.log")
            and not json.loads(d.body)["log"].startswith("probe")]


def test_fedora_messaging_consumer_prints_dak_debbugs_and_git_messages(
        bus, rabbitmq, fedora_messaging, start_bridge, shared_fixtures, tmp_path):
    name = "fm-consumer"
    keys = ["org.debian.*.dak.#", "org.debian.*.debbugs.#", "org.debian.*.git.#"]
    # Declared before anything is bridged (the consumer takes seconds to start); it declares the same.
    queue = TestQueue(rabbitmq.url, *keys, name=name)
    conf = tmp_path / "fedora-messaging.toml"
    conf.write_text(f"""\
amqp_url = "{rabbitmq.url}"
callback = "fedora_messaging.example:printer"
[client_properties]
app = "debpulse bridge test"
[queues.{name}]
durable = true
auto_delete = false
exclusive = false
arguments = {{"x-queue-type" = "quorum"}}
[[bindings]]
queue = "{name}"
exchange = "amq.topic"
routing_keys = {json.dumps(keys)}
""")
    consumer = subprocess.Popen([str(fedora_messaging), "--conf", str(conf), "consume"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    probe = TestQueue(rabbitmq.url, "org.debian.*.logger.#")
    try:
        bridge = start_bridge("--resume", "fm")
        join(bus, probe, bridge)
        events = dak_events(shared_fixtures) + debbugs_events(shared_fixtures) + git_events(shared_fixtures, tmp_path)
        publish(bus, events, name="samples")
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(consumer.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(line.startswith("Topic: ") for line in out) < len(events):
            time.sleep(0.1)
    finally:
        consumer.send_signal(signal.SIGINT)
        try:
            consumer.wait(15)
        except subprocess.TimeoutExpired:
            consumer.kill()
            consumer.wait()
        probe.delete()
        queue.delete()
    text = "".join(out)
    topics = [line.split(": ", 1)[1].strip() for line in out if line.startswith("Topic: ")]
    assert topics == [f"org.debian.dev.{e.topic}" for e in events], text[-3000:] + bridge.output()[-3000:]
    # fedora-messaging validated each against the schema named in the headers.
    assert "ValidationError" not in text and "not in the schema registry" not in text, text[-3000:]
    assert '"fedora_messaging_schema": "base.message"' in text
    assert '"fedora_messaging_user_nathans": true' in text and '"fedora_messaging_rpm_xfsprogs": true' in text
    assert '"source": "xfsprogs"' in text and '"bug": 979653' in text
    assert '"summary": "Fix typo in changelog"' in text


def test_broker_killed_and_restarted_mid_stream(bus, rabbitmq, start_bridge, tmp_path, record_property):
    conf = tmp_path / "debpulse.toml"
    conf.write_text('[bridge]\nresume = "crash"\nwindow = 200\nreconnect_max = 1.0\n')
    queue = TestQueue(rabbitmq.url, "org.debian.*.logger.#")
    bridge = start_bridge("--config", str(conf))
    join(bus, queue, bridge)
    queue.drain(0, timeout=0, settle=0.3)
    sent = [0]
    marks: dict[str, int] = {}

    def produce(first: int, last: int) -> None:
        for n in range(first, last, 10):
            publish(bus, [Event("logger.log", {"log": f"m{i}"}) for i in range(n, n + 10)], name="stream")
            sent[0] = n + 10
            time.sleep(0.02)

    producer = threading.Thread(target=produce, args=(0, 500))
    producer.start()
    try:
        while sent[0] < 150:
            time.sleep(0.005)
        marks["killed"] = sent[0]
        rabbitmq.kill(signal.SIGKILL)  # mid-stream: some messages out and not yet confirmed
        time.sleep(1.0)
        rabbitmq.start()
        marks["restarted"] = sent[0]
    finally:
        producer.join(60)
    produce(500, 600)  # and more once the broker is back
    total = 600
    got = queue.drain(total, timeout=60, settle=2.0)
    queue.delete()
    counts = Counter(logs(got))
    duplicates = {m: c for m, c in counts.items() if c > 1}
    report = (f"broker killed after {marks['killed']} and back after {marks['restarted']} of {total} messages; "
              f"received {sum(counts.values())}, distinct {len(counts)}, delivered twice {len(duplicates)}")
    print(report)
    record_property("bridge_broker_restart", report)
    assert set(counts) == {f"m{n}" for n in range(total)}, report + bridge.output()[-2000:]
    # At least once: only what was out, unconfirmed, when the broker died may come again.
    assert all(int(m[1:]) < marks["restarted"] for m in duplicates), report
    assert len(duplicates) <= 200 and max(counts.values()) <= 2, report
    assert bridge.proc.poll() is None
    out = bridge.output()
    assert "connection to the broker lost" in out
    # The outage in a few lines of ours, each with its reason; pika's own
    # lines (tens a second while the broker is away) only with -vvv.
    assert "pika" not in out, out[-3000:]
    unreachable = [line for line in out.splitlines() if " unreachable: " in line]
    assert all(line.split(" unreachable: ", 1)[1].strip() for line in unreachable), unreachable
    # Each message's first delivery keeps the bus order through the reconnection.
    firsts = list(dict.fromkeys(logs(got)))
    assert firsts == sorted(firsts, key=lambda m: int(m[1:])), report
    assert bridge.stop() == 0


def test_bridge_restart_with_the_same_checkpoint_misses_nothing(bus, rabbitmq, start_bridge, tmp_path):
    first = start_bridge("--resume", "again")  # returns on READY=1
    queue = TestQueue(rabbitmq.url, "org.debian.*.logger.#")
    join(bus, queue, first)
    publish(bus, [Event("logger.log", {"log": f"a{n}"}) for n in range(50)])
    assert len(logs(queue.drain(50, timeout=20, settle=0))) >= 50
    first.stop(signal.SIGKILL)
    publish(bus, [Event("logger.log", {"log": f"b{n}"}) for n in range(50)])  # while no bridge runs
    second = start_bridge("--resume", "again")
    publish(bus, [Event("logger.log", {"log": f"c{n}"}) for n in range(50)])
    got = logs(queue.drain(100, timeout=20, settle=1.0))
    queue.delete()
    assert set(got) == {f"{p}{n}" for p in "bc" for n in range(50)}, second.output()[-2000:]
    assert len(got) == 100  # killed after every a* was confirmed and acknowledged: none again
    assert second.stop() == 0


def test_messages_the_broker_refuses_are_sent_again_once_there_is_room(bus, rabbitmq, start_bridge):
    # A consumer queue that refuses publishes when full makes the broker nack
    # (a classic queue: a quorum queue checks its length with some lag).
    queue = TestQueue(rabbitmq.url, "org.debian.*.logger.#",
                      arguments={"x-queue-type": "classic", "x-max-length": 3, "x-overflow": "reject-publish"})
    bridge = start_bridge("--resume", "nack")
    try:
        join(bus, queue, bridge)
        publish(bus, [Event("logger.log", {"log": f"n{i}"}) for i in range(8)])
        deadline = time.monotonic() + 10
        while "broker refused" not in bridge.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "broker refused" in bridge.output(), bridge.output()[-3000:]
        got = logs(queue.drain(8, timeout=20, settle=0.5))  # each get makes room for a refused one
    finally:
        queue.delete()
    assert sorted(set(got), key=lambda m: int(m[1:])) == [f"n{i}" for i in range(8)], bridge.output()[-2000:]


def test_a_message_that_does_not_verify_is_never_bridged(bus, rabbitmq, start_bridge, rsa_key):
    rogue_endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context.instance()
    rogue = ctx.socket(zmq.PUB)
    rogue.bind(rogue_endpoint)

    def envelope(n: int, key=None, tamper: bool = False):  # type: ignore[no-untyped-def]
        e = env.build(topic="org.debian.dev.logger.log", msg={"log": f"rogue {n}"}, msg_id=env.new_msg_id(),
                      i=n, username="mallory", extra={"seq_id": n, "publisher": "rogue@nowhere"})
        if key is not None:
            e = env.attach_signature(e, SequoiaSigner.from_file(key.secret_file).sign(env.signed_data(e, "envelope")),
                                     "envelope")
        if tamper:
            e["msg"]["log"] = f"rogue {n} (changed after signing)"
        return e

    queue = TestQueue(rabbitmq.url, "org.debian.*.logger.#")
    bridge = start_bridge("--resume", "rogue", "--endpoint", rogue_endpoint)
    try:
        join(bus, queue, bridge)
        deadline = time.monotonic() + 15
        n = 0
        # Until the bridge has seen (and refused) each kind of forgery.
        while time.monotonic() < deadline and not all(
                r in bridge.output() for r in ("bad-signature", "unknown-key", "unsigned")):
            for e in (envelope(n + 1, bus.key, tamper=True), envelope(n + 2, rsa_key), envelope(n + 3)):
                rogue.send_multipart(env.to_frames(e))
            n += 3
            time.sleep(0.1)
        publish(bus, [Event("logger.log", {"log": "genuine"})])
        got = queue.drain(1, timeout=20, settle=1.0)
    finally:
        rogue.close(0)
        queue.delete()
    out = bridge.output()
    assert all(r in out for r in ("bad-signature", "unknown-key", "unsigned")), out[-2000:]
    bodies = [json.loads(d.body)["log"] for d in got]
    assert "genuine" in bodies and not [b for b in bodies if b.startswith("rogue")], bodies
    # What did arrive carries a signature a downstream consumer can check.
    [real] = [d for d in got if json.loads(d.body)["log"] == "genuine"]
    e = envelope_from_amqp(real.properties.headers, real.body)
    assert Verifier(SequoiaKeyring.from_files([bus.key.public_file])).check(e).signer == bus.key.fingerprint
    assert real.properties.message_id == e["msg_id"]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_usage_and_configuration_errors_are_one_line(tmp_path, capsys):
    assert bridge_main(["--url", "http://broker"]) == 2
    assert capsys.readouterr().err.strip().endswith("is not an amqp:// or amqps:// URL")
    conf = tmp_path / "debpulse.toml"
    conf.write_text('[bridge]\nurl = "amqp://localhost/"\nexchnage = "x"\n')
    assert bridge_main(["--config", str(conf)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'exchnage'" in err and str(conf) in err
    conf.write_text('[bridge]\ntls = { ca = "/nonexistent/ca.pem" }\n')
    assert bridge_main(["--config", str(conf)]) == 2
    assert "tls ca /nonexistent/ca.pem: no such file" in capsys.readouterr().err
    conf.write_text('[bridge]\nwindow = "many"\n')
    assert bridge_main(["--config", str(conf)]) == 2
    assert "[bridge] window must be int" in capsys.readouterr().err
    conf.write_text('[bridge]\nwindow = 0\n')
    assert bridge_main(["--config", str(conf)]) == 2
    assert "--window must be at least 1" in capsys.readouterr().err
    # A mistake found after the publisher started leaves no thread behind.
    assert not [t for t in threading.enumerate() if t.name == "amqp-publisher"]


@pytest.mark.parametrize("verbose", [[], ["-vvv"]], ids=["default", "-vvv"])
def test_a_broker_away_is_a_few_lines_with_their_reason(bus, tmp_path, verbose):
    """No broker listening (the outage from the start): one line of ours per
    attempt, saying why; pika's own error lines only with -vvv."""
    pytest.importorskip("pika")
    log = tmp_path / "bridge.log"
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    proc = start_ready([sys.executable, "-m", "debpulse.consumers.bridge.cli", "--endpoint", bus.endpoint,
                        "--keyring", str(bus.key.public_file), "--url", url, *verbose],
                       {**os.environ, **bus.env}, log)
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count(" unreachable: ") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    lines = log.read_text().splitlines()
    ours = [line for line in lines if " unreachable: " in line]
    assert len(ours) >= 3 and all(line.endswith(": Connection refused") for line in ours), lines
    pika_lines = [line for line in lines if line.startswith("pika")]
    if verbose:
        assert pika_lines, lines
    else:
        assert pika_lines == [] and len(lines) == len(ours), lines  # nothing but the attempts


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_stopped_while_still_connecting_ends_cleanly():
    """A broker that accepts the connection but has not answered yet: the
    bridge stopped then ends its thread without an error."""
    import socket

    from debpulse.consumers.bridge.amqp import AmqpPublisher, connection_parameters

    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        publisher = AmqpPublisher(connection_parameters([f"amqp://127.0.0.1:{port}/"]))
        silent.settimeout(30)
        held, _ = silent.accept()  # the publisher is connecting, and waits for the broker's greeting
        with held:
            publisher.close(timeout=10)
            assert not publisher._thread.is_alive()  # noqa: SLF001
