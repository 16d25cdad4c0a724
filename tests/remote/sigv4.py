"""AWS Signature Version 4 for S3, written from the AWS documentation
("Signature Version 4 signing process", "Authenticating Requests: Using the
Authorization Header"), independent of libcurl's implementation: sign()
makes the headers of a signed request (the tests upload with it), verify()
checks a request as S3 does (the tests' S3 endpoint rejects a signature
that does not match with 403 SignatureDoesNotMatch).
"""
import datetime
import hashlib
import hmac
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _uri(path):
    """The canonical URI: each byte but the unreserved ones and '/'
    percent-encoded (once: a path as sent is decoded first)."""
    return urllib.parse.quote(urllib.parse.unquote(path), safe="/-_.~")


def _query(query):
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    enc = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                 for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in enc)


def _signature(secret, day, region, service, to_sign):
    k = _hmac(("AWS4" + secret).encode(), day)
    k = _hmac(_hmac(_hmac(k, region), service), "aws4_request")
    return hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical(method, path, query, headers, names, payload_hash):
    return "\n".join([
        method, _uri(path), _query(query),
        "".join("%s:%s\n" % (n, " ".join(headers.get(n, "").split())) for n in names),
        ";".join(names), payload_hash])


def sign(method, host, path, payload, region, access, secret, token=None, now=None):
    """The headers (Authorization, x-amz-date, x-amz-content-sha256 and the
    token's) of a signed S3 request without a query string."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amzdate = now.strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(payload).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amzdate}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    scope = "%s/%s/s3/aws4_request" % (amzdate[:8], region)
    creq = _canonical(method, path, "", headers, names, payload_hash)
    to_sign = "\n".join([ALGORITHM, amzdate, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
    sig = _signature(secret, amzdate[:8], region, "s3", to_sign)
    headers["Authorization"] = "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        ALGORITHM, access, scope, ";".join(names), sig)
    del headers["host"]
    return headers


def verify(method, raw_path, headers, payload, secrets):
    """Check a request's Authorization header. `headers`: name -> value
    (any case); `secrets`: access key id -> secret. Returns (None, info) when
    the signature matches, else (S3 error code, message). info holds the
    access key, the region and the signed header names."""
    h = {k.lower(): v for k, v in headers.items()}
    auth = h.get("authorization", "")
    if not auth.startswith(ALGORITHM + " "):
        return "AccessDenied", "not a SigV4 request"
    fields = {}
    for part in auth[len(ALGORITHM) + 1:].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        access, day, region, service, term = fields["Credential"].split("/")
        names = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
    except (KeyError, ValueError):
        return "AuthorizationHeaderMalformed", "malformed Authorization header"
    if access not in secrets:
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist"
    if service != "s3" or term != "aws4_request" or "host" not in names:
        return "AuthorizationHeaderMalformed", "bad credential scope or signed headers"
    amzdate = h.get("x-amz-date", "")
    if amzdate[:8] != day:
        return "SignatureDoesNotMatch", "x-amz-date does not match the credential scope"
    payload_hash = h.get("x-amz-content-sha256")
    if payload_hash is None:
        return "InvalidRequest", "Missing required header: x-amz-content-sha256"
    if payload_hash != "UNSIGNED-PAYLOAD" and \
            payload_hash != hashlib.sha256(payload or b"").hexdigest():
        return "XAmzContentSHA256Mismatch", "the payload's hash does not match"
    for n in names:
        if n not in h:
            return "SignatureDoesNotMatch", "signed header %s is missing" % n
    path, _, query = raw_path.partition("?")
    creq = _canonical(method, path, query, h, names, payload_hash)
    scope = "%s/%s/%s/%s" % (day, region, service, term)
    to_sign = "\n".join([ALGORITHM, amzdate, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
    want = _signature(secrets[access], day, region, service, to_sign)
    if not hmac.compare_digest(want, given):
        return "SignatureDoesNotMatch", ("The request signature we calculated does not match "
                                         "the signature you provided")
    return None, {"access": access, "region": region, "signed": names}
