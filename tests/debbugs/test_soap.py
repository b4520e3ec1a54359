"""SOAP::Lite decoding on the real recorded responses, and the client
against a local HTTP server that answers with them byte for byte."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from debpulse.adapters.debbugs import soap
from debpulse.adapters.debbugs.client import DebbugsClient
from debpulse.adapters.debbugs.soap import SoapError, SoapFault, SoapUnavailable

from .soapserver import FAULT, SoapServer


def _response(recordings: Path, name: str, method: str):
    return soap.decode_response((recordings / f"{name}.response.xml").read_bytes(), method)


def test_status_map(soap_recordings: Path) -> None:
    statuses = soap.statuses_of(_response(soap_recordings, "testSampleGetStatus", "get_status"))
    assert list(statuses) == [486212]
    s = statuses[486212]
    assert s == {
        "package": "reportbug-ng", "source": "reportbug-ng",
        "subject": "[reportbug-ng] segmentation fault on sorting for last action",
        "originator": "Riccardo Magliocchetti <riccardo@datahost.it>",
        "severity": "normal", "tags": ["help"], "done": "Bastian Venthur <venthur@debian.org>",
        "forwarded": None, "owner": None, "pending": "done",
        "found_versions": ["reportbug-ng/0.2008.06.04"], "fixed_versions": ["reportbug-ng/1.0"],
        "mergedwith": [486743, 488122], "blocks": [], "blockedby": [], "affects": [], "archived": True,
        "date": 1213439402, "last_modified": 1218957982, "log_modified": 1218957982,
    }


def test_two_bugs_affects_and_int_mergedwith(soap_recordings: Path) -> None:
    raw = _response(soap_recordings, "testGetStatusAffects", "get_status")
    # the apachens:Map of found/fixed versions and an untyped empty <found />
    assert raw[290501]["fixed"] == {"debbugs/2.4.2~exp0": None} and raw[290501]["found"] is None
    statuses = soap.statuses_of(raw)
    assert statuses[770490]["affects"] == ["conkeror"]
    assert statuses[770490]["mergedwith"] == [770499]  # sent as xsd:int, not a string
    assert statuses[770490]["tags"] == ["upstream", "security", "fixed-upstream"]
    assert statuses[290501]["owner"] == "don@debian.org"
    assert soap.statuses_of(raw, asked=[770490]).keys() == {770490}


def test_mergedwith_and_empty_arrays(soap_recordings: Path) -> None:
    one = soap.statuses_of(_response(soap_recordings, "test_mergedwith-1", "get_status"))[433550]
    two = soap.statuses_of(_response(soap_recordings, "test_mergedwith-2", "get_status"))[474955]
    assert one["mergedwith"] == [433524] and two["mergedwith"] == []
    assert two["fixed_versions"] == [] and two["found_versions"] == ["reportbug-ng/0.2008.03.28"]


def test_empty_answers(soap_recordings: Path) -> None:
    assert soap.statuses_of(_response(soap_recordings, "testEmptyGetStatus", "get_status")) == {}
    assert _response(soap_recordings, "testGetBugs", "get_bugs") == []
    assert _response(soap_recordings, "testGetUsertagEmpty", "get_usertag") is None


def test_newest_bugs(soap_recordings: Path) -> None:
    assert _response(soap_recordings, "testNewestBugs", "newest_bugs") == list(range(799264, 799274))


def test_bug_log(soap_recordings: Path) -> None:
    items = _response(soap_recordings, "testGetBugLog", "get_bug_log")
    records = [soap.log_record(i) for i in items]
    assert [(r["msg_num"], r["received_at"]) for r in records] == [
        (5, "submit"), (10, "223344"), (15, "223344"), (20, "223344-done"), (22, "fakecontrol")]
    assert records[0]["message_id"] == "20031208032111.GA24775@kitenet.net"
    assert records[0]["from"] == "Joey Hess <joeyh@debian.org>"
    assert records[0]["body"].startswith("Package: cdebconf\nSeverity: normal")
    assert records[2]["from"] == "barbier@linuxfr.org (Denis Barbier)"
    assert items[0]["attachments"] == []


def test_base64_nil_and_untyped_struct() -> None:
    # SOAP::Lite sends strings that are not plain ASCII as base64Binary.
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        b'<soap:Body><get_statusResponse xmlns="Debbugs/SOAP"><s-gensym3 xsi:type="apachens:Map"><item>'
        b'<key xsi:type="xsd:int">7</key><value><originator xsi:type="xsd:base64Binary">'
        b"xYF1a2FzeiBVcGxvYWRlciA8bHVrYXN6QGV4YW1wbGUub3JnPg==</originator>"
        b'<owner xsi:nil="true" /><done xsi:type="xsd:string" /><severity xsi:type="xsd:string">grave</severity>'
        b"</value></item></s-gensym3></get_statusResponse></soap:Body></soap:Envelope>"
    )
    raw = soap.decode_response(data, "get_status")
    assert raw[7]["originator"] == "Łukasz Uploader <lukasz@example.org>"
    assert raw[7]["owner"] is None and raw[7]["done"] == ""
    assert soap.statuses_of(raw)[7]["severity"] == "grave"


def test_requests_round_trip() -> None:
    assert soap.decode_request(soap.build_request("get_status", [1, 2])) == ("get_status", [[1, 2]])
    assert soap.decode_request(soap.build_request("get_bugs", "package", "a&b")) == ("get_bugs", ["package", "a&b"])


@pytest.mark.parametrize(("data", "error", "text"), [
    (FAULT, SoapFault, "SOAP fault soap:Client: Failed to locate method"),
    (b"<html>oops</html>", SoapError, "no soap:Envelope"),
    (b"<?xml version='1.0'?><soap:Envelope xmlns:soap='x'", SoapError, "malformed SOAP response"),
])
def test_bad_responses(data: bytes, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        soap.decode_response(data, "get_status")


def test_wrong_method_answer(soap_recordings: Path) -> None:
    with pytest.raises(SoapError, match="expected get_statusResponse"):
        _response(soap_recordings, "testNewestBugs", "get_status")


# --- the client over HTTP ------------------------------------------------

def _client(server: SoapServer, **kw) -> DebbugsClient:
    naps: list[float] = []
    client = DebbugsClient(server.url, sleep=naps.append, **{"timeout": 5.0, "attempts": 3, "backoff": 0.5, **kw})
    client.naps = naps  # type: ignore[attr-defined]
    return client


def test_client_methods(soap_server: SoapServer) -> None:
    client = _client(soap_server)
    assert client.newest_bugs(10) == list(range(799264, 799274))
    assert set(client.get_status([486212])) == {486212}
    assert client.get_status([0]) == {}
    assert [r["msg_num"] for r in client.get_bug_log(223344)] == [5, 10, 15, 20, 22]
    assert client.get_bugs(owner="venthur@debian.org") == []
    assert client.get_bugs(owner="venthur@debian.org", severity="normal") == []
    assert soap_server.calls[-1] == ("get_bugs", ["owner", "venthur@debian.org", "severity", "normal"])


def test_get_status_in_batches_of_500(soap_server: SoapServer) -> None:
    client = _client(soap_server)
    statuses = client.get_status(range(770000, 771201))
    assert set(statuses) == {770490}
    batches = [args[0] for method, args in soap_server.calls]
    assert [len(b) for b in batches] == [500, 500, 201]
    assert batches[0][0] == 770000 and batches[-1][-1] == 771200


def test_fault_is_not_retried(soap_server: SoapServer) -> None:
    soap_server.fail("fault")
    client = _client(soap_server)
    with pytest.raises(SoapFault, match="Failed to locate method"):
        client.newest_bugs(10)
    assert len(soap_server.calls) == 1 and client.naps == []


def test_http_500_is_retried_with_backoff(soap_server: SoapServer) -> None:
    soap_server.fail("500")
    client = _client(soap_server)
    with pytest.raises(SoapUnavailable, match="HTTP 500"):
        client.newest_bugs(10)
    assert len(soap_server.calls) == 3 and client.naps == [0.5, 1.0]


def test_timeout_is_retried_then_reported(soap_server: SoapServer) -> None:
    soap_server.fail("timeout")
    soap_server.delay = 1.0
    client = _client(soap_server, timeout=0.2, attempts=2)
    t0 = time.monotonic()
    with pytest.raises(SoapUnavailable, match="no answer .* within 0.2 s"):
        client.get_status([486212])
    assert time.monotonic() - t0 < 3
    assert len(soap_server.calls) == 2 and client.naps == [0.5]


def test_malformed_xml(soap_server: SoapServer) -> None:
    soap_server.fail("malformed")
    client = _client(soap_server)
    with pytest.raises(SoapError, match="malformed SOAP response"):
        client.newest_bugs(10)
    assert len(soap_server.calls) == 1


def test_refused_connection(soap_server: SoapServer) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = DebbugsClient(f"http://127.0.0.1:{port}/soap.cgi", attempts=2, sleep=lambda s: None)
    with pytest.raises(SoapUnavailable, match="cannot reach"):
        client.newest_bugs(10)


def test_recorded_bytes_are_served_unchanged(soap_server: SoapServer, soap_recordings: Path) -> None:
    import requests

    body = soap.build_request("newest_bugs", 10)
    r = requests.post(soap_server.url, data=body, timeout=5)
    assert r.content == (soap_recordings / "testNewestBugs.response.xml").read_bytes()
