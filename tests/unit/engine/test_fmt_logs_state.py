import time

from runtime.engine import fmt, logs
from runtime.engine.state import Status


def test_human_duration():
    assert fmt.human_duration(0.2) == "Less than a second"
    assert fmt.human_duration(1) == "1 second"
    assert fmt.human_duration(3) == "3 seconds"
    assert fmt.human_duration(61) == "About a minute"
    assert fmt.human_duration(120) == "2 minutes"
    assert fmt.human_duration(3600) == "About an hour"
    assert fmt.human_duration(3 * 3600) == "3 hours"
    assert fmt.human_duration(3 * 86400) == "3 days"


def test_sizes():
    assert fmt.bytes_binary(1536 * 1024) == "1.5MiB"
    assert fmt.bytes_decimal(1234) == "1.23kB"
    assert fmt.bytes_decimal(0) == "0B"


def rec(status, code=0, started=None, finished=None):
    now = time.time()
    return {"Id": "f" * 64, "Name": "web", "ImageRef": "busybox", "Created": now - 120, "Path": "sh",
            "Args": ["-c", "while true; do sleep 1; done"], "Labels": {"a": "b"}, "Mounts": [],
            "Norm": {"network": "none"}, "ExposedPorts": [],
            "State": {"Status": status, "ExitCode": code, "StartedAtTs": started or now - 3,
                      "FinishedAtTs": finished or now - 120}}


def test_status_text():
    assert fmt.status_text(rec("running")) == "Up 3 seconds"
    assert fmt.status_text(rec("paused")) == "Up 3 seconds (Paused)"
    assert fmt.status_text(rec("exited", 2)) == "Exited (2) 2 minutes ago"
    assert fmt.status_text(rec("created")) == "Created"


def test_ps_row_and_templates():
    row = fmt.ps_row(rec("running"))
    assert row["ID"] == "f" * 12
    assert row["Command"] == '"sh -c \'while true; …"'
    assert len(row["Command"]) == 22
    assert fmt.render("{{.Names}}\\t{{.Status}}", row) == "web\tUp 3 seconds"
    assert fmt.render('{{.Label "a"}}', row) == "b"
    assert fmt.render("{{json .Names}}", row) == '"web"'
    out = fmt.template_table("table {{.ID}}\\t{{.Names}}", [row], fmt.PS_HEADERS)
    assert out.splitlines()[0].split() == ["CONTAINER", "ID", "NAMES"]


def test_ports_text():
    ports = [{"container_port": 80, "proto": "tcp", "host_ip": "", "host_port": 8080}]
    assert fmt.ports_text(ports, ["80/tcp", "443/tcp"]) == "0.0.0.0:8080->80/tcp, 443/tcp"


def test_log_lines(tmp_path):
    (tmp_path / logs.LOG).write_text(
        "2026-11-28T06:10:00.500000000Z stdout F hello world\n"
        "2026-11-28T06:10:01.000000000Z stderr F oops\n"
        "garbage\n"
        "2026-11-28T06:10:02.250000000Z stdout P part\n")
    es = list(logs.read(tmp_path))
    assert [(e.stream, e.text, e.partial) for e in es] == [("stdout", "hello world", False), ("stderr", "oops", False),
                                                          ("stdout", "part", True)]
    assert es[0].ts == logs.parse_ts("2026-11-28T06:10:00Z") + 0.5
    assert [e.text for e in logs.read(tmp_path, tail=1)] == ["part"]
    assert [e.text for e in logs.read(tmp_path, since=es[1].ts)] == ["oops", "part"]
    assert [e.text for e in logs.read(tmp_path, until=es[1].ts)] == ["hello world", "oops"]


def test_state_machine():
    assert Status.CREATED.can_start() and Status.EXITED.can_start() and not Status.RUNNING.can_start()
    assert Status.RUNNING.can_pause() and not Status.PAUSED.can_pause()
    assert Status.PAUSED.can_unpause() and not Status.RUNNING.can_unpause()
    assert not Status.RUNNING.can_remove() and Status.EXITED.can_remove()
    assert Status.RUNNING.can_exec() and not Status.PAUSED.can_exec()


def test_log_follow(tmp_path):
    """-f reads what is appended while the monitor lives, then the rest once it ends; --until ends it."""
    import threading

    log = tmp_path / logs.LOG
    log.write_text("2026-11-28T06:10:00.000000000Z stdout F one\n")
    done = threading.Event()

    def writer():
        with open(log, "a") as f:
            f.write("2026-11-28T06:10:01.000000000Z stdout F two\n")
            f.flush()
            time.sleep(0.05)
            f.write("2026-11-28T06:10:02.000000000Z stdout F three\n")
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got = [e.text for e in logs.read(tmp_path, follow=True, alive=lambda: not done.is_set())]
    t.join()
    assert got == ["one", "two", "three"]
    # an entry after --until ends the follow even though the monitor still lives
    until = logs.parse_ts("2026-11-28T06:10:01Z")
    assert [e.text for e in logs.read(tmp_path, follow=True, until=until, alive=lambda: True)] == ["one", "two"]
    deadline = time.monotonic() + 5
    assert [e.text for e in logs.follow_lines(tmp_path, lambda: False, deadline)] == ["one", "two", "three"]
    # no log yet and the monitor gone: follow ends at once instead of waiting for the deadline
    t0 = time.monotonic()
    assert list(logs.follow_lines(tmp_path / "nothing", lambda: False, time.monotonic() + 5)) == []
    assert time.monotonic() - t0 < 4
