"""Datasets read over HTTP and HTTPS, from nginx on loopback started here:
every read compared byte for byte with the same dataset read from disk
(Zarr v2 flat and nested, with and without dimension_separator, N5, Zarr v3
with shards), through the CLI (info, binarize, mask, run), the C API
(tests/tool_lbio) and Python (labelbin.ZarrArray(url), configs whose
file_name is a URL); what is requested (metadata once, shard indexes by a
suffix range, inner chunks by ranges); HTTPS with a self-signed certificate
and the CA bundle variables; redirects; credentials never shown.

Environment: LB_BUILD_DIR (labelbin, tests/tool_lbio, python/). Needs
Debian's nginx and openssl (scripts/install-deps); skipped without nginx.
Run: /usr/bin/python3 -m pytest -q tests/py_remote.py
"""
import json
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

BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
LBIO = os.path.abspath(os.path.join(BUILD, "tests", "tool_lbio"))
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian's "
                                "nginx; scripts/install-deps installs it)")

GROUPS = ["-g", "mito=3,4,5", "-g", "er=16,17,18,19,20,21,22,23", "-g", "cell="]
# Redirects for test_redirects: /moved/… answers 301 to /…, /loop/ to itself.
REDIRECTS = """
        location /moved/ { rewrite ^/moved/(.*)$ /$1 permanent; }
        location /loop/ { return 302 /loop/; }
"""


