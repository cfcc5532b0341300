"""Check X-Sms-Sessions-Signature in your service: paste verify() in, pass it the raw body.

CLI (for the test suite): python3 verify.py SECRET HEADER METHOD TARGET BODY_FILE; exit 0 if valid.
"""
import hashlib, hmac, sys, time


def verify(secret, header, method, path_and_query, body, tolerance=300):
    """True when header ("t=<unix>,v1=<hex>") is HMAC-SHA256(secret, "<t>.<METHOD>.<path?query>.<body>")."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    t, given = fields.get("t", ""), fields.get("v1", "")
    if not (t.isascii() and t.isdigit()) or abs(time.time() - int(t)) > tolerance:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    signed = f"{t}.{method}.{path_and_query}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode())


if __name__ == "__main__":
    secret, header, method, target, body_file = sys.argv[1:6]
    with open(body_file, "rb") as f:
        sys.exit(0 if verify(secret, header, method, target, f.read()) else 1)
