#!/usr/bin/env python3
"""Connect to passerelle testbed endpoints with Python's ssl module and print
a verdict per connection in AIR's CertificateStatus vocabulary.

Usage: pyclient.py MANIFEST.json [address|sni_address ...]
       pyclient.py --verdict ADDRESS SERVER_NAME CA_FILE CERT_FILE KEY_FILE [CERT_FILE KEY_FILE ...]

For each endpoint of the manifest, and for each access (its own port,
"address", and/or the shared SNI port, "sni_address"), one JSON line:

  {"name": "expired", "via": "address", "status": "expired",
   "verify_code": 10, "detail": "certificate has expired"}

The --verdict form presents each client certificate (PEM, leaf then chain)
to a client-certificate endpoint and prints, one JSON line per certificate,
the server's verdict message, the first NUL-terminated frame:
  {"cert": "expired.crt", "frame": "<passerelle:client-certificate .../>"}

How a verdict is reached, like a careful client would:
  1. fetch the leaf without verifying, to read its CRL distribution points
     and AIA caIssuers URL (ssl._ssl._test_decode_cert, no third-party module);
  2. download the CRLs and verify with VERIFY_CRL_CHECK_LEAF;
  3. on "unable to get local issuer certificate" (20), fetch the issuer named
     by the AIA URL and verify again: success then means the server failed to
     send an intermediate, which is invalidChain;
  4. map ssl.SSLCertVerificationError.verify_code to the vocabulary.
"""
import base64
import json
import os
import socket
import ssl
import sys
import tempfile
import urllib.request

# Seconds to wait for a server; a server that never answers leaves "unknown".
TIMEOUT = float(os.environ.get("PYCLIENT_TIMEOUT", "10"))

# OpenSSL X509_V_* codes (openssl/x509_vfy.h) to AIR statuses; the same table
# as docs/testbed.md. Anything not listed is "invalid".
CODE_TO_STATUS = {
    0: "trusted",
    9: "notYetValid",
    10: "expired",
    2: "untrustedSigners",   # unable to get issuer certificate
    18: "untrustedSigners",  # self-signed leaf
    19: "untrustedSigners",  # self-signed certificate in chain
    20: "untrustedSigners",  # unable to get local issuer certificate
    21: "untrustedSigners",  # unable to verify the first certificate
    27: "untrustedSigners",  # certificate not trusted
    23: "revoked",
    62: "principalMismatch",  # hostname mismatch
    64: "principalMismatch",  # IP address mismatch
    7: "invalidChain",   # certificate signature failure
    24: "invalidChain",  # invalid CA certificate (OpenSSL 1.x)
    79: "invalidChain",  # invalid CA certificate (OpenSSL 3)
    25: "invalidChain",  # path length constraint exceeded
    32: "invalidChain",  # key usage does not include certificate signing
    47: "invalidChain",  # permitted subtree violation
    48: "invalidChain",  # excluded subtree violation
    26: "invalid",  # unsuitable certificate purpose
    34: "invalid",  # unhandled critical extension
}

NO_ISSUER = 20


def connect(host, port, server_name, context):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        return context.wrap_socket(sock, server_hostname=server_name)
    except BaseException:
        sock.close()
        raise


def fetch_leaf(host, port, server_name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with connect(host, port, server_name, ctx) as s:
        return s.getpeercert(binary_form=True)


def decode(der, tmpdir):
    path = os.path.join(tmpdir, "leaf.pem")
    with open(path, "w") as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
    return ssl._ssl._test_decode_cert(path)


def download(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return r.read()


def pem(der, label):
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def verify(host, port, server_name, ca_file, extra_pem, crl_pem, tmpdir):
    """Returns (verify_code, detail): 0 on success."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname on
    ctx.load_verify_locations(cafile=ca_file)
    if extra_pem:
        ctx.load_verify_locations(cadata=extra_pem)
    if crl_pem:
        path = os.path.join(tmpdir, "crls.pem")
        with open(path, "w") as f:
            f.write(crl_pem)
        ctx.load_verify_locations(cafile=path)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    try:
        with connect(host, port, server_name, ctx):
            return 0, "ok"
    except ssl.SSLCertVerificationError as e:
        return e.verify_code, e.verify_message


def judge(address, server_name, ca_file):
    host, port = address.rsplit(":", 1)
    host = host.strip("[]")
    with tempfile.TemporaryDirectory() as tmpdir:
        try:
            info = decode(fetch_leaf(host, int(port), server_name), tmpdir)
        except ssl.SSLError as e:
            return "invalid", -1, "handshake failed: %s" % e
        except OSError as e:  # refused, or no answer before TIMEOUT
            return "unknown", -1, "no handshake result: %s" % e
        crl_pem = ""
        for url in info.get("crlDistributionPoints", ()):
            try:
                crl_pem += pem(download(url), "X509 CRL")
            except OSError:
                pass  # soft-fail: an unreachable CRL does not fail
        try:
            code, detail = verify(host, int(port), server_name, ca_file, "", crl_pem, tmpdir)
            if code == NO_ISSUER and info.get("caIssuers"):
                fetched = ""
                for url in info["caIssuers"]:
                    try:
                        fetched += ssl.DER_cert_to_PEM_cert(download(url))
                    except OSError:
                        pass
                if fetched:
                    code2, detail2 = verify(host, int(port), server_name, ca_file, fetched, crl_pem, tmpdir)
                    if code2 == 0:
                        return "invalidChain", code, "%s; the issuer is at the AIA URL, the server did not send it" % detail
                    code, detail = code2, detail2
        except ssl.SSLError as e:
            return "invalid", -1, "handshake failed: %s" % e
        except OSError as e:
            return "unknown", -1, "no connection: %s" % e
    return CODE_TO_STATUS.get(code, "invalid"), code, detail


def client_verdict(address, server_name, ca_file, cert_file, key_file):
    host, port = address.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=ca_file)
    ctx.load_cert_chain(cert_file, key_file)
    with connect(host.strip("[]"), int(port), server_name, ctx) as s:
        data = b""
        while not data.endswith(b"\0"):
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("connection closed before the verdict: %r" % data)
            data += chunk
    return data[:data.index(b"\0")].decode("utf-8")


def main():
    if len(sys.argv) >= 7 and len(sys.argv) % 2 == 1 and sys.argv[1] == "--verdict":
        address, server_name, ca_file = sys.argv[2:5]
        pairs = sys.argv[5:]
        for cert_file, key_file in zip(pairs[0::2], pairs[1::2]):
            frame = client_verdict(address, server_name, ca_file, cert_file, key_file)
            print(json.dumps({"cert": cert_file, "frame": frame}), flush=True)
        return
    if len(sys.argv) < 2:
        sys.exit("usage: pyclient.py MANIFEST.json [address|sni_address ...]")
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    vias = sys.argv[2:] or ["address", "sni_address"]
    for e in manifest:
        for via in vias:
            if not e.get(via):
                continue  # an endpoint without TLS is not on the SNI port
            status, code, detail = judge(e[via], e["server_name"], e["ca_file"])
            print(json.dumps({"name": e["name"], "via": via, "status": status,
                              "verify_code": code, "detail": detail}), flush=True)


if __name__ == "__main__":
    main()
