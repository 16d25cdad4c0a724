"""s3:// stores against an S3 API server on loopback: s3rver (npm, from the
build tree) behind a gate of the test suite that checks SigV4 signatures
as S3 does (tests/remote/sigv4.py, written from the AWS documentation;
s3rver 3.7 does not check V4 signatures itself). Anonymous and signed
reads (session token, region), path-style and virtual-hosted addressing,
AWS_ENDPOINT_URL, a wrong secret, a private bucket, S3's 403 for a missing
key on anonymous access; every read compared byte for byte with the same
dataset on disk.

Skipped, saying why, when s3rver is not installed (scripts/install-deps
installs it with npm when the registry can be reached).
Run: /usr/bin/python3 -m pytest -q tests/py_remote_s3.py
"""
import json
import os
import re
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

pytestmark = pytest.mark.skipif(
    servers.s3rver_path() is None,
    reason="s3rver (npm) is not installed in %s/node-remote: scripts/install-test-servers "
    "could not install it (no node/npm, or no access to the npm registry)" % BUILD)

BUCKET = "lb-test"
KEYS = {"AWS_ACCESS_KEY_ID": servers.S3_KEY, "AWS_SECRET_ACCESS_KEY": servers.S3_SECRET}
NAMES = ["zarr2", "n5", "zarr3_sharded"]


def run(args, env, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def s3url(data, name):
    return "s3://%s/data/%s" % (BUCKET, data[name])


@pytest.fixture(scope="module")
def data():
    root = tempfile.mkdtemp(prefix="lb-remote-data-")
    try:
        d = datasets.make(root, v3cases=False)
        d["root"] = root
        for name in NAMES:
            out = os.path.join(root, name + ".bin")
            rc, _, err = run([LBIO, "read", os.path.join(root, d[name]), out], servers.env())
            assert rc == 0, err
            with open(out, "rb") as f:
                d["bytes_" + name] = f.read()
        yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def s3(data):
    with servers.S3rver(BUCKET) as s:
        for top in ("crop.zarr", "crop.n5", "sharded.zarr"):
            s.upload_tree(os.path.join(data["root"], top), "data/" + top)
        yield s


@pytest.fixture()
def gate(s3):
    """The S3 endpoint the tests use: signatures checked, suffix ranges
    answered as S3 does, then s3rver."""
    with FaultProxy(s3.endpoint, verify={servers.S3_KEY: servers.S3_SECRET},
                    fix_suffix=True) as g:
        yield g


def test_wrong_suffix_answer_is_refused(s3, data, tmp_path):
    """s3rver itself answers a suffix range (the shard index) with the
    object's first bytes: refused, never decoded."""
    url = s3url(data, "zarr3_sharded")
    rc, _, err = run([LBIO, "read", url, str(tmp_path / "r.bin")],
                     servers.env(AWS_ENDPOINT_URL=s3.endpoint))
    assert rc == 1
    assert re.search(re.escape(url) + r"/c/\d/\d/\d: asked for bytes=-132, the server "
                     r"sent more \(Content-Range: bytes 0-132/\d+\)", err), err
    assert "gave up after 4 attempts" in err


def read_s3(url, out, env):
    rc, _, err = run([LBIO, "read", url, out], env)
    assert rc == 0, err
    with open(out, "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", NAMES)
def test_anonymous_path_style(gate, data, name, tmp_path):
    env = servers.env(AWS_ENDPOINT_URL=gate.url)
    assert read_s3(s3url(data, name), str(tmp_path / "r.bin"), env) == data["bytes_" + name]
    assert gate.signed is None  # nothing was signed
    paths = [p for _, p, _, _, _ in gate.requests()]
    assert paths and all(p.startswith("/%s/data/" % BUCKET) for p in paths)


def test_virtual_hosted(gate, data, tmp_path):
    # bucket.s3.localhost: curl resolves *.localhost to the loopback
    env = servers.env(AWS_ENDPOINT_URL="http://s3.localhost:%d" % gate.port,
                      LB_S3_ADDRESSING="virtual", **KEYS)
    name = "zarr3_sharded"
    assert read_s3(s3url(data, name), str(tmp_path / "r.bin"), env) == data["bytes_" + name]
    paths = [p for _, p, _, _, _ in gate.requests()]
    assert paths and all(p.startswith("/data/") for p in paths)
    assert gate.signed and gate.signed["access"] == servers.S3_KEY


@pytest.mark.parametrize("name", NAMES)
def test_signed(gate, data, name, tmp_path):
    env = servers.env(AWS_ENDPOINT_URL=gate.url, **KEYS)
    assert read_s3(s3url(data, name), str(tmp_path / "r.bin"), env) == data["bytes_" + name]
    assert gate.signed["access"] == servers.S3_KEY
    assert gate.signed["region"] == "us-east-1"  # the default
    assert "x-amz-content-sha256" in gate.signed["signed"]
    assert "x-amz-date" in gate.signed["signed"] and "host" in gate.signed["signed"]


def test_region_and_session_token(gate, data, tmp_path):
    name = "zarr2"
    for extra, region in (({"AWS_DEFAULT_REGION": "eu-west-2"}, "eu-west-2"),
                          ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-2"},
                           "ap-south-1")):
        env = servers.env(AWS_ENDPOINT_URL=gate.url, AWS_SESSION_TOKEN="tok-123", **KEYS,
                          **extra)
        assert read_s3(s3url(data, name), str(tmp_path / "r.bin"), env) == \
            data["bytes_" + name]
        assert gate.signed["region"] == region
        assert "x-amz-security-token" in gate.signed["signed"]


def test_no_sign_request(gate, data, tmp_path):
    env = servers.env(AWS_ENDPOINT_URL=gate.url, AWS_NO_SIGN_REQUEST="true", **KEYS)
    name = "n5"
    assert read_s3(s3url(data, name), str(tmp_path / "r.bin"), env) == data["bytes_" + name]
    assert gate.signed is None


