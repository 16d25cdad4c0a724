"""What is at a label cache's name in /dev/shm, through Python and the CLI:
only labelbin caches are ever used, replaced or removed (another file of
that name, a link or a directory is refused, named, and left as it was);
a process that asks for another size joins the cache there and says so;
`labelbin cache-stats --remove` removes a damaged cache and the temporaries
of killed processes, even when the cache itself is gone; remote crops that
differ only in their URL's query string are kept apart.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_cache_files.py
"""

import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import numpy as np
import pytest
import zarr

import labelbin
from labelbin import ZarrArray

_SRC = pathlib.Path(os.environ.get("LB_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[1]))
BUILD = pathlib.Path(os.environ.get("LB_BUILD_DIR", _SRC / "build"))
EXE = str(BUILD / "labelbin")


@pytest.fixture
def name():
    n = "lb-pyfiles-" + uuid.uuid4().hex[:12]
    yield n
    p = "/dev/shm/" + n
    if os.path.islink(p) or os.path.isfile(p):
        os.unlink(p)
    elif os.path.isdir(p):
        os.rmdir(p)


@pytest.fixture
def labels(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "v.zarr"
    z = zarr.open(str(path), mode="w", shape=(40, 40, 40), chunks=(16, 16, 16), dtype="<u2",
                  fill_value=0)
    z[...] = (rng.integers(0, 4, (5, 5, 5)).repeat(8, 0).repeat(8, 1).repeat(8, 2))
    return str(path)


def stats_cli(*args):
    return subprocess.run([EXE, "cache-stats", *args], capture_output=True, text=True)


@pytest.mark.parametrize("content", [b"my notes\n", os.urandom(4 << 20)],
                         ids=["text", "cache-sized"])
def test_another_file_is_left_alone(labels, name, content):
    path = "/dev/shm/" + name
    with open(path, "wb") as f:
        f.write(content)
    a = ZarrArray(labels)
    with pytest.raises(FileExistsError) as e:
        a.set_label_cache(4 << 20, name=name)
    assert path in str(e.value) and "not a labelbin cache file" in str(e.value)
    assert a.cache_info()["kind"] == "none"
    with pytest.raises(FileExistsError):
        labelbin.cache_remove(name)
    with pytest.raises(FileExistsError):
        labelbin.cache_stats(name)
    for args in ([name], ["--json", name]):
        r = stats_cli(*args)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and path in r.stderr and "not a labelbin cache" in r.stderr
    r = stats_cli("--remove", name)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not removed" in r.stderr
    with open(path, "rb") as f:
        assert f.read() == content


def test_links_and_directories_are_left_alone(labels, name):
    path = "/dev/shm/" + name
    target = name + "-target"
    a = ZarrArray(labels)
    a.set_label_cache(1 << 20, name=target)
    try:
        os.symlink("/dev/shm/" + target, path)
        b = ZarrArray(labels)
        with pytest.raises(FileExistsError, match="symbolic link"):
            b.set_label_cache(1 << 20, name=name)
        r = stats_cli("--remove", name)
        assert r.returncode == 1 and "symbolic link" in r.stderr
        assert os.path.islink(path)
        os.unlink(path)
        os.mkdir(path)
        with pytest.raises(FileExistsError, match="directory"):
            b.set_label_cache(1 << 20, name=name)
        assert os.path.isdir(path)
        assert a.cache_info()["path"] == "/dev/shm/" + target  # untouched
    finally:
        labelbin.cache_remove(target)


CHILD = r"""
import sys, labelbin
a = labelbin.ZarrArray(sys.argv[1])
a.set_label_cache(int(sys.argv[3]), name=sys.argv[2])
a[a.roi]
i = a.cache_info()
print(i["capacity"], i["process_hits"], i["process_misses"])
"""


def test_another_size_joins_the_cache(labels, name):
    a = ZarrArray(labels)
    a.set_label_cache(4 << 20, name=name)
    a.warm()
    ino = os.stat("/dev/shm/" + name).st_ino
    cap = a.cache_info()["capacity"]
    env = dict(os.environ, PYTHONPATH=str((BUILD / "python").resolve()))
    r = subprocess.run([sys.executable, "-c", CHILD, labels, name, str(16 << 20)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    capacity, hits, misses = map(int, r.stdout.split())
    assert capacity == cap and hits == 27 and misses == 0  # what `a` warmed
    assert r.stderr.count("uses the cache already there") == 1
    assert "labelbin cache-stats --remove " + name in r.stderr
    assert os.stat("/dev/shm/" + name).st_ino == ino
    # resized by removing it: the next process makes it at its size
    labelbin.cache_remove(name)
    r = subprocess.run([sys.executable, "-c", CHILD, labels, name, str(16 << 20)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stderr == ""
    assert int(r.stdout.split()[0]) > cap


def test_stats_show_the_entry_limit_and_reads(labels, name):
    a = ZarrArray(labels)
    a.set_label_cache(4 << 20, name=name)
    a.warm()
    r = stats_cli("--json", name)
    s = json.loads(r.stdout)
    assert s["max_entries"] == 3072 and s["entries"] == 27
    # warming is not reading: its lookups are not counted as hits or misses
    assert (s["hits"], s["misses"], s["inserts"]) == (0, 0, 27)
    a[a.roi]
    i = a.cache_info()
    assert (i["hits"], i["misses"], i["process_hits"]) == (27, 0, 27)
    assert "27 chunks; the index holds at most 3072\n" in stats_cli(name).stdout


def test_remove_a_damaged_cache_and_old_temporaries(labels, name):
    a = ZarrArray(labels)
    a.set_label_cache(1 << 20, name=name)
    path = "/dev/shm/" + name
    with open(path, "r+b") as f:
        f.write(b"\0" * 64)
    r = stats_cli(name)
    assert r.returncode == 1 and "--remove " + name in r.stderr
    r = stats_cli("--remove", name)
    assert r.returncode == 0 and ("removed the damaged cache file " + path) in r.stderr
    assert not os.path.exists(path)
    # A temporary left by a killed process while the cache is absent.
    dead = subprocess.Popen(["true"])
    dead.wait()
    tmp = "/dev/shm/.%s.%d.Abcdef" % (name, dead.pid)
    open(tmp, "w").close()
    old = time.time() - 300
    os.utime(tmp, (old, old))
    r = stats_cli("--remove", name)
    assert r.returncode == 1 and "no label cache" in r.stderr
    assert not os.path.exists(tmp)


class _ByQuery(http.server.BaseHTTPRequestHandler):
    """Serves ROOT/<version>/<path> for GET/HEAD <path>?version=<version>."""
    root = None

    def _file(self):
        u = urllib.parse.urlsplit(self.path)
        version = urllib.parse.parse_qs(u.query).get("version", ["v1"])[0]
        return os.path.join(self.root, version, u.path.lstrip("/"))

    def do_GET(self, body=True):
        p = self._file()
        if not os.path.isfile(p):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(p, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET(body=False)

    def log_message(self, *args):
        pass


def test_urls_that_differ_in_their_query_are_other_data(tmp_path, name):
    """Two crops served at one path, told apart by the query string (as
    object stores' versions and signed URLs are): each has its own
    entries."""
    versions = {"v1": np.full((16, 16, 16), 1, np.uint16),
                "v2": np.full((16, 16, 16), 2, np.uint16)}
    versions["v2"][:4] = 5
    for tag, data in versions.items():
        z = zarr.open(str(tmp_path / tag / "crop.zarr" / "labels"), mode="w", shape=data.shape,
                      chunks=(8, 8, 8), dtype="<u2", compressor=None)
        z[...] = data
    handler = type("H", (_ByQuery,), {"root": str(tmp_path)})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for tag, data in versions.items():
            url = "http://127.0.0.1:%d/crop.zarr/labels?version=%s" % (srv.server_address[1], tag)
            a = ZarrArray(url)
            a.set_label_cache(8 << 20, name=name)
            assert np.array_equal(a[a.roi], data), tag
        assert labelbin.cache_stats(name)["entries"] == 16
    finally:
        srv.shutdown()
        srv.server_close()


OTHER_USER = r"""
import sys, labelbin
a = labelbin.ZarrArray(sys.argv[1])
try:
    a.set_label_cache(4 << 20, name=sys.argv[2])
except FileExistsError as e:
    print("refused:", e)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root and setpriv to act as another user")
def test_another_users_cache_is_left_alone(name):
    """A cache is private to its user (mode 0600): another user opening its
    name is refused, told whose it is, and the file stays as it was."""
    import tempfile
    d = tempfile.mkdtemp(prefix="lb-other-user-")
    try:
        os.chmod(d, 0o755)
        z = zarr.open(os.path.join(d, "v.zarr"), mode="w", shape=(16, 16, 16),
                      chunks=(8, 8, 8), dtype="<u2", fill_value=0)
        z[...] = 3
        for root, dirs, files in os.walk(d):
            for f in dirs + files:
                os.chmod(os.path.join(root, f), 0o755)
        a = ZarrArray(os.path.join(d, "v.zarr"))
        a.set_label_cache(1 << 20, name=name)
        a.warm()
        path = "/dev/shm/" + name
        assert os.stat(path).st_mode & 0o777 == 0o600
        before = os.stat(path)
        env = dict(os.environ, PYTHONPATH=str((BUILD / "python").resolve()))
        r = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", sys.executable, "-c", OTHER_USER,
                            os.path.join(d, "v.zarr"), name],
                           capture_output=True, text=True, env=env, cwd=d)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("refused: " + path + " belongs to another user (uid 0)")
        after = os.stat(path)
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == \
            (before.st_ino, before.st_size, before.st_mtime_ns)
        assert a.cache_info()["entries"] == 8
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
