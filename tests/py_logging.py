"""What labelbin says beyond its errors, and what it never shows.

The library never prints: its log lines (each retry of a remote read, every
request) reach stderr only through the handler that `labelbin` (-v, -vv,
LB_VERBOSE=1/2), labelbin-mpi and the Python module (set_log_level,
LB_VERBOSE at import) install. A URL with a password
(http://user:secret@host/...) or a presigned query (?X-Amz-Signature=...)
is shown without them everywhere: -v echoes, log lines, errors and the
provenance written into outputs. Servers: nginx on loopback and the fault
proxy of tests/remote/ (as tests/py_remote.py and py_remote_faults.py).

Environment: LB_BUILD_DIR (labelbin, labelbin-mpi, tests/tool_lbio,
python/). Skipped without nginx.
Run: /usr/bin/python3 -m pytest -q tests/py_logging.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "remote"))
import datasets  # noqa: E402
import servers  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
LABELBIN_MPI = os.path.abspath(os.path.join(BUILD, "labelbin-mpi"))
LBIO = os.path.abspath(os.path.join(BUILD, "tests", "tool_lbio"))
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)
MPIRUN = shutil.which("mpirun")

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian's "
                                "nginx; scripts/install-deps installs it)")

GROUPS = ["-g", "mito=3,4,5", "-g", "cell="]
CHUNK = "/all/0.1.2"  # a chunk of the zarr2 crop that the faults hit
SECRET = "pw-s3kr1t"  # (not a word that a tmp_path could hold)


def run(args, env=None, cwd=None):
    p = subprocess.run(args, capture_output=True, text=True, env=env or servers.env(),
                       cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def secret_url(base, path):
    """base (http://host:port) + path with a password and a presigned query."""
    host = base.split("://", 1)[1]
    return "http://lbuser:%s@%s/%s?X-Amz-Signature=%s&X-Amz-Credential=AKIA" % (
        SECRET, host, path, SECRET)


def metadata_text(root):
    """Every metadata file below `root` (not chunks), concatenated."""
    text = ""
    for d, _, files in os.walk(root):
        for f in files:
            if f in (".zattrs", ".zarray", ".zgroup", "zarr.json", "attributes.json") or \
                    f.startswith(".labelbin"):
                with open(os.path.join(d, f), errors="replace") as fh:
                    text += fh.read()
    return text


def log_lines(err, kind):
    """The log lines of one kind on stderr: "GET"/"HEAD" requests or retries."""
    lines = err.splitlines()
    if kind == "request":
        return [ln for ln in lines if ln.startswith(("labelbin: GET ", "labelbin: HEAD "))]
    return [ln for ln in lines if "; retry " in ln]


@pytest.fixture(scope="module")
def data():
    root = tempfile.mkdtemp(prefix="lb-log-data-")
    try:
        d = datasets.make(root, v3cases=False)
        d["root"] = root
        yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def web(data):
    with servers.Nginx(data["root"]) as n:
        yield n


@pytest.fixture()
def proxy(web):
    with FaultProxy(web.url) as p:
        yield p


# ---- secrets ------------------------------------------------------------------

def test_secret_shown_nowhere(web, data, tmp_path):
    url = secret_url(web.url, data["zarr2"])
    clean = web.url + "/" + data["zarr2"]
    dest = str(tmp_path / "o.zarr" / "gt")
    # binarize -v echoes SOURCE; -vv adds every request; the output records it
    rc, out, err = run([LABELBIN, "binarize", "-vv", url, dest, *GROUPS])
    assert rc == 0, err
    assert SECRET not in out + err and "lbuser" not in out + err
    assert "BinarizeArray %s -> %s: ROI" % (clean, dest) in err  # the echo, cleaned
    reqs = log_lines(err, "request")
    assert reqs and all(ln.split()[2].startswith(web.url + "/") for ln in reqs)
    assert "labelbin: GET " + clean + "/.zarray -> 200" in err
    meta = metadata_text(str(tmp_path / "o.zarr"))
    assert SECRET not in meta
    with open(os.path.join(dest, ".zattrs")) as f:
        assert json.load(f)["labelbin"]["source"] == clean
    # mask, info (text and JSON), preview, run: the same
    runs = [["mask", "-v", url, str(tmp_path / "m.zarr" / "mask"), *GROUPS],
            ["info", "-v", url], ["info", "-v", "--json", url],
            ["preview", "-v", url, "-o", str(tmp_path / "p.png"), *GROUPS]]
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt", "groupings": [["mito", [3]]],
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "labels",
                                   "file_name": url.split("/crop.zarr/")[0] + "/crop.zarr",
                                   "dataset": data["zarr2"][len("crop.zarr/"):]}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    runs.append(["run", "-v", str(tmp_path / "c.json"), str(tmp_path / "r.zarr" / "gt")])
    for args in runs:
        rc, out, err = run([LABELBIN, *args])
        assert rc == 0, (args, err)
        assert SECRET not in out + err and "lbuser" not in out + err, args
    assert json.loads(run([LABELBIN, "info", "--json", url])[1])["path"] == clean
    for d in ("m.zarr", "r.zarr"):
        assert SECRET not in metadata_text(str(tmp_path / d))
    with open(tmp_path / "r.zarr" / "gt" / ".zattrs") as f:
        assert json.load(f)["labelbin"]["source"] == clean
    with open(tmp_path / "p.png", "rb") as f:
        assert SECRET.encode() not in f.read()