def test_wrong_secret_fails_without_showing_it(gate, data):
    env = servers.env(AWS_ENDPOINT_URL=gate.url, AWS_ACCESS_KEY_ID=servers.S3_KEY,
                      AWS_SECRET_ACCESS_KEY="not-the-secret-x9")
    url = s3url(data, "zarr2")
    rc, out, err = run([LABELBIN, "info", url], env)
    assert rc == 1
    assert err.startswith("labelbin: " + url + "/.zarray: HTTP 403")
    assert "SignatureDoesNotMatch" in err and "AWS_SECRET_ACCESS_KEY" in err
    assert "not-the-secret-x9" not in err + out
    # the same with the secret shown nowhere in a verbose run either
    rc, out, err = run([LABELBIN, "info", url], dict(env, LB_VERBOSE="1"))
    assert rc == 1 and "not-the-secret-x9" not in err + out


def test_private_bucket(s3, data, tmp_path):
    with FaultProxy(s3.endpoint, verify={servers.S3_KEY: servers.S3_SECRET},
                    private=True, fix_suffix=True) as g:
        url = s3url(data, "zarr2")
        rc, _, err = run([LABELBIN, "info", url], servers.env(AWS_ENDPOINT_URL=g.url))
        assert rc == 1 and url in err  # anonymous: nothing there to read
        env = servers.env(AWS_ENDPOINT_URL=g.url, **KEYS)
        assert read_s3(url, str(tmp_path / "r.bin"), env) == data["bytes_zarr2"]


ACCESS_DENIED = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                 '<Message>Access Denied</Message></Error>')


def test_anonymous_403_for_a_missing_key(gate, data, tmp_path):
    """S3 answers 403 AccessDenied for a key that does not exist when the
    caller may not list the bucket: anonymously, that is absence (the
    chunk reads as the fill value); signed, it is an error."""
    gate.add("/all/0.1.2", action="status", code=403, body=ACCESS_DENIED,
             headers={"Content-Type": "application/xml"})
    url = s3url(data, "zarr2")
    out = read_s3(url, str(tmp_path / "r.bin"), servers.env(AWS_ENDPOINT_URL=gate.url))
    expect = data["labels"].copy()
    expect[0:32, 32:64, 64:96] = 0  # chunk 0.1.2
    assert out == expect.astype("<u8").tobytes()
    rc, _, err = run([LBIO, "read", url, str(tmp_path / "s.bin")],
                     servers.env(AWS_ENDPOINT_URL=gate.url, **KEYS))
    assert rc == 1 and url + "/0.1.2: HTTP 403 (Forbidden: AccessDenied" in err


def test_other_403_is_an_error(gate, data, tmp_path):
    gate.add("/all/0.1.2", action="status", code=403,
             body=ACCESS_DENIED.replace("AccessDenied", "RequestTimeTooSkewed"))
    url = s3url(data, "zarr2")
    rc, _, err = run([LBIO, "read", url, str(tmp_path / "r.bin")],
                     servers.env(AWS_ENDPOINT_URL=gate.url))
    assert rc == 1 and "RequestTimeTooSkewed" in err and url + "/0.1.2" in err


def test_s3_faults_are_retried(gate, data, tmp_path):
    gate.add("/c/0/1/1", action="status", code=503, times=2,
             body=ACCESS_DENIED.replace("AccessDenied", "SlowDown"))
    gate.add("/c/1/0/1", action="reset", times=1)
    env = servers.env(AWS_ENDPOINT_URL=gate.url, **KEYS)
    name = "zarr3_sharded"
    assert read_s3(s3url(data, name), str(tmp_path / "r.bin"), env) == data["bytes_" + name]
    gate.add("/c/0/1/1", action="status", code=503,
             body=ACCESS_DENIED.replace("AccessDenied", "SlowDown"))
    rc, _, err = run([LBIO, "read", s3url(data, name), str(tmp_path / "s.bin")], env)
    assert rc == 1 and "HTTP 503 (Service Unavailable: SlowDown" in err
    assert s3url(data, name) + "/c/0/1/1" in err


def test_binarize_and_python(gate, data, tmp_path, monkeypatch):
    env = servers.env(AWS_ENDPOINT_URL=gate.url, **KEYS)
    a, b = str(tmp_path / "r.zarr" / "gt"), str(tmp_path / "l.zarr" / "gt")
    groups = ["-g", "mito=3,4,5", "-g", "cell="]
    rc, _, err = run([LABELBIN, "binarize", "-q", s3url(data, "zarr3_sharded"), a, *groups],
                     env)
    assert rc == 0, err
    rc, _, err = run([LABELBIN, "binarize", "-q",
                      os.path.join(data["root"], data["zarr3_sharded"]), b, *groups], env)
    assert rc == 0, err
    datasets.assert_same_output(a, b)
    with open(os.path.join(a, ".zattrs")) as f:
        assert json.load(f)["labelbin"]["source"] == s3url(data, "zarr3_sharded")
    import labelbin
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    z = labelbin.ZarrArray(s3url(data, "n5"))
    assert np.array_equal(z.to_ndarray(), data["labels"])


def test_bad_s3_urls():
    env = servers.env()
    for url, says in (("s3://", "names no bucket"),
                      ("s3://user:pw9@bucket/x.zarr/a", "credentials do not belong"),
                      ("s3://bucket/x.zarr/a?versionId=3", "no query string"),
                      ("s3://bad%bucket/x", "not an S3 bucket name")):
        rc, out, err = run([LABELBIN, "info", url], env)
        assert rc != 0 and says in err, (url, err)
        assert "pw9" not in err + out