def run(args, env=None, cwd=None, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, env=env or servers.env(),
                       cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def read(src, out, *extra, env=None):
    """The array at `src` (path or URL) as raw bytes, through the C API."""
    rc, so, err = run([LBIO, "read", src, out, *extra], env=env)
    assert rc == 0, err
    with open(out, "rb") as f:
        return f.read(), json.loads(so)


@pytest.fixture(scope="module")
def data():
    root = tempfile.mkdtemp(prefix="lb-remote-data-")
    try:
        d = datasets.make(root)
        d["root"] = root
        yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def web(data):
    with servers.Nginx(data["root"], extra=REDIRECTS) as n:
        yield n


@pytest.fixture(scope="module")
def tls(data):
    d = tempfile.mkdtemp(prefix="lb-tls-")
    try:
        cert, key = servers.make_cert(d)
        with servers.Nginx(data["root"], cert=cert, key=key) as n:
            n.ca = cert
            yield n
    finally:
        shutil.rmtree(d, ignore_errors=True)


NAMES = ["zarr2", "zarr2_nested_sep", "zarr2_nested_nosep", "zarr2_sparse_nosep",
         "zarr2_empty_nosep", "n5", "zarr3_sharded"]


@pytest.mark.parametrize("name", NAMES)
def test_read_matches_disk(web, data, name, tmp_path):
    path = data[name]
    local, meta_l = read(os.path.join(data["root"], path), str(tmp_path / "l.bin"))
    remote, meta_r = read(web.url + "/" + path, str(tmp_path / "r.bin"))
    assert remote == local
    expect = {"zarr2_sparse_nosep": data["sparse"]}.get(name, data["labels"])
    if name == "zarr2_empty_nosep":
        expect = np.zeros_like(data["labels"])
    assert remote == expect.astype("<u8").tobytes()  # numpy, zarr-python's oracle
    meta_l.pop("path", None), meta_r.pop("path", None)
    assert meta_r == meta_l
    # A box inside: only parts of chunks (and of shards).
    box = ["--start", "5,7,9", "--count", "40,50,61"]
    local, _ = read(os.path.join(data["root"], path), str(tmp_path / "lb.bin"), *box)
    remote, _ = read(web.url + "/" + path, str(tmp_path / "rb.bin"), *box)
    assert remote == local
    assert remote == expect[5:45, 7:57, 9:70].astype("<u8").tobytes()


def test_v3_cases_over_http(web, data, tmp_path):
    """Every sharded case of tests/v3/shard_writer.py (index at the start or
    the end, crc32c, nested shards, absent inner chunks …) read over HTTP
    gives the data the writer put in."""
    for case in data["v3cases"]:
        if case["expect"] != "read":
            continue
        remote, _ = read(web.url + "/v3cases/" + case["path"], str(tmp_path / "r.bin"))
        with open(os.path.join(data["root"], "v3cases", case["data"]), "rb") as f:
            assert remote == f.read(), case["name"]


def test_layout_of_both_kinds_is_refused(web, data):
    # Only chunk 0 is stored both ways. Chunks found before the layout is
    # settled are checked under the other key too: with one request at a
    # time, chunk 0 is the first found, whatever the load on the machine
    # (with concurrent requests another chunk may arrive first and settle it).
    rc, _, err = run([LBIO, "read", web.url + "/" + data["zarr2_mixed_nosep"], "/dev/null"],
                     env=servers.env(LB_HTTP_CONCURRENCY=1))
    assert rc == 1, err
    assert "both as flat keys and in nested directories" in err
    assert web.url + "/mixed.zarr/labels/nosep" in err


def test_https_needs_its_ca(tls, data, tmp_path):
    url = tls.url + "/" + data["zarr2"]
    local, _ = read(os.path.join(data["root"], data["zarr2"]), str(tmp_path / "l.bin"))
    rc, _, err = run([LABELBIN, "info", url])
    assert rc == 1
    assert err.startswith("labelbin: " + url)
    assert "certificate" in err and "LB_CA_BUNDLE" in err
    for var in ("LB_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        remote, _ = read(url, str(tmp_path / "r.bin"), env=servers.env(**{var: tls.ca}))
        assert remote == local, var
    # A CA file that does not exist is an error too, naming the URL.
    rc, _, err = run([LABELBIN, "info", url],
                     env=servers.env(LB_CA_BUNDLE=str(tmp_path / "nope.pem")))
    assert rc == 1 and url in err


def test_https_binarize(tls, data, tmp_path):
    env = servers.env(LB_CA_BUNDLE=tls.ca)
    a, b = str(tmp_path / "r.zarr" / "gt"), str(tmp_path / "l.zarr" / "gt")
    rc, _, err = run([LABELBIN, "binarize", "-q", tls.url + "/" + data["zarr3_sharded"], a,
                      *GROUPS], env=env)
    assert rc == 0, err
    rc, _, err = run([LABELBIN, "binarize", "-q",
                      os.path.join(data["root"], data["zarr3_sharded"]), b, *GROUPS])
    assert rc == 0, err
    datasets.assert_same_output(a, b)


def test_info_same_as_local(web, data):
    for name in ("zarr2", "n5", "zarr3_sharded"):
        path = data[name]
        rc, remote, err = run([LABELBIN, "info", web.url + "/" + path])
        assert rc == 0, err
        rc, local, err = run([LABELBIN, "info", os.path.join(data["root"], path)])
        assert rc == 0, err
        strip = [ln for ln in remote.splitlines() if not ln.startswith("path:")]
        assert strip == [ln for ln in local.splitlines() if not ln.startswith("path:")]
        assert "path:         " + web.url + "/" + path in remote


@pytest.mark.parametrize("name", ["zarr2", "zarr2_nested_nosep", "n5", "zarr3_sharded"])
def test_binarize_and_mask_from_url(web, data, name, tmp_path):
    src_r = web.url + "/" + data[name]
    src_l = os.path.join(data["root"], data[name])
    for kind in ("binarize", "mask"):
        a = str(tmp_path / ("r-" + kind + ".zarr") / "out")
        b = str(tmp_path / ("l-" + kind + ".zarr") / "out")
        rc, _, err = run([LABELBIN, kind, "-q", "-j2", src_r, a, *GROUPS])
        assert rc == 0, err
        rc, _, err = run([LABELBIN, kind, "-q", "-j2", src_l, b, *GROUPS])
        assert rc == 0, err
        datasets.assert_same_output(a, b)
        with open(os.path.join(a, ".zattrs")) as f:
            assert json.load(f)["labelbin"]["source"] == src_r


def test_metadata_fetched_once(web, data, tmp_path):
    """Opening asks for each metadata document once (absent ones included),
    however many layers above read it."""
    for name in ("zarr2", "n5", "zarr3_sharded"):
        web.clear_log()
        rc, _, err = run([LABELBIN, "binarize", "-q", "-j2", web.url + "/" + data[name],
                          str(tmp_path / (name + ".zarr") / "gt"), *GROUPS])
        assert rc == 0, err
        seen = {}
        for method, path, rng, status, _ in web.log():
            key = (method, path, rng)
            seen[key] = seen.get(key, 0) + 1
        again = {k: n for k, n in seen.items() if n > 1}
        assert not again, again
        meta = [p for m, p, r, s, _ in web.log()
                if p.rsplit("/", 1)[-1] in (".zarray", ".zattrs", ".zgroup", "zarr.json",
                                            "attributes.json")]
        assert meta and len(meta) == len(set(meta))


def test_sharded_reads_fetch_index_and_needed_chunks(web, data, tmp_path):
    """A box of a sharded array: each shard it touches costs one suffix
    request (its index) and one range request per stored inner chunk it
    needs; no shard is fetched whole."""
    path = data["zarr3_sharded"]
    web.clear_log()
    # z 0:16 (inner chunk row 0 of shard row 0), y 40:60, x 0:96
    read(web.url + "/" + path, str(tmp_path / "r.bin"), "--start", "0,40,0", "--count",
         "16,20,96")
    shard_reqs = [(p, r) for m, p, r, s, _ in web.log() if "/c/" in p]
    assert shard_reqs and all(r.startswith("bytes=") for _, r in shard_reqs)
    suffix = [p for p, r in shard_reqs if r.startswith("bytes=-")]
    # shards touched: z 0, y 1 (32:64), x 0..2 -> 3 shards, each index once
    assert sorted(suffix) == sorted(set(suffix))
    assert len(suffix) == 3
    inner = [(p, r) for p, r in shard_reqs if not r.startswith("bytes=-")]
    # inner chunks touched: z 0, y 2..3 (32:48, 48:64), x 0..5 -> at most 12
    assert len(inner) <= 12 and len(set(inner)) == len(inner)
    labels = data["labels"]
    with open(tmp_path / "r.bin", "rb") as f:
        assert f.read() == labels[0:16, 40:60, 0:96].astype("<u8").tobytes()


def test_python_zarrarray_url(web, data, monkeypatch):
    import labelbin
    for k, v in servers.env().items():
        monkeypatch.setenv(k, v)
    for name in ("zarr2", "n5", "zarr3_sharded"):
        url = web.url + "/" + data[name]
        a = labelbin.ZarrArray(url)
        local = labelbin.ZarrArray(os.path.join(data["root"], data[name]))
        assert a.path == url
        assert np.array_equal(a.to_ndarray(), local.to_ndarray())
        assert np.array_equal(a.to_ndarray(), data["labels"])
        a.set_threads(1)  # the caller's choice wins over the remote default
        assert np.array_equal(a[a.roi], local[local.roi])
        with pytest.raises(Exception) as e:
            labelbin.ZarrArray(url, mode="r+")
        assert "read-only" in str(e.value)
    # file_name as a URL and dataset apart, as DaCapo configs have them
    container = web.url + "/crop.zarr"
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt",
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "labels",
                                   "file_name": container,
                                   "dataset": "recon-1/labels/groundtruth/crop1/all"},
           "groupings": [["mito", [3, 4, 5]], ["cell", []]]}
    b = labelbin.from_config(cfg)
    cfg_l = json.loads(json.dumps(cfg))
    cfg_l["source_array_config"]["file_name"] = os.path.join(data["root"], "crop.zarr")
    bl = labelbin.from_config(cfg_l)
    assert np.array_equal(b.to_ndarray(), bl.to_ndarray())
    z = labelbin.ZarrArray(container, "recon-1/labels/groundtruth/crop1/all")
    assert z.file_name == container and z.path == container + \
        "/recon-1/labels/groundtruth/crop1/all"


