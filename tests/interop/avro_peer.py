#!/usr/bin/env python3
"""An independent Avro RPC peer for Flume's protocol, written from the Avro specification
(handshake, call and response layout) and Netty's framing, encoding datums with Python's
`avro` package. It behaves like Java's NettyTransceiver and Responder: the handshake travels
on a connection's requests until a response establishes it, an unknown client gets NONE and
the client resends with its protocol text, and compression is one zlib stream per
connection, sync-flushed after each frame.

    avro_peer.py client PORT --connections C --batches B --size N [--deflate] [--tls-ca CA]
        sends B appendBatch calls of N events on each of C connections (one after the
        other); prints {"sent": n, "matches": [[...] per connection]}.
    avro_peer.py server --out FILE [--deflate] [--fail-first K] [--tls-cert C --tls-key K]
        listens on 127.0.0.1 (port printed as "port P"), answers FAILED to the first K
        batches and OK after, and appends each accepted event to FILE as a JSON line.
"""
import argparse
import base64
import hashlib
import io
import json
import socket
import ssl
import struct
import sys
import threading
import zlib

import avro.io
import avro.schema

# The protocol as Java's generated code carries it (with a doc string), so its MD5 differs
# from whatever text the other side uses: the first handshake takes the NONE path.
PROTOCOL_TEXT = json.dumps({
    "protocol": "AvroSourceProtocol",
    "namespace": "org.apache.flume.source.avro",
    "doc": "* Licensed to the Apache Software Foundation (ASF).",
    "types": [
        {"type": "enum", "name": "Status", "symbols": ["OK", "FAILED", "UNKNOWN"]},
        {"type": "record", "name": "AvroFlumeEvent", "fields": [
            {"name": "headers", "type": {"type": "map", "values": "string"}},
            {"name": "body", "type": "bytes"}]},
    ],
    "messages": {
        "append": {"request": [{"name": "event", "type": "AvroFlumeEvent"}],
                   "response": "Status"},
        "appendBatch": {"request": [{"name": "events",
                                     "type": {"type": "array", "items": "AvroFlumeEvent"}}],
                        "response": "Status"},
    },
}, separators=(",", ":"))
PROTOCOL_HASH = hashlib.md5(PROTOCOL_TEXT.encode()).digest()

MD5 = {"type": "fixed", "name": "MD5", "namespace": "org.apache.avro.ipc", "size": 16}
HANDSHAKE_REQUEST = avro.schema.parse(json.dumps({
    "type": "record", "name": "HandshakeRequest", "namespace": "org.apache.avro.ipc",
    "fields": [
        {"name": "clientHash", "type": MD5},
        {"name": "clientProtocol", "type": ["null", "string"]},
        {"name": "serverHash", "type": "org.apache.avro.ipc.MD5"},
        {"name": "meta", "type": ["null", {"type": "map", "values": "bytes"}]},
    ]}))
HANDSHAKE_RESPONSE = avro.schema.parse(json.dumps({
    "type": "record", "name": "HandshakeResponse", "namespace": "org.apache.avro.ipc",
    "fields": [
        {"name": "match", "type": {"type": "enum", "name": "HandshakeMatch",
                                   "symbols": ["BOTH", "CLIENT", "NONE"]}},
        {"name": "serverProtocol", "type": ["null", "string"]},
        {"name": "serverHash", "type": ["null", MD5]},
        {"name": "meta", "type": ["null", {"type": "map", "values": "bytes"}]},
    ]}))
META = avro.schema.parse('{"type":"map","values":"bytes"}')
STRING = avro.schema.parse('"string"')
BOOLEAN = avro.schema.parse('"boolean"')
EVENTS = avro.schema.parse(json.dumps({"type": "array", "items": {
    "type": "record", "name": "AvroFlumeEvent", "namespace": "org.apache.flume.source.avro",
    "fields": [{"name": "headers", "type": {"type": "map", "values": "string"}},
               {"name": "body", "type": "bytes"}]}}))
STATUS = avro.schema.parse(json.dumps({
    "type": "enum", "name": "Status", "namespace": "org.apache.flume.source.avro",
    "symbols": ["OK", "FAILED", "UNKNOWN"]}))
