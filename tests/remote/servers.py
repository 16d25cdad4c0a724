"""Real servers on loopback for the remote-store tests and the latency
benchmark, started and stopped by them:

- Nginx: Debian's nginx as a child process (no daemon, a generated config
  in a temporary folder, a free port), serving a folder over HTTP or HTTPS
  with a self-signed certificate (make_cert, openssl); its access log says
  which requests came (method, path, Range, status, bytes).
- S3rver: the npm package s3rver (installed into BUILD/node-remote by
  scripts/install-test-servers), an S3 API server; objects are uploaded
  with signed PUTs (sigv4.py). s3rver 3.7 does not check V4 signatures, so
  the tests put faultproxy.FaultProxy(verify=…) in front of it, which
  rejects a signature that does not match as S3 does (sigv4.verify: written
  from the AWS documentation, independent of libcurl).
- env(): the environment the remote tests run labelbin in: short timeouts
  and backoff (LB_HTTP_*), no proxies, no AWS settings but those asked for.

Nothing here listens beyond 127.0.0.1.
"""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

import sigv4

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))

# Short waits so that the fault cases stay quick; documented in docs/remote.md.
TEST_ENV = {
    "LB_HTTP_RETRIES": "3",
    "LB_HTTP_BACKOFF": "0.01",
    "LB_HTTP_BACKOFF_MAX": "0.1",
    "LB_HTTP_STALL_TIMEOUT": "1",
    "LB_HTTP_CONNECT_TIMEOUT": "2",
}


def env(**extra):
    """os.environ for a remote test: LB_HTTP_* short, loopback never proxied,
    no AWS_* or CA variables unless given in `extra` (None removes)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "https_proxy",
                                                           "all_proxy")
         and k not in ("LB_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
                       "LB_VERBOSE", "LB_S3_ADDRESSING", "LB_HTTP_CONCURRENCY")}
    e.update(TEST_ENV)
    e["NO_PROXY"] = e["no_proxy"] = "127.0.0.1,localhost"
    for k, v in extra.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what, timeout=20):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on port %d" % (what, port))


def make_cert(folder, name="127.0.0.1"):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + name, "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def world_readable(root):
    """nginx's workers run as `nobody` when the tests run as root."""
    for d, dirs, files in os.walk(root):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)


