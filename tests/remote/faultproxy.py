"""A small HTTP proxy on loopback that injects faults and latency.

It sits in front of a real server (nginx, s3rver) and forwards requests
unchanged (the Host header too, so that SigV4 signatures made for the
proxy's address still verify), except where a rule says otherwise. The
remote-store tests use it to check that every failure either gives the
right bytes after retries or fails naming the URL, never a silent fill; the
latency benchmark uses it to add a fixed delay to every request.

Rules (FaultProxy.add): a substring of the request path, an action and how
many times to apply it (None = always). Actions:

  status      answer `code` with `headers` and `body` (a 500, a 503 with
              Retry-After, a 403 with S3's AccessDenied XML …)
  reset       send the upstream's headers and part of the body, then reset
              the connection (RST)
  truncate    send the headers with the full Content-Length, part of the
              body, then close cleanly
  stall       wait `seconds` before answering (beyond the client's timeout)
  stall_body  send the headers and part of the body, then wait `seconds`
  html        answer 200 with an HTML error page (text/html)
  bad_range   answer a range request with a Content-Range shifted by one
  ignore_range  answer a range request with 200 and the whole object

Every request is counted (path, method, Range header, status, bytes sent).

fix_suffix=True answers suffix ranges (bytes=-n) as S3 does for an
upstream that gets them wrong (s3rver 3.7 sends bytes 0-n).

With verify={access key: secret} the proxy checks the SigV4 signature of
every signed request (sigv4.verify) and answers 403 with S3's error XML
when it does not match; with private=True unsigned requests get 403
AccessDenied too (a private bucket). The signed header names of the last
verified request are kept in `signed`.

Command line (for the benchmark):
  faultproxy.py --upstream http://127.0.0.1:PORT [--latency-ms 20] [--port 0]
prints "port N" on stdout once it listens, and runs until terminated.
"""
import argparse
import http.client
import http.server
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

import sigv4

HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
               "trailer", "upgrade"}


class Rule:
    def __init__(self, match, action, times=None, **kw):
        self.match = match
        self.action = action
        self.left = times
        self.kw = kw
        self.hits = 0