def test_secret_shown_nowhere_in_failures(web, data, tmp_path):
    missing = secret_url(web.url, "nothing.zarr/x")
    closed = "http://lbuser:%s@127.0.0.1:%d/x.zarr/a?X-Amz-Signature=%s" % (
        SECRET, servers.free_port(), SECRET)
    good = secret_url(web.url, data["zarr2"])
    runs = [["info", "-vv", missing], ["binarize", "-vv", missing, str(tmp_path / "a"), *GROUPS],
            ["info", "-vv", closed], ["preview", "-vv", closed, "-o", str(tmp_path / "p.png")],
            ["binarize", "-v", good, good.replace("crop.zarr", "out.zarr"), *GROUPS],
            ["info", "-v", "ftp://lbuser:%s@example.org/x?sig=%s" % (SECRET, SECRET)],
            ["info", good, good], ["binarize", good, str(tmp_path / "b"), good, *GROUPS],
            ["run", "-v", missing, str(tmp_path / "c")]]
    for args in runs:
        rc, out, err = run([LABELBIN, *args])
        assert rc in (1, 2), (args, err)
        assert err.startswith("labelbin: "), (args, err)
        assert SECRET not in out + err and "lbuser" not in out + err, (args, err)
    rc, out, err = run([LABELBIN, "info", "-vv", closed])
    assert "retry 1 of 3" in err and "gave up after 4 attempts" in err


# ---- levels ----------------------------------------------------------------------

def test_levels_of_the_cli(proxy, data, tmp_path):
    """Default and -q: no log lines; -v (LB_VERBOSE=1): retries; -vv
    (LB_VERBOSE=2): every request too, as many lines as requests."""
    url = proxy.url + "/" + data["zarr2"]
    cases = [([], {}, False, False), (["-q"], {}, False, False),
             (["-v"], {}, True, False), (["-vv"], {}, True, True),
             (["-v", "-v"], {}, True, True),
             ([], {"LB_VERBOSE": "1"}, True, False), ([], {"LB_VERBOSE": "2"}, True, True),
             (["-q"], {"LB_VERBOSE": "2"}, True, True)]
    for i, (opts, env, retries, requests) in enumerate(cases):
        proxy.clear()
        rule = proxy.add(CHUNK, action="status", code=503, times=2)
        dest = str(tmp_path / ("o%d.zarr" % i) / "gt")
        before = len(proxy.requests())
        rc, out, err = run([LABELBIN, "binarize", *opts, url, dest, *GROUPS],
                           env=servers.env(**env))
        assert rc == 0, err
        assert rule.hits == 2
        got = log_lines(err, "retry")
        assert len(got) == (2 if retries else 0), (opts, env, err)
        if retries:
            assert "/0.1.2: HTTP 503 (Service Unavailable); retry 1 of 3 in " in got[0]
            assert "retry 2 of 3 in " in got[1]
        reqs = log_lines(err, "request")
        if requests:
            assert len(reqs) == len(proxy.requests()) - before > 0, err
            assert sum(" -> 503" in ln for ln in reqs) == 2
        else:
            assert reqs == [], (opts, env, err)


