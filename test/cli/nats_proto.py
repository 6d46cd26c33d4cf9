# SPDX-License-Identifier: MIT
# The NATS protocol by hand, for the forward tests (forward.sh): what a
# test does to the servers beside the forwards, with no NATS client library.
#
#   nats_proto.py hpub HOST:PORT SUBJECT ID=SIZE...
#       publishes, for each ID=SIZE, SIZE bytes with the header
#       Nats-Msg-Id: ID (a forward's ids, made up), and waits until the
#       server has them all
#   nats_proto.py jsapi HOST:PORT SUBJECT JSON
#       a request to the JetStream API; exits 0 if the answer holds no error
#   nats_proto.py spy HOST:PORT READY SUBJECT...
#       subscribes to each SUBJECT, writes READY once the server has the
#       subscriptions, and on SIGTERM prints, for each SUBJECT, how many
#       messages came and how many from each reply prefix (the requester's
#       connection), one line each: "COUNT PREFIX=COUNT..." (a prefix is a
#       reply subject without its last token)
#   nats_proto.py meddle HOST:PORT READY SUBJECT COPIES
#       subscribes to SUBJECT, writes READY once the server has the
#       subscription, and publishes each request that comes there COPIES
#       times again, with the same reply subject (its own copies do not
#       come back to it); on SIGTERM prints how many it saw
import collections
import json
import signal
import socket
import sys


def connect(hostport, echo=True):
    """A connection that takes headers: the socket and its reader."""
    host, port = hostport.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    f = s.makefile("rb")
    f.readline()  # INFO
    s.sendall(b'CONNECT {"verbose":false,"headers":true%s}\r\n' % (b"" if echo else b',"echo":false'))
    return s, f


def serve(s, f, name, ready, on_msg, on_end):
    """
    Reads the server until it goes: answers its PINGs, writes READY at the
    first PONG (the answer to a PING sent after the subscriptions), and
    calls on_msg(words, payload) for each MSG or HMSG; on_end() at the end.
    """
    while True:
        line = f.readline()
        if not line:
            on_end()
        w = line.split()
        if not w:
            continue
        if w[0] == b"PONG" and ready:
            open(ready, "w").close()
            ready = None
        elif w[0] == b"PING":
            s.sendall(b"PONG\r\n")
        elif w[0] in (b"MSG", b"HMSG"):
            on_msg(w, f.read(int(w[-1]) + 2)[:-2])
        elif w[0] == b"-ERR":
            sys.exit("%s: %s" % (name, line.decode().strip()))


def on_sigterm(report):
    def handler(*_):
        report()
        sys.stdout.flush()
        sys.exit(0)

    signal.signal(signal.SIGTERM, handler)
    return handler


def hpub(hostport, subject, *items):
    s, f = connect(hostport)
    for item in items:
        msgid, size = item.split("=")
        hdr = ("NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msgid).encode()
        body = b"x" * int(size)
        s.sendall(b"HPUB %s %d %d\r\n" % (subject.encode(), len(hdr), len(hdr) + len(body)) + hdr + body + b"\r\n")
    s.sendall(b"PING\r\n")
    while True:
        line = f.readline()
        if not line or line.startswith(b"PONG"):
            break
        if line.startswith(b"-ERR"):
            sys.exit("hpub: " + line.decode().strip())


def jsapi(hostport, subject, body):
    s, f = connect(hostport)
    s.sendall(b"SUB _jsapi.reply 1\r\n")
    s.sendall(b"PUB %s _jsapi.reply %d\r\n%s\r\n" % (subject.encode(), len(body), body.encode()))

    def answer(w, payload):
        a = json.loads(payload)
        sys.exit("jsapi: %s: %s" % (subject, a["error"]) if "error" in a else 0)

    def gone():
        sys.exit("jsapi: no answer to " + subject)

    serve(s, f, "jsapi", None, answer, gone)


def spy(hostport, ready, *subjects):
    counts = [0] * len(subjects)
    prefixes = [collections.Counter() for _ in subjects]

    def report():
        for n, p in zip(counts, prefixes):
            print(n, *("%s=%d" % kv for kv in sorted(p.items())))

    end = on_sigterm(report)
    s, f = connect(hostport)
    for i, subj in enumerate(subjects):
        s.sendall(b"SUB %s %d\r\n" % (subj.encode(), i))
    s.sendall(b"PING\r\n")

    def took(w, payload):
        sid = int(w[2])
        reply = w[3] if len(w) == (5 if w[0] == b"MSG" else 6) else b""
        counts[sid] += 1
        if reply:
            prefixes[sid][reply.rsplit(b".", 1)[0].decode()] += 1

    serve(s, f, "spy", ready, took, end)


def meddle(hostport, ready, subject, copies):
    seen = [0]
    end = on_sigterm(lambda: print(seen[0]))
    s, f = connect(hostport, echo=False)
    subject = subject.encode()
    s.sendall(b"SUB %s 1\r\nPING\r\n" % subject)

    def again(w, body):
        if w[0] == b"MSG" and len(w) == 5:
            seen[0] += 1
            s.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject, w[3], len(body), body) * int(copies))

    serve(s, f, "meddle", ready, again, end)


if __name__ == "__main__":
    {"hpub": hpub, "jsapi": jsapi, "spy": spy, "meddle": meddle}[sys.argv[1]](*sys.argv[2:])