def test_forked_reader(web, data, monkeypatch):
    """A child forked after reads (a DataLoader worker) reads right and
    leaves the parent's connections alone: both go on reading."""
    import labelbin
    for k, v in servers.env().items():
        monkeypatch.setenv(k, v)
    a = labelbin.ZarrArray(web.url + "/" + data["zarr3_sharded"])
    expect = data["labels"]
    assert np.array_equal(a.to_ndarray(), expect)  # connections now open
    pid = os.fork()
    if pid == 0:
        ok = all(np.array_equal(a.to_ndarray(), expect) for _ in range(3))
        os._exit(0 if ok else 3)
    ok = all(np.array_equal(a.to_ndarray(), expect) for _ in range(3))
    _, status = os.waitpid(pid, 0)
    assert ok and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_run_config_with_url(web, data, tmp_path):
    """`labelbin run` with a config whose file_name is a URL: not joined
    with the working directory."""
    src = {"__type__": "ZarrArrayConfig", "name": "labels", "file_name": web.url + "/crop.n5",
           "dataset": "labels/all"}
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt", "source_array_config": src,
           "groupings": [["mito", [3, 4, 5]], ["cell", []]]}
    (tmp_path / "r.json").write_text(json.dumps(cfg))
    src["file_name"] = os.path.join(data["root"], "crop.n5")
    (tmp_path / "l.json").write_text(json.dumps(cfg))
    a, b = str(tmp_path / "r.zarr" / "gt"), str(tmp_path / "l.zarr" / "gt")
    rc, _, err = run([LABELBIN, "run", "-q", "r.json", a], cwd=str(tmp_path))
    assert rc == 0, err
    rc, _, err = run([LABELBIN, "run", "-q", "l.json", b], cwd=str(tmp_path))
    assert rc == 0, err
    datasets.assert_same_output(a, b)


