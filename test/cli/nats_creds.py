# SPDX-License-Identifier: MIT
# NATS decentralised authentication for the forward tests (forward.sh): an
# operator, an account with JetStream, and users' credentials files, made
# by hand (nkeys, JWTs signed with ed25519 by openssl(1)), so that a test
# needs no nsc.
#
#   nats_creds.py DIR
#       writes in DIR:
#         server.conf  a nats-server configuration (-c): the operator, its
#                      account and a system account preloaded, JetStream on
#                      (its store where -sd says)
#         good.creds   a user of that account
#         stranger.creds  a user of an account the operator never signed
#         forger.creds    good.creds's JWT with another user's seed
#         narrow.creds    a user of the account who may publish and
#                         subscribe only on subjects under "other."
#         api.creds       a user of the account who may use the JetStream
#                         API and its own inbox, and publish nothing else
#         noreports.creds a user of the account kept from the subjects
#                         under "_SHMPIPE." (the far forward's reports)
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

# The first byte of an nkey, which says what kind of key it is.
PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3

# An ed25519 private key in PKCS#8 DER is this prefix and the 32-byte seed.
PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")


def crc16(data):
    """CRC-16/XMODEM, as nkeys check their keys."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode(prefix, raw):
    raw = bytes(prefix) + raw
    return b32(raw + crc16(raw).to_bytes(2, "little"))


def openssl(tmp, seed, args, data=b""):
    """
    Runs openssl with the private key of seed in DER (after args, which end
    with -in or -inkey) and data in a file (-in: a one-shot ed25519
    signature wants a file, not a pipe).
    """
    key, msg = os.path.join(tmp, "key.der"), os.path.join(tmp, "data")
    with open(key, "wb") as f:
        f.write(PKCS8_ED25519 + seed)
    with open(msg, "wb") as f:
        f.write(data)
    try:
        return subprocess.run(["openssl"] + args + [key, "-in", msg] if data else
                              ["openssl"] + args + [key], capture_output=True, check=True).stdout
    finally:
        os.unlink(key)
        os.unlink(msg)


class Key:
    """An nkey: its seed, its public key, as NATS writes them."""

    def __init__(self, tmp, prefix):
        self.tmp = tmp
        self.seed = os.urandom(32)
        spki = openssl(tmp, self.seed, ["pkey", "-pubout", "-outform", "DER", "-inform", "DER", "-in"])
        self.public = encode([prefix], spki[-32:])
        self.seed_text = encode([PREFIX_SEED | prefix >> 5, (prefix & 31) << 3], self.seed)

    def sign(self, data):
        return openssl(self.tmp, self.seed, ["pkeyutl", "-sign", "-rawin", "-keyform", "DER", "-inkey"],
                       data)


def jwt(signer, subject, name, nats):
    """A JWT of the claims about subject, signed by signer."""
    claims = {"iat": int(time.time()), "iss": signer.public, "name": name, "sub": subject.public,
              "nats": dict(nats, version=2)}
    claims["jti"] = b32(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest())
    head = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = b64url(json.dumps(claims).encode())
    return "%s.%s.%s" % (head, body, b64url(signer.sign(("%s.%s" % (head, body)).encode())))


def creds(path, token, seed_text):
    with open(path, "w") as f:
        f.write("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
                % (token, seed_text))


def user_claims(pub=None, sub=None, deny=None):
    def perm(allow):
        return dict({"allow": allow} if allow else {}, **({"deny": deny} if deny else {}))
    return {"type": "user", "pub": perm(pub), "sub": perm(sub), "subs": -1, "data": -1,
            "payload": -1}


def main(out):
    with tempfile.TemporaryDirectory() as tmp:
        operator = Key(tmp, PREFIX_OPERATOR)
        account = Key(tmp, PREFIX_ACCOUNT)
        system = Key(tmp, PREFIX_ACCOUNT)  # JetStream needs a system account
        stranger_account = Key(tmp, PREFIX_ACCOUNT)
        user, stranger, forger, narrow, api, noreports = (Key(tmp, PREFIX_USER) for _ in range(6))
        limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                  "wildcards": True, "conn": -1, "leaf": -1,
                  "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
        account_jwt = jwt(operator, account, "shmpipe", {"type": "account", "limits": limits})
        with open(os.path.join(out, "operator.jwt"), "w") as f:
            f.write(jwt(operator, operator, "shmpipe-test", {"type": "operator"}))
        with open(os.path.join(out, "server.conf"), "w") as f:
            f.write('operator: "%s"\nsystem_account: %s\nresolver: MEMORY\n'
                    'resolver_preload: {\n  %s: "%s"\n  %s: "%s"\n}\n'
                    'jetstream: enabled\n'
                    % (os.path.join(out, "operator.jwt"), system.public, account.public,
                       account_jwt, system.public,
                       jwt(operator, system, "SYS", {"type": "account"})))
        good = jwt(account, user, "forward", user_claims())
        creds(os.path.join(out, "good.creds"), good, user.seed_text)
        creds(os.path.join(out, "stranger.creds"),
              jwt(stranger_account, stranger, "stranger", user_claims()), stranger.seed_text)
        creds(os.path.join(out, "forger.creds"), good, forger.seed_text)
        creds(os.path.join(out, "narrow.creds"),
              jwt(account, narrow, "narrow", user_claims(["other.>"], ["other.>"])),
              narrow.seed_text)
        creds(os.path.join(out, "api.creds"),
              jwt(account, api, "api", user_claims(["$JS.API.>", "$JS.ACK.>"], ["_INBOX.>"])),
              api.seed_text)
        creds(os.path.join(out, "noreports.creds"),
              jwt(account, noreports, "noreports", user_claims(deny=["_SHMPIPE.>"])),
              noreports.seed_text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: nats_creds.py DIR")
    main(sys.argv[1])