class FaultProxy:
    def __init__(self, upstream, latency_ms=0, port=0, verify=None, private=False,
                 fix_suffix=False):
        u = urllib.parse.urlsplit(upstream)
        self.verify, self.private, self.signed = verify, private, None
        self.fix_suffix = fix_suffix
        self.up_host, self.up_port = u.hostname, u.port or 80
        self.latency = latency_ms / 1000.0
        self.rules = []
        self.log = []  # (method, path, range, status, bytes)
        self.lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = _Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = None

    # -- rules and the request log ---------------------------------------
    def add(self, match, action, times=None, **kw):
        r = Rule(match, action, times, **kw)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        with self.lock:
            self.rules = []
            self.log = []

    def take_rule(self, path):
        with self.lock:
            for r in self.rules:
                if r.match in path and (r.left is None or r.left > 0):
                    if r.left is not None:
                        r.left -= 1
                    r.hits += 1
                    return r
        return None

    def record(self, entry):
        with self.lock:
            self.log.append(entry)

    def requests(self):
        with self.lock:
            return list(self.log)

    # -- running -----------------------------------------------------------
    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # a client that gave up on a stalled answer: expected here


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY each
    # answer would wait for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    owner = None

    def log_message(self, fmt, *args):  # quiet
        pass

    def _upstream(self):
        c = getattr(self, "_conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.owner.up_host, self.owner.up_port, timeout=60)
            self._conn = c
        return c

    def _forward(self):
        """The upstream's answer: (status, headers list, body bytes)."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        body = self._body
        rng = headers.get("Range", "")
        if self.owner.fix_suffix and rng.startswith("bytes=-"):
            # s3rver 3.7 answers "bytes=-n" with bytes 0-n: ask for the
            # explicit range S3 would have served.
            c = self._upstream()
            c.request("HEAD", self.path,
                      headers={k: v for k, v in headers.items() if k.lower() != "range"})
            r = c.getresponse()
            r.read()
            size = int(r.getheader("Content-Length") or 0)
            if r.status == 200 and size:
                n = int(rng[len("bytes=-"):])
                headers["Range"] = "bytes=%d-%d" % (max(0, size - n), size - 1)
        for attempt in range(2):
            c = self._upstream()
            try:
                c.request(self.command, self.path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                return r.status, [(k, v) for k, v in r.getheaders()
                                  if k.lower() not in HOP_HEADERS], data
            except (http.client.HTTPException, OSError):
                c.close()
                self._conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def _send(self, status, headers, body, head_only=False, length=None):
        self.send_response(status)
        seen_len = False
        for k, v in headers:
            if k.lower() == "content-length":
                seen_len = True
                v = str(length if length is not None else len(body))
            if k.lower() in ("date", "server"):
                continue
            self.send_header(k, v)
        if not seen_len:
            self.send_header("Content-Length", str(length if length is not None else len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)
        self.wfile.flush()

    def _s3_error(self, status, code, message):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                '<Message>%s</Message></Error>' % (code, message)).encode()
        self._send(status, [("Content-Type", "application/xml")], body,
                   self.command == "HEAD")
        self.owner.record((self.command, self.path, self.headers.get("Range", ""), status, 0))

    def _check_signature(self, body):
        """False (and the answer sent) when the request may not pass."""
        o = self.owner
        if "Authorization" not in self.headers:
            if o.private:
                self._s3_error(403, "AccessDenied", "Access Denied")
                return False
            return True
        code, info = sigv4.verify(self.command, self.path, dict(self.headers.items()),
                                  body, o.verify)
        if code:
            self._s3_error(403, code, info)
            return False
        with o.lock:
            o.signed = info
        return True

    def _handle(self):
        o = self.owner
        if o.latency:
            time.sleep(o.latency)
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else None
        if o.verify is not None and not self._check_signature(self._body):
            return
        rule = o.take_rule(self.path)
        rng = self.headers.get("Range", "")
        head = self.command == "HEAD"
        a = rule.action if rule else None
        kw = rule.kw if rule else {}
        if a == "status":
            body = kw.get("body", b"")
            if isinstance(body, str):
                body = body.encode()
            hdrs = list(kw.get("headers", {}).items())
            self._send(kw["code"], hdrs, body, head)
            o.record((self.command, self.path, rng, kw["code"], 0 if head else len(body)))
            return
        if a == "html":
            page = (b"<!DOCTYPE html><html><head><title>Error</title></head><body>"
                    b"<h1>Something went wrong</h1><p>Please try again later.</p></body></html>")
            self._send(200, [("Content-Type", "text/html; charset=utf-8")], page, head)
            o.record((self.command, self.path, rng, 200, len(page)))
            return
        if a == "stall":
            time.sleep(kw.get("seconds", 5))
        if a == "ignore_range":
            del self.headers["Range"]
        status, hdrs, body = self._forward()
        if a == "bad_range" and status == 206:
            # The same length at the wrong place: shifted by one byte.
            cr = dict((k.lower(), v) for k, v in hdrs).get("content-range", "")
            span, total = cr.split(" ", 1)[1].split("/")
            first, last = (int(x) for x in span.split("-"))
            d = 1 if total == "*" or last + 1 < int(total) else -1
            hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-range"]
            hdrs.append(("Content-Range", "bytes %d-%d/%s" % (first + d, last + d, total)))
        if a in ("reset", "truncate", "stall_body") and not head and len(body) > 1:
            part = body[:max(1, len(body) // 2)]
            self.send_response(status)
            for k, v in hdrs:
                if k.lower() not in ("date", "server"):
                    self.send_header(k, v)
            self.end_headers()
            self.wfile.write(part)
            self.wfile.flush()
            o.record((self.command, self.path, rng, status, len(part)))
            if a == "stall_body":
                time.sleep(kw.get("seconds", 5))
            if a == "reset":
                # Linger 0 and a close: the peer gets an RST, not a FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.wfile.close()
                self.rfile.close()
                self.connection.close()
            self.close_connection = True
            return
        self._send(status, hdrs, body, head)
        o.record((self.command, self.path, rng, status, 0 if head else len(body)))

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_PUT(self):
        self._handle()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    p = FaultProxy(args.upstream, args.latency_ms, args.port)
    print("port %d" % p.port, flush=True)
    try:
        p.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
