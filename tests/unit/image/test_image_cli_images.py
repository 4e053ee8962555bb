"""The image commands as a user runs them: tables, formats, rmi rules, exit codes, lean imports."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from imgtools import entry, gz, make_tar

from bench.cli import cli
from runtime.cli.images import human_since, parse_changes, render_template
from runtime.engine.fmt import bytes_decimal
from runtime.image.errors import ImageError, ImageInUse
from runtime.image.store import ImageStore

REPO = Path(__file__).resolve().parents[3]
VIRTLAB = Path(sys.executable).with_name("virtlab")


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


def run(root, *args, input=None):
    r = CliRunner().invoke(cli, ["--root", str(root), *args], input=input, catch_exceptions=True)
    return r


def ok(root, *args, input=None) -> str:
    r = run(root, *args, input=input)
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture
def tarball(tmp_path) -> Path:
    p = tmp_path / "rootfs.tar.gz"
    p.write_bytes(gz(make_tar(entry("file", "bin/tool", "x" * 1500, mode=0o755))))
    return p


def test_import_images_table_and_formats(root, tarball):
    image_id = ok(root, "import", str(tarball), "app:v1", "-c", 'CMD ["/bin/tool"]', "-c", "ENV A=1",
                  "-m", "first").strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    table = ok(root, "images").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["app", "v1", image_id[7:19]]
    assert table[1].endswith("1.5kB")
    assert ok(root, "images", "-q") == image_id[7:19] + "\n"
    assert ok(root, "images", "--format", "{{.Repository}}:{{.Tag}}") == "app:v1\n"
    row = json.loads(ok(root, "images", "--format", "json"))
    assert row["Repository"] == "app" and row["Digest"].startswith("sha256:")
    assert "DIGEST" in ok(root, "images", "--digests").splitlines()[0]
    assert ok(root, "images", "--no-trunc", "-q").strip() == image_id
    table = ok(root, "images", "--format", "table {{.Repository}}\t{{.Tag}}").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG"] and table[1].split() == ["app", "v1"]
    doc = json.loads(ok(root, "image", "inspect", "app:v1"))
    assert isinstance(doc, list) and doc[0]["Id"] == image_id
    assert doc[0]["Config"]["Cmd"] == ["/bin/tool"] and doc[0]["Config"]["Env"] == ["A=1"]
    assert doc[0]["RepoTags"] == ["app:v1"] and doc[0]["Comment"] == "first"
    assert ok(root, "image", "inspect", "-f", "{{.Id}}", "app:v1").strip() == image_id
    hist = ok(root, "history", "app:v1").splitlines()
    assert hist[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"] and "virtlab import" in hist[1]


def test_import_from_stdin(root, tarball):
    image_id = ok(root, "import", "-", "stdin:1", input=tarball.read_bytes()).strip()
    assert ImageStore(root / "image").resolve("stdin:1").id == image_id


def test_rmi_rules(root, tarball):
    ok(root, "import", str(tarball), "a:1")
    ok(root, "tag", "a:1", "b:1")
    assert ok(root, "rmi", "b:1") == "Untagged: b:1\n"
    store = ImageStore(root / "image")
    img = store.resolve("a:1")
    store.hold(img.id, "ctr123")
    r = run(root, "rmi", "a:1")
    assert r.exit_code == 125 and "must force" in r.output
    out = ok(root, "rmi", "-f", "a:1")
    assert out == "Untagged: a:1\n"
    assert [i.refs for i in store.images()] == [[]]  # kept, dangling, for the container
    store.release(img.id, "ctr123")
    ok(root, "tag", img.id, "c:1")
    ok(root, "tag", "c:1", "d:1")
    out = ok(root, "rmi", img.short_id)  # by ID: every tag goes
    assert "Untagged: c:1" in out and "Untagged: d:1" in out and f"Deleted: {img.id}" in out
    assert store.images() == []


def test_rmi_continues_and_fails_125(root, tarball):
    ok(root, "import", str(tarball), "x:1")
    r = run(root, "rmi", "nope:1", "x:1")
    assert r.exit_code == 125
    assert "Untagged: x:1" in r.output and "no such image: nope:1" in r.output


def test_prune_and_df(root, tarball):
    ok(root, "import", str(tarball), "p:1")
    store = ImageStore(root / "image")
    store.import_tar(io.BytesIO(make_tar(entry("file", "f", "x"))), None)
    assert "<none>" in ok(root, "images")
    df = ok(root, "system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "2", "0"]
    out = ok(root, "image", "prune", "-f")
    assert "Deleted Images:" in out and "Total reclaimed space:" in out
    assert "<none>" not in ok(root, "images")
    assert "p" in ok(root, "images", "--format", "{{.Repository}}")
    ok(root, "system", "prune", "-a", "-f")
    assert store.images() == []


def test_save_load_cli(root, tarball, tmp_path):
    ok(root, "import", str(tarball), "s:1")
    ok(root, "save", "-o", str(tmp_path / "s.tar"), "s:1")
    other = tmp_path / "other"
    assert ok(other, "load", "-i", str(tmp_path / "s.tar")).splitlines()[-1] == "Loaded image: s:1"
    r = run(other, "load", "-i", str(tmp_path / "missing.tar"))
    assert r.exit_code == 125 or isinstance(r.exception, ImageError)


def test_helpers():
    assert bytes_decimal(0) == "0B" and bytes_decimal(1982427) == "1.98MB" and bytes_decimal(1500) == "1.5kB"
    assert human_since("garbage") == "N/A"
    assert human_since("2000-01-01T00:00:00Z").endswith("years ago")
    assert render_template("{{.A}}-{{json .B}}", {"A": 1, "B": [1]}) == "1-[1]"
    with pytest.raises(ImageError, match="can't evaluate field Nope"):
        render_template("{{.Nope}}", {"A": 1})
    cfg = parse_changes(("CMD echo hi", "ENTRYPOINT [\"/init\"]", "ENV K V", "WORKDIR /w", "USER 1:1",
                         "LABEL a=b", "EXPOSE 80 53/udp", "VOLUME /data"))
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo hi"] and cfg["Entrypoint"] == ["/init"]
    assert cfg["Env"] == ["K=V"] and cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    with pytest.raises(ImageError):
        parse_changes(("RUN rm -rf /",))


def test_exit_codes_through_main(root, tarball):
    """The real entry point: our errors exit 125 with `Error: ...` on stderr."""
    for args, msg in ((["rmi", "ghost:1"], b"no such image: ghost:1"),
                      (["import", "/nonexistent.tar", "x:1"], b"no such file"),
                      (["tag", "ghost", "x:1"], b"no such image"),
                      (["import", str(tarball), "BAD/Name"], b"lowercase"),
                      (["load", "-i", str(tarball)], b"not an image archive")):
        r = subprocess.run([str(VIRTLAB), "--root", str(root), *args], capture_output=True, timeout=60)
        assert r.returncode == 125, (args, r.stderr)
        assert msg in r.stderr


def test_images_path_is_lean(root):
    """`virtlab images` loads neither httpx nor rich."""
    code = ("import sys; from bench.cli import main\n"
            "try:\n    main(['--root', sys.argv[1], 'images'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('httpx', 'rich', 'pandas', 'libvirt', 'tarfile') if m in sys.modules]\n"
            "print('LOADED', bad)")
    r = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "LOADED []" in r.stdout, r.stdout + r.stderr


def test_in_use_error_type(root, tarball):
    ok(root, "import", str(tarball), "u:1")
    store = ImageStore(root / "image")
    store.hold(store.resolve("u:1").id, "c1")
    with pytest.raises(ImageInUse):
        store.remove(store.resolve("u:1"))
    store.release(store.resolve("u:1").id, "c1")


def test_save_to_stdout_and_load_from_stdin(root, tarball, tmp_path):
    ok(root, "import", str(tarball), "pipe:1")
    saved = subprocess.run([str(VIRTLAB), "--root", str(root), "save", "pipe:1"], capture_output=True, timeout=60)
    assert saved.returncode == 0 and saved.stdout[:512].strip(b"\0")
    loaded = subprocess.run([str(VIRTLAB), "--root", str(tmp_path / "other"), "load"], input=saved.stdout,
                            capture_output=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert b"Loaded image: pipe:1" in loaded.stdout


def test_df_verbose_and_holds(root, tarball):
    ok(root, "import", str(tarball), "v:1")
    store = ImageStore(root / "image")
    img = store.resolve("v:1")
    store.hold(img.id, "container:abc")
    out = ok(root, "system", "df", "-v")
    assert out.splitlines()[1].split()[:3] == ["Images", "1", "1"]
    assert "Images space usage:" in out and "v" in out and "Store:" in out
    store.release(img.id, "container:abc")
