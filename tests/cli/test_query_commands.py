"""The query, export and db commands through the real command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from oob_analyzer.cli import main
from storage import AnomalySighting, AttackStore
from tests.paths import SAMPLES
from tests.storage.hits import T0, hit


@pytest.fixture
def replayed(db_url: str, tmp_path: Path) -> str:
    invoke("replay", str(SAMPLES / "mirror-http.pcap"), "--db", db_url, "--journal", str(tmp_path / "j.jsonl"))
    return db_url


def invoke(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result.output


def hits_json(db_url: str, *filters: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(invoke("hits", "list", "--format", "json", "--db", db_url, *filters))
    return result


@pytest.mark.parametrize(
    ("filters", "targets"),
    [
        ((), 5),
        (("--type", "xss"), 2),
        (("--type", "xss", "--type", "sqli"), 5),
        (("--src", "192.0.2.0/24"), 5),
        (("--src", "192.0.2.66"), 5),
        (("--src", "203.0.113.0/24"), 0),
        (("--since", "2026-11-02T10:00:06Z"), 2),
        (("--until", "2026-11-02T10:00:06"), 3),
        (("--since", "2026-11-02T11:00:06+01:00"), 2),
        (("--path", "/login"), 1),
        (("--host", "SHOP.example.com"), 5),
        (("--host", "other.example.com"), 0),
        (("--since", "3650d"), 5),
        (("--until", "3650d"), 0),  # until ten years ago
    ],
)
def test_hit_filters(replayed: str, filters: tuple[str, ...], targets: int) -> None:
    assert len(hits_json(replayed, *filters)) == targets


def test_list_formats_agree(replayed: str) -> None:
    as_json = hits_json(replayed)
    as_jsonl = [json.loads(line) for line in invoke("hits", "list", "--format", "jsonl", "--db", replayed).splitlines()]
    as_csv = list(csv.DictReader(io.StringIO(invoke("hits", "list", "--format", "csv", "--db", replayed))))
    assert as_jsonl == as_json
    assert [row["payload"] for row in as_csv] == [h["payload"] for h in as_json]
    attacks = json.loads(invoke("attacks", "list", "--format", "json", "--type", "xss", "--db", replayed))
    assert sorted(a["point"] for a in attacks) == ["body.form.comment", "query.q"]


def test_hits_list_shows_the_response_status_in_every_format(db_url: str) -> None:
    store = AttackStore.open(db_url)
    store.record([hit(ts=T0, response_status=None, target="/late"), hit(ts=T0 + 1, response_status=503)])
    store.close()
    table = invoke("hits", "list", "--db", db_url).splitlines()
    status = table[0].index("STATUS")
    assert [line[status : status + 6].rstrip() for line in table] == ["STATUS", "503", "-"]  # newest first
    assert max(map(len, table)) <= 80
    assert [h["response_status"] for h in hits_json(db_url)] == [503, None]
    as_csv = csv.DictReader(io.StringIO(invoke("hits", "list", "--format", "csv", "--db", db_url)))
    assert [row["response_status"] for row in as_csv] == ["503", ""]


def test_attacks_show_prints_the_hits_with_their_requests(replayed: str) -> None:
    (attack,) = json.loads(invoke("attacks", "list", "--format", "json", "--path", "/login", "--db", replayed))
    output = invoke("attacks", "show", str(attack["id"]), "--db", replayed)
    assert output.startswith(f"Attack {attack['id']}: sqli in body.form.username\n")
    assert "  | POST /login HTTP/1.1\n" in output
    assert output.endswith("  | \n  | username=admin%27--&password=x\n")
    assert "\\r" not in output
    detail = json.loads(invoke("attacks", "show", str(attack["id"]), "--format", "json", "--db", replayed))
    assert [h["target"] for h in detail["hit_list"]] == ["/login"]
    assert "Error: no attack 9999" in invoke("attacks", "show", "9999", "--db", replayed, expect=1)


def test_attacks_stats(replayed: str) -> None:
    stats = json.loads(invoke("attacks", "stats", "--format", "json", "--db", replayed))
    assert stats == {
        "total": 5,
        "by_type": {"sqli": 3, "xss": 2},
        "by_source": {"192.0.2.66": 5},
        "by_host": {"shop.example.com": 5},
        "by_hour": {"2026-11-02T10:00Z": 5},
    }
    table = invoke("attacks", "stats", "--db", replayed)
    assert table.startswith("5 hits\n") and max(map(len, table.splitlines())) <= 80


def test_an_empty_csv_still_has_its_header(db_url: str) -> None:
    assert invoke("export", "--format", "csv", "--db", db_url).startswith("id,time,type,src_ip,")
    assert invoke("attacks", "list", "--format", "csv", "--db", db_url).startswith("id,type,point,target,")


def test_export_streams_every_field(replayed: str) -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("export", "--format", "csv", "--db", replayed))))
    assert len(rows) == 5 and {"request_excerpt", "tunnel", "response_status"} <= set(rows[0])
    lines = invoke("export", "--format", "jsonl", "--type", "sqli", "--db", replayed).splitlines()
    assert sorted(json.loads(line)["point"] for line in lines) == ["body.form.username", "query.id", "query.id"]


def test_attacker_text_cannot_drive_the_terminal_or_a_spreadsheet(db_url: str) -> None:
    store = AttackStore.open(db_url)
    store.record([hit(target="/\x1b]0;pwned\x07\x1b[2J" + "A" * 200, payload='=HYPERLINK("http://evil")')])
    store.close()
    for command in (["hits", "list"], ["attacks", "list"], ["attacks", "show", "1"]):
        output = invoke(*command, "--db", db_url)
        assert "\x1b" not in output and "\x07" not in output
    assert max(len(line) for line in invoke("hits", "list", "--db", db_url).splitlines()) <= 80
    (row,) = csv.DictReader(io.StringIO(invoke("export", "--format", "csv", "--db", db_url)))
    assert row["payload"] == '\'=HYPERLINK("http://evil")'


def test_db_prune_and_upgrade(db_url: str) -> None:
    assert "schema upgraded from nothing to 0001" in invoke("db", "upgrade", "--db", db_url)
    assert "schema is up to date (revision 0001)" in invoke("db", "upgrade", "--db", db_url)
    now = datetime.now(UTC).timestamp()
    store = AttackStore.open(db_url)
    store.record([hit(ts=now - 40 * 86400, target="/old"), hit(ts=now - 86400, target="/new")])
    day_30 = now - 30 * 86400  # and an attack going on across the cutoff: two hits before it, one after
    store.record(
        [hit(ts=day_30 - 1200, target="/on"), hit(ts=day_30 - 600, target="/on"), hit(ts=day_30 + 600, target="/on")]
    )
    store.close()
    assert ": 3 hits, 1 attacks, 0 anomalies, 0 runs" in invoke("db", "prune", "--older-than", "30d", "--db", db_url)
    assert sorted(h["target"] for h in hits_json(db_url)) == ["/new", "/on"]
    attacks = json.loads(invoke("attacks", "list", "--format", "json", "--db", db_url))
    assert sorted((a["target"], a["hits"]) for a in attacks) == [("/new", 1), ("/on", 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("hits", "list", "--since", "yesterday"), "'yesterday' is not a time"),
        (("hits", "list", "--src", "300.1.1.1"), "'300.1.1.1' is not an IP address or CIDR block"),
        (("attacks", "list", "--until", "5x"), "'5x' is not a time"),
        (("db", "prune", "--older-than", "-3d"), "'-3d' is not a duration"),
        (("db", "prune"), "Missing option '--older-than'"),
        (("hits", "list", "--format", "xml"), "'xml' is not one of"),
    ],
)
def test_bad_options_are_usage_errors_that_say_what_is_accepted(args: tuple[str, ...], message: str) -> None:
    assert message in invoke(*args, "--db", "sqlite://", expect=2)


def test_anomalies_list(db_url: str) -> None:
    store = AttackStore.open(db_url)
    store.record_anomalies(
        [
            AnomalySighting(ts=T0, name="content_length_and_chunked", src_ip="192.0.2.66", src_port=1,
                            dst_ip="198.51.100.20", dst_port=80, method="POST", target="/login"),
            AnomalySighting(ts=T0 + 60, name="garbage_before_request", detail="9 bytes discarded",
                            src_ip="2001:db8::1", src_port=2, dst_ip="2001:db8::80", dst_port=80),
        ]
    )  # fmt: skip
    store.close()
    listed = json.loads(invoke("anomalies", "list", "--format", "json", "--db", db_url))
    assert [(a["name"], a["target"]) for a in listed] == [
        ("garbage_before_request", None),
        ("content_length_and_chunked", "/login"),
    ]
    only_v4 = json.loads(invoke("anomalies", "list", "--format", "json", "--src", "192.0.2.0/24", "--db", db_url))
    assert [a["name"] for a in only_v4] == ["content_length_and_chunked"]
    by_name = invoke("anomalies", "list", "--name", "garbage_before_request", "--format", "jsonl", "--db", db_url)
    assert len(by_name.splitlines()) == 1
    table = invoke("anomalies", "list", "--db", db_url).splitlines()
    assert len(table) == 3 and max(map(len, table)) <= 80
