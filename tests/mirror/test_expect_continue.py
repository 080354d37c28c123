"""`Expect: 100-continue` on the mirror receiver, over real loopback sockets and with curl."""

from __future__ import annotations

import subprocess
import time

from tests.mirror.conftest import CollectingSink, read_responses, running_mirror
from tests.system import require_command

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
BODY = b"comment=" + b"<img src=x onerror=alert(1)>" + b"a" * 2000


def head(target: str = "/comments", *, version: str = "HTTP/1.1", expect: bool = True) -> bytes:
    lines = [
        f"POST {target} {version}",
        "Host: shop.example.com",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(BODY)}",
    ]
    if expect:
        lines.append("Expect: 100-Continue")  # the token is case-insensitive
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_client_that_waits_is_invited_to_send_its_body_then_answered() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        with mirror.connect() as sock:
            sock.sendall(head()[:20])  # the head in two reads: the answer waits for all of it
            time.sleep(0.05)
            sock.sendall(head()[20:])
            assert read_responses(sock, 1) == [CONTINUE]  # the client sends nothing more until then
            sock.sendall(BODY)
            assert read_responses(sock, 1) == [NO_CONTENT]
        summary = mirror.stop()
    assert summary.receiver.requests == 1
    assert [(hit.attack_type, hit.point) for hit in sink.hits] == [("xss", "body.form.comment")]


def test_each_request_on_a_connection_is_invited_once_and_only_when_its_body_is_awaited() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        with mirror.connect() as sock:
            # The first request's body comes with its head (no invitation needed), the
            # second's head with it, the second's body only after the invitation.
            sock.sendall(head("/first") + BODY + head("/second"))
            assert read_responses(sock, 2) == [NO_CONTENT, CONTINUE]
            sock.sendall(BODY[:100])
            time.sleep(0.05)
            sock.sendall(BODY[100:])
            assert read_responses(sock, 1) == [NO_CONTENT]
        mirror.stop()
    assert [hit.target for hit in sink.hits] == ["/first", "/second"]


def test_no_invitation_without_the_expectation_or_in_http10() -> None:
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        for raw in (head(expect=False), head(version="HTTP/1.0")):
            with mirror.connect() as sock:
                sock.sendall(raw)
                time.sleep(0.2)
                sock.sendall(BODY)
                received = b""
                while chunk := sock.recv(4096):  # 1.1 stays open: read until the 204, 1.0 is closed
                    received += chunk
                    if received.endswith(b"\r\n\r\n"):
                        break
                assert received.startswith(b"HTTP/1.1 204 No Content\r\n")
        mirror.stop()
    assert len(sink.hits) == 2


def test_curl_does_not_wait_for_its_expect_timeout() -> None:
    curl = require_command("curl")
    sink = CollectingSink()
    with running_mirror(sink) as mirror:
        started = time.monotonic()
        result = subprocess.run(
            [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--expect100-timeout", "20",
             "-H", "Expect: 100-continue", "-H", "Content-Type: application/x-www-form-urlencoded",
             "--data-binary", BODY.decode(), f"http://127.0.0.1:{mirror.port}/comments"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        mirror.stop()
    assert (result.returncode, result.stdout) == (0, "204"), result.stderr
    assert elapsed < 10, f"curl waited {elapsed:.1f} s: no 100 Continue came"
    assert [(hit.attack_type, hit.point) for hit in sink.hits] == [("xss", "body.form.comment")]