ERRORS = avro.schema.parse('["string"]')


def enc(schema, datum, buf):
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buf))


def dec(schema, buf):
    return avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(buf))


class TlsInZlib:
    """TLS inside a zlib stream, Flume 1.11's layering of ssl with deflate: the socket carries
    one zlib stream each way (sync-flushed per write), and that stream carries TLS records."""

    def __init__(self, sock, context, server_side, hostname=None):
        self.sock = sock
        self.comp = zlib.compressobj(6)
        self.decomp = zlib.decompressobj()
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                    server_hostname=hostname)
        while True:
            try:
                self.tls.do_handshake()
                self._push()
                return
            except ssl.SSLWantReadError:
                self._push()
                if not self._pull():
                    raise OSError("closed during the TLS handshake")

    def _push(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH))

    def _pull(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.incoming.write(self.decomp.decompress(data))
        return True

    def sendall(self, data):
        self.tls.write(data)
        self._push()

    def recv(self, n):
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                if not self._pull():
                    return b""

    def close(self):
        self.sock.close()


class Link:
    """Netty frames over a socket, through one zlib stream per direction when deflating
    (unless TLS carries them: then the zlib stream is below TLS, in `TlsInZlib`)."""

    def __init__(self, sock, deflate):
        self.sock = sock
        deflate = deflate and not isinstance(sock, TlsInZlib)
        self.comp = zlib.compressobj(6) if deflate else None
        self.decomp = zlib.decompressobj() if deflate else None
        self.pending = b""

    def send(self, serial, payload):
        # Two buffers, as Java splits its output into several.
        half = len(payload) // 2
        parts = [payload[:half], payload[half:]]
        frame = struct.pack(">ii", serial, len(parts))
        for p in parts:
            frame += struct.pack(">i", len(p)) + p
        if self.comp:
            frame = self.comp.compress(frame) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(frame)

    def recv(self):
        while True:
            frame = self._cut()
            if frame is not None:
                return frame
            data = self.sock.recv(65536)
            if not data:
                return None
            self.pending += self.decomp.decompress(data) if self.decomp else data

    def _cut(self):
        if len(self.pending) < 8:
            return None
        serial, count = struct.unpack(">ii", self.pending[:8])
        at, payload = 8, b""
        for _ in range(count):
            if len(self.pending) < at + 4:
                return None
            (n,) = struct.unpack(">i", self.pending[at:at + 4])
            if len(self.pending) < at + 4 + n:
                return None
            payload += self.pending[at + 4:at + 4 + n]
            at += 4 + n
        self.pending = self.pending[at:]
        return serial, payload


def client(a):
    sent, matches, serial = 0, [], 0
    server_hash = PROTOCOL_HASH
    for c in range(a.connections):
        sock = socket.create_connection(("127.0.0.1", a.port), timeout=20)
        if a.tls_ca:
            context = ssl.create_default_context(cafile=a.tls_ca)
            if a.deflate:
                sock = TlsInZlib(sock, context, False, "localhost")
            else:
                sock = context.wrap_socket(sock, server_hostname="localhost")
        link = Link(sock, a.deflate)
        established, send_text, seen = False, False, []
        for b in range(a.batches):
            events = []
            for i in range(a.size):
                n = sent + i
                events.append({"headers": {"n": str(n), "k": "v=w", "h\u00e9": "\u2603"},
                               "body": f"py-{n:06} \u00e9".encode()})
            call = io.BytesIO()
            enc(META, {}, call)
            enc(STRING, "appendBatch", call)
            enc(EVENTS, events, call)
            while True:
                request = io.BytesIO()
                if not established:
                    enc(HANDSHAKE_REQUEST, {
                        "clientHash": PROTOCOL_HASH,
                        "clientProtocol": PROTOCOL_TEXT if send_text else None,
                        "serverHash": server_hash, "meta": None}, request)
                serial += 1
                link.send(serial, request.getvalue() + call.getvalue())
                answer = link.recv()
                if answer is None:
                    raise SystemExit("the server closed the connection")
                if answer[0] != serial:
                    raise SystemExit(f"answer serial {answer[0]} for request {serial}")
                r = io.BytesIO(answer[1])
                if not established:
                    h = dec(HANDSHAKE_RESPONSE, r)
                    seen.append(h["match"])
                    if h["serverHash"]:
                        server_hash = h["serverHash"]
                    if h["match"] == "NONE":
                        send_text = True
                        continue
                    established = True
                dec(META, r)
                if dec(BOOLEAN, r):
                    raise SystemExit(f"error: {dec(ERRORS, r)}")
                status = dec(STATUS, r)
                if status != "OK":
                    raise SystemExit(f"status {status}")
                break
            sent += a.size
        matches.append(seen)
        sock.close()
    print(json.dumps({"sent": sent, "matches": matches}), flush=True)


class Responder:
    def __init__(self, a):
        self.a = a
        self.known = {PROTOCOL_HASH}
        self.lock = threading.Lock()
        self.batches = 0

    def serve(self, sock):
        link = Link(sock, self.a.deflate)
        established = False
        while True:
            frame = link.recv()
            if frame is None:
                return
            serial, payload = frame
            r, out = io.BytesIO(payload), io.BytesIO()
            if not established:
                h = dec(HANDSHAKE_REQUEST, r)
                with self.lock:
                    known = h["clientHash"] in self.known
                    if not known and h["clientProtocol"]:
                        json.loads(h["clientProtocol"])
                        self.known.add(h["clientHash"])
                        known = True
                if not known:
                    enc(HANDSHAKE_RESPONSE, {"match": "NONE", "serverProtocol": PROTOCOL_TEXT,
                                             "serverHash": PROTOCOL_HASH, "meta": None}, out)
                    self.log({"match": "NONE"})
                    link.send(serial, out.getvalue())
                    continue
                both = h["serverHash"] == PROTOCOL_HASH
                enc(HANDSHAKE_RESPONSE, {
                    "match": "BOTH" if both else "CLIENT",
                    "serverProtocol": None if both else PROTOCOL_TEXT,
                    "serverHash": None if both else PROTOCOL_HASH, "meta": None}, out)
                self.log({"match": "BOTH" if both else "CLIENT"})
                established = True
            dec(META, r)
            name = dec(STRING, r)
            if name == "":
                link.send(serial, out.getvalue())
                continue
            events = dec(EVENTS, r)
            with self.lock:
                self.batches += 1
                ok = self.batches > self.a.fail_first
                if ok:
                    for e in events:
                        self.log({"headers": e["headers"],
                                  "body": base64.b64encode(e["body"]).decode()})
                else:
                    self.log({"failed": len(events)})
            enc(META, {}, out)
            enc(BOOLEAN, False, out)
            enc(STATUS, "OK" if ok else "FAILED", out)
            link.send(serial, out.getvalue())

    def log(self, record):
        with open(self.a.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def server(a):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"port {listener.getsockname()[1]}", flush=True)
    responder = Responder(a)
    context = None
    if a.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(a.tls_cert, a.tls_key)
    while True:
        sock, _ = listener.accept()
        if context:
            try:
                if a.deflate:
                    sock = TlsInZlib(sock, context, True)
                else:
                    sock = context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                continue
        threading.Thread(target=responder.serve, args=(sock,), daemon=True).start()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client")
    c.add_argument("port", type=int)
    c.add_argument("--connections", type=int, default=2)
    c.add_argument("--batches", type=int, default=5)
    c.add_argument("--size", type=int, default=20)
    c.add_argument("--deflate", action="store_true")
    c.add_argument("--tls-ca", help="speak TLS, trusting this CA (PEM) for `localhost`")
    s = sub.add_parser("server")
    s.add_argument("--out", required=True)
    s.add_argument("--deflate", action="store_true")
    s.add_argument("--fail-first", type=int, default=0)
    s.add_argument("--tls-cert", help="speak TLS with this certificate (PEM)")
    s.add_argument("--tls-key", help="and this private key (PEM)")
    a = p.parse_args()
    (client if a.mode == "client" else server)(a)


if __name__ == "__main__":
    sys.exit(main())