def test_library_alone_prints_nothing(proxy, data, tmp_path):
    """A program that sets no handler (tests/tool_lbio) hears nothing, even
    with LB_VERBOSE=2 and retries."""
    rule = proxy.add(CHUNK, action="status", code=503, times=2)
    rc, out, err = run([LBIO, "read", proxy.url + "/" + data["zarr2"], str(tmp_path / "r.bin")],
                       env=servers.env(LB_VERBOSE=2))
    assert rc == 0, err
    assert rule.hits == 2
    assert err == ""


def test_python_log_level(proxy, data):
    code = """if True:
        import sys, labelbin
        print(labelbin.get_log_level(), flush=True)
        url = sys.argv[1]
        if len(sys.argv) == 2:
            labelbin.ZarrArray(url).to_ndarray()
        for level in map(int, sys.argv[2:]):
            print(labelbin.set_log_level(level), flush=True)
            sys.stderr.write("level %d\\n" % level); sys.stderr.flush()
            try:
                labelbin.ZarrArray(url).to_ndarray()
            except OSError:
                pass
    """
    pyenv = {"PYTHONPATH": os.path.join(BUILD, "python")}
    for env, start in (({}, "0"), ({"LB_VERBOSE": "1"}, "1"), ({"LB_VERBOSE": "2"}, "2")):
        proxy.clear()
        proxy.add(CHUNK, action="status", code=503, times=1)
        rc, out, err = run([sys.executable, "-c", code, proxy.url + "/" + data["zarr2"]],
                           env=servers.env(**pyenv, **env))
        assert rc == 0, err
        assert out.split() == [start]
        assert len(log_lines(err, "retry")) == (1 if start != "0" else 0), err
        assert bool(log_lines(err, "request")) == (start == "2"), err
    proxy.clear()
    rule = proxy.add(CHUNK, action="status", code=503)  # lasting: each read fails
    rc, out, err = run([sys.executable, "-c", code, proxy.url + "/" + data["zarr2"],
                        "-1", "1", "2"], env=servers.env(**pyenv, LB_VERBOSE=2))
    assert rc == 0, err
    assert rule.hits == 3 * 4 and out.split() == ["2", "2", "-1", "1"]
    quiet, info, debug = err.split("level ")[1:]
    assert quiet == "-1\n"
    assert len(log_lines(info, "retry")) == 3 and log_lines(info, "request") == []
    assert len(log_lines(debug, "retry")) == 3 and log_lines(debug, "request")


@pytest.mark.skipif(not MPIRUN or not os.access(LABELBIN_MPI, os.X_OK),
                    reason="mpirun or labelbin-mpi missing")
def test_mpi_ranks_log_with_their_rank(web, data, tmp_path):
    url = secret_url(web.url, data["zarr2"])
    clean = web.url + "/" + data["zarr2"]
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, out, err = run([MPIRUN, "--oversubscribe", "--allow-run-as-root", "-n", "2",
                        LABELBIN_MPI, "binarize", "-vv", url, dest, *GROUPS])
    assert rc == 0, err
    assert SECRET not in out + err
    assert "labelbin: GET " + clean + "/.zarray" in err
    assert "labelbin: rank 1: GET " + clean + "/.zarray" in err
    assert SECRET not in metadata_text(str(tmp_path / "o.zarr"))
