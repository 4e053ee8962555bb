"""Ready/exit markers on the console log and the boot phase split."""

from __future__ import annotations

import threading
import time

from vmdriver.driver import boot_phases
from vmdriver.readiness import READY, output_between_markers, parse_exit, wait_marker


def test_wait_marker_sees_a_line_written_later(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"old VIRTLAB_READY init=0 ready=0\n")
    offset = log.stat().st_size

    def writer():
        time.sleep(0.2)
        with open(log, "ab") as f:
            f.write(b"[  1.0] kernel noise\nVIRTLAB_REA")
            f.flush()
            time.sleep(0.05)
            f.write(b"DY init=1.25 ready=1.50\nmore\n")

    t = threading.Thread(target=writer)
    t0 = time.time()
    t.start()
    got = wait_marker(log, READY, timeout=5, offset=offset)
    t.join()
    assert got is not None
    seen, line = got
    assert line == "VIRTLAB_READY init=1.25 ready=1.50"
    assert t0 + 0.2 <= seen < t0 + 2


def test_wait_marker_times_out_and_stops_when_the_vm_is_gone(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"nothing here\n")
    t0 = time.monotonic()
    assert wait_marker(log, READY, timeout=0.3) is None
    assert time.monotonic() - t0 < 2
    t0 = time.monotonic()
    assert wait_marker(log, READY, timeout=30, alive=lambda: False) is None
    assert time.monotonic() - t0 < 2


def test_exit_code_and_workload_output():
    text = "boot\nVIRTLAB_READY init=1 ready=2\nhi\r\nthere\nVIRTLAB_EXIT 3\n[ 2.0] reboot: Power down\n"
    assert parse_exit(text) == 3
    assert parse_exit("no marker") is None
    assert output_between_markers(text) == "hi\nthere\n"


def test_boot_phases_add_up():
    # requested 100.0, libvirt returned at 100.3, ready seen at 103.0; guest uptimes 1.5 / 1.9.
    p = boot_phases(100.0, 100.3, 103.0, {"init": 1.5, "ready": 1.9})
    assert round(p["vmm"], 6) == 0.3
    assert round(p["firmware"], 6) == 0.8  # kernel started at 103.0 - 1.9 = 101.1
    assert p["kernel"] == 1.5 and round(p["init"], 6) == 0.4
    assert round(sum(p.values()), 6) == 3.0
    assert boot_phases(0, 1, 3, {}) == {"vmm": 1, "guest": 2}