class _Server:
    """A server process of the tests with a scratch folder `dir`: stop()
    ends the process, close() also removes the folder; a context manager."""
    proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class Nginx(_Server):
    """nginx serving `root` on a free port (HTTPS with `cert`/`key`).
    `extra` is more server-block configuration (redirects …)."""

    def __init__(self, root, cert=None, key=None, extra=""):
        self.root = os.path.abspath(root)
        self.cert, self.key, self.extra = cert, key, extra
        self.dir = tempfile.mkdtemp(prefix="lb-nginx-")
        self.proc = None

    def start(self):
        if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
            raise RuntimeError("nginx is not installed (scripts/install-deps installs it)")
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        world_readable(self.root)
        os.chmod(self.dir, 0o755)
        for attempt in range(5):
            self.port = free_port()
            scheme = "https" if self.cert else "http"
            self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
            self.access_log = os.path.join(self.dir, "access.log")
            user = "user nobody nogroup;" if os.geteuid() == 0 else ""
            tls = ("ssl_certificate %s; ssl_certificate_key %s;" % (self.cert, self.key)
                   if self.cert else "")
            t = self.dir
            conf = f"""
{user}
worker_processes 1;
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 256; }}
http {{
    types {{ }}
    default_type application/octet-stream;
    log_format lb '$request_method $uri "$http_range" $status $body_bytes_sent';
    access_log {t}/access.log lb;
    client_body_temp_path {t}/client;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{self.port}{" ssl" if self.cert else ""};
        {tls}
        root {self.root};
        {self.extra}
    }}
}}
"""
            with open(os.path.join(t, "nginx.conf"), "w") as f:
                f.write(conf)
            self.proc = subprocess.Popen(
                [exe, "-p", t, "-c", os.path.join(t, "nginx.conf"), "-e",
                 os.path.join(t, "error.log"), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                wait_listening(self.port, self.proc, "nginx")
                return self
            except RuntimeError:
                err = self.proc.stderr.read().decode(errors="replace") \
                    if self.proc.poll() is not None else ""
                self.stop()
                if attempt == 4 or "Address already in use" not in err:
                    raise RuntimeError("nginx did not start: " + err)
        return self

    def log(self):
        """Requests so far: (method, path, range, status, bytes). nginx writes
        a request's line just after sending its response, so a client that
        has exited may be a line ahead of the file: wait until the file has
        not grown for 0.1 s (at most 5 s)."""
        out = []
        if not os.path.exists(self.access_log):
            return out
        size, deadline = -1, time.monotonic() + 5
        while time.monotonic() < deadline:
            now = os.path.getsize(self.access_log)
            if now == size:
                break
            size = now
            time.sleep(0.1)
        with open(self.access_log) as f:
            for line in f:
                m, path, rest = line.split(" ", 2)
                rng, rest = rest[1:].split('" ', 1)
                status, nbytes = rest.split()
                out.append((m, path, "" if rng == "-" else rng, int(status), int(nbytes)))
        return out

    def clear_log(self):
        # nginx keeps the file open: truncate it in place.
        if os.path.exists(self.access_log):
            with open(self.access_log, "r+") as f:
                f.truncate(0)


# ---- S3 ---------------------------------------------------------------------

S3_KEY, S3_SECRET = "S3RVER", "S3RVER"  # s3rver's built-in account


def s3rver_path():
    p = os.path.join(BUILD, "node-remote", "node_modules", "s3rver", "bin", "s3rver.js")
    return p if os.path.isfile(p) and shutil.which("node") else None


class S3rver(_Server):
    """s3rver on a free port with bucket `bucket` (path-style and
    virtual-hosted access under *.localhost)."""

    def __init__(self, bucket="lb-test"):
        self.bucket = bucket
        self.dir = tempfile.mkdtemp(prefix="lb-s3rver-")
        self.proc = None

    def start(self):
        js = s3rver_path()
        if not js:
            raise RuntimeError("s3rver is not installed")
        for attempt in range(5):
            self.port = free_port()
            self.endpoint = "http://127.0.0.1:%d" % self.port
            self.proc = subprocess.Popen(
                ["node", js, "-d", os.path.join(self.dir, "data"), "-a", "127.0.0.1", "-p",
                 str(self.port), "--silent", "--service-endpoint", "localhost",
                 "--configure-bucket", self.bucket],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                wait_listening(self.port, self.proc, "s3rver")
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                return self
            except RuntimeError:
                self.stop()
                if attempt == 4:
                    raise
        return self

    def put(self, key, data, region="us-east-1"):
        path = "/%s/%s" % (self.bucket, key)
        host = "127.0.0.1:%d" % self.port
        h = sigv4.sign("PUT", host, path, data, region, S3_KEY, S3_SECRET)
        h["Content-Length"] = str(len(data))
        self.conn.request("PUT", urllib.parse.quote(path, safe="/-_.~"), body=data, headers=h)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("PUT %s: %d %s" % (key, r.status, body[:300]))

    def upload_tree(self, local, prefix):
        """Every file under `local` as prefix/<relative path>."""
        n = 0
        for d, _, files in os.walk(local):
            for f in files:
                p = os.path.join(d, f)
                rel = os.path.relpath(p, local).replace(os.sep, "/")
                with open(p, "rb") as fh:
                    self.put(prefix.rstrip("/") + "/" + rel, fh.read())
                n += 1
        return n

    def stop(self):
        if getattr(self, "conn", None):
            self.conn.close()
        super().stop()