def test_binarize_to_url_is_a_usage_error(web, data, tmp_path):
    dest = web.url + "/out.zarr/gt"
    rc, _, err = run([LABELBIN, "binarize", os.path.join(data["root"], data["zarr2"]), dest,
                      *GROUPS])
    assert rc == 2
    assert err.startswith("labelbin: " + dest + ": ") and "read-only" in err
    assert not os.path.exists(os.path.join(data["root"], "out.zarr"))


def test_missing_dataset_names_the_url(web):
    url = web.url + "/nothing.zarr/labels/all"
    rc, _, err = run([LABELBIN, "info", url])
    assert rc == 1 and err.startswith("labelbin: " + url)


def test_unreachable_server_fails_naming_the_url():
    port = servers.free_port()  # nothing listens there
    url = "http://127.0.0.1:%d/crop.zarr/labels/all" % port
    rc, _, err = run([LABELBIN, "info", url])
    assert rc == 1
    assert url + "/.zarray" in err and "gave up after 4 attempts" in err


def test_credentials_never_shown(web, data, tmp_path):
    host = web.url.split("://", 1)[1]
    secret_url = "http://lbuser:hunter2@%s/%s?token=s3cr3t" % (host, data["zarr2"])
    clean = "http://%s/%s" % (host, data["zarr2"])
    dest = str(tmp_path / "o.zarr" / "gt")
    # -v echoes SOURCE, LB_VERBOSE=2 logs every request: both without credentials
    rc, _, err = run([LABELBIN, "binarize", "-v", secret_url, dest, *GROUPS],
                     env=servers.env(LB_VERBOSE=2))
    assert rc == 0, err
    assert "hunter2" not in err and "s3cr3t" not in err and "lbuser" not in err
    assert "labelbin: GET " + clean + "/.zarray" in err
    with open(os.path.join(dest, ".zattrs")) as f:
        text = f.read()
    assert "hunter2" not in text and "s3cr3t" not in text
    assert json.loads(text)["labelbin"]["source"] == clean
    # and in failures
    bad = "http://lbuser:hunter2@%s/nothing.zarr/x?token=s3cr3t" % host
    for args in (["info", bad], ["binarize", bad, str(tmp_path / "p.zarr" / "gt"), *GROUPS]):
        rc, out, err = run([LABELBIN, *args])
        assert rc == 1
        assert "hunter2" not in err + out and "s3cr3t" not in err + out
        assert "http://%s/nothing.zarr/x" % host in err


def test_redirects(web, data, tmp_path):
    local, _ = read(os.path.join(data["root"], data["zarr2"]), str(tmp_path / "l.bin"))
    remote, _ = read(web.url + "/moved/" + data["zarr2"], str(tmp_path / "r.bin"))
    assert remote == local
    rc, _, err = run([LABELBIN, "info", web.url + "/loop/x.zarr/a"])
    assert rc == 1 and "redirects" in err and web.url + "/loop/x.zarr/a" in err
    rc, _, err = run([LABELBIN, "info", web.url + "/moved/" + data["zarr2"]],
                     env=servers.env(LB_HTTP_MAX_REDIRECTS=0))
    assert rc == 1 and "/moved/" in err


def test_verbose_shows_every_request(web, data):
    web.clear_log()
    rc, _, err = run([LABELBIN, "info", web.url + "/" + data["zarr2_nested_nosep"]],
                     env=servers.env(LB_VERBOSE=2))
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("labelbin: GET ")
             or ln.startswith("labelbin: HEAD ")]
    assert len(lines) == len(web.log()) > 0
    assert any(" -> 404" in ln for ln in lines) and any(" -> 200" in ln for ln in lines)


def test_settings_are_checked(web, data):
    url = web.url + "/" + data["zarr2"]
    for var, val in (("LB_HTTP_RETRIES", "many"), ("LB_HTTP_STALL_TIMEOUT", "0"),
                     ("LB_HTTP_CONCURRENCY", "0"), ("LB_HTTP_BACKOFF", "-1")):
        rc, _, err = run([LABELBIN, "info", url], env=servers.env(**{var: val}))
        assert rc != 0 and "%s=%s" % (var, val) in err, (var, err)


def test_unsupported_scheme(tmp_path):
    rc, _, err = run([LABELBIN, "info", "ftp://127.0.0.1/crop.zarr/a"])
    assert rc != 0 and "ftp://" in err and "https://" in err
