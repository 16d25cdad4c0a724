"""Failures between labelbin and a server, injected by a proxy of the test
suite (tests/remote/faultproxy.py) in front of nginx on loopback: 500s, 503
with Retry-After, 429, resets mid-body, truncated bodies, answers slower
than the timeout, a 200 HTML error page instead of the chunk, a wrong
Content-Range, a server that ignores ranges, a 403. Each case either gives
the same bytes as the dataset read from disk (a passing fault, retried) or
fails with exit 1 naming the URL and the status (a lasting one) — never a
silent fill.

The fault matrix (case -> outcome) is FAULTS below. Short timeouts and
backoff come from tests/remote/servers.py (LB_HTTP_RETRIES=3, so 4
attempts; LB_HTTP_STALL_TIMEOUT=1 s).
Run: /usr/bin/python3 -m pytest -q tests/py_remote_faults.py
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "remote"))
import datasets  # noqa: E402
import servers  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
LBIO = os.path.abspath(os.path.join(BUILD, "tests", "tool_lbio"))
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian's "
                                "nginx; scripts/install-deps installs it)")

# case: (proxy action and its settings, what a lasting fault says on stderr)
FAULTS = {
    "500": (dict(action="status", code=500, body="oops"), "HTTP 500 (Internal Server Error)"),
    "503_retry_after": (dict(action="status", code=503, headers={"Retry-After": "1"}),
                        "HTTP 503 (Service Unavailable)"),
    "429": (dict(action="status", code=429), "HTTP 429 (Too Many Requests)"),
    "reset": (dict(action="reset"), "gave up after 4 attempts"),
    "truncated": (dict(action="truncate"), "gave up after 4 attempts"),
    "slow_answer": (dict(action="stall", seconds=4), "timed out"),
    # curl judges a stall by the speed over its last seconds, so after a
    # burst of body bytes it takes up to ~7 s to call a 1 s stall one: the
    # proxy must stall longer, or it closes first and the read fails
    # otherwise ("transfer closed"), as one run of 4 s did.
    "stall_mid_body": (dict(action="stall_body", seconds=15), "timed out"),
    "html_page": (dict(action="html"), "HTML page"),
    "wrong_content_range": (dict(action="bad_range"), "asked for bytes"),
}
# The chunk the faults hit: in a sharded array its shard (index and inner
# chunk requests alike), else the chunk file.
TARGETS = {"zarr2": "/all/0.1.2", "n5": "/all/1/1/0", "zarr3_sharded": "/all/c/0/1/1"}


def run(args, env=None, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, env=env or servers.env(),
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def data():
    root = tempfile.mkdtemp(prefix="lb-remote-data-")
    try:
        d = datasets.make(root, v3cases=False)
        d["root"] = root
        for name in TARGETS:
            out = os.path.join(root, name + ".bin")
            rc, _, err = run([LBIO, "read", os.path.join(root, d[name]), out])
            assert rc == 0, err
            with open(out, "rb") as f:
                d["bytes_" + name] = f.read()
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


def applies(name, case):
    if case == "wrong_content_range":  # range requests: the sharded array's
        return name == "zarr3_sharded"
    if case in ("slow_answer", "stall_mid_body"):  # each costs timeouts: once
        return name == "zarr2"
    return True


CASES = [(n, c) for n in TARGETS for c in FAULTS if applies(n, c)]


@pytest.mark.parametrize("name,case", CASES, ids=["%s-%s" % nc for nc in CASES])
def test_passing_fault_gives_the_right_bytes(proxy, data, name, case, tmp_path):
    settings, _ = FAULTS[case]
    settings = dict(settings)
    # Twice (of 4 attempts); a stall once (each costs a timeout).
    times = 1 if case in ("slow_answer", "stall_mid_body") else 2
    rule = proxy.add(TARGETS[name], times=times, **settings)
    out = str(tmp_path / "r.bin")
    rc, _, err = run([LBIO, "read", proxy.url + "/" + data[name], out])
    assert rc == 0, err
    assert rule.hits == times  # the fault did happen
    with open(out, "rb") as f:
        assert f.read() == data["bytes_" + name]


@pytest.mark.parametrize("name,case", CASES, ids=["%s-%s" % nc for nc in CASES])
def test_lasting_fault_fails_naming_the_url(proxy, data, name, case, tmp_path):
    settings, says = FAULTS[case]
    proxy.add(TARGETS[name], **dict(settings))
    out = str(tmp_path / "r.bin")
    rc, so, err = run([LBIO, "read", proxy.url + "/" + data[name], out])
    assert rc == 1
    assert proxy.url + "/" + data[name] + TARGETS[name][len("/all"):] in err
    assert says in err, err
    assert not os.path.exists(out)  # nothing read, nothing written


def test_lasting_fault_fails_binarize(proxy, data, tmp_path):
    proxy.add(TARGETS["zarr2"], action="status", code=502)
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, _, err = run([LABELBIN, "binarize", "-q", "-j2", proxy.url + "/" + data["zarr2"], dest,
                      "-g", "mito=3,4,5", "-g", "cell="])
    assert rc == 1
    assert err.startswith("labelbin: ")
    assert proxy.url + "/" + data["zarr2"] + "/0.1.2: HTTP 502 (Bad Gateway)" in err
    # The output, if any, says it is unfinished: never a silent fill.
    if os.path.exists(os.path.join(dest, ".zattrs")):
        rc, out, err = run([LABELBIN, "info", dest])
        assert "unfinished" in out + err or "--resume" in out + err


def test_lasting_fault_raises_in_python(proxy, data, monkeypatch):
    import labelbin
    for k, v in servers.env().items():
        monkeypatch.setenv(k, v)
    proxy.add(TARGETS["zarr3_sharded"], action="html")
    url = proxy.url + "/" + data["zarr3_sharded"]
    a = labelbin.ZarrArray(url)
    with pytest.raises(Exception) as e:
        a.to_ndarray()
    assert url + "/c/0/1/1" in str(e.value) and "HTML page" in str(e.value)


@pytest.mark.parametrize("name", ["zarr3_sharded", "zarr2"])
def test_server_ignoring_ranges(proxy, data, name, tmp_path):
    """A 200 with the whole object to a range request: the range is cut out
    of it (shard indexes and inner chunks alike)."""
    rule = proxy.add("/all/", action="ignore_range")
    out = str(tmp_path / "r.bin")
    rc, _, err = run([LBIO, "read", proxy.url + "/" + data[name], out])
    assert rc == 0, err
    if name == "zarr3_sharded":
        assert rule.hits > 0 and all(r == "" or s == 200 for _, p, r, s, _ in
                                     proxy.requests() if "/c/" in p)
    with open(out, "rb") as f:
        assert f.read() == data["bytes_" + name]


def test_forbidden_is_not_absence(proxy, data, tmp_path):
    """Over HTTP a 403 is an error (not retried), never a missing chunk."""
    proxy.add(TARGETS["zarr2"], action="status", code=403)
    rc, _, err = run([LBIO, "read", proxy.url + "/" + data["zarr2"], str(tmp_path / "r.bin")])
    assert rc == 1
    assert "HTTP 403 (Forbidden): access denied" in err
    assert len([r for r in proxy.requests() if TARGETS["zarr2"] in r[1]]) == 1


def test_not_found_is_the_fill_value(proxy, data, tmp_path):
    """A 404 is the server's definite word: the chunk reads as the fill
    value, as a chunk file missing on disk does."""
    proxy.add(TARGETS["zarr2"], action="status", code=404)
    out = str(tmp_path / "r.bin")
    rc, _, err = run([LBIO, "read", proxy.url + "/" + data["zarr2"], out])
    assert rc == 0, err
    expect = data["labels"].copy()
    expect[0:32, 32:64, 64:96] = 0  # chunk 0.1.2
    with open(out, "rb") as f:
        assert f.read() == expect.astype("<u8").tobytes()
    assert not np.array_equal(expect, data["labels"])


def test_latency_does_not_change_bytes(web, data, tmp_path):
    """Requests 20 ms late, read with the default concurrency and with one
    thread: the same bytes."""
    with FaultProxy(web.url, latency_ms=20) as p:
        for threads in ("8", "1"):
            out = str(tmp_path / ("r%s.bin" % threads))
            rc, _, err = run([LBIO, "read", p.url + "/" + data["zarr3_sharded"], out],
                             env=servers.env(LB_HTTP_CONCURRENCY=threads))
            assert rc == 0, err
            with open(out, "rb") as f:
                assert f.read() == data["bytes_zarr3_sharded"]
