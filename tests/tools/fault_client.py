#!/usr/bin/python3
"""A misbehaving HTTP client for the fault tests (127.0.0.1 only).

  fault_client.py PORT cut FILE [BYTES]
      sends the first BYTES bytes of the request in FILE (all of it when omitted), then closes
      the connection without reading anything.
  fault_client.py PORT after-headers FILE
      sends the request in FILE, reads the response up to the end of its headers, prints the
      status code and closes the connection.
  fault_client.py PORT raw FILE
      sends the request in FILE, reads the response until the server closes the connection
      (10 s at most) and prints its status code, or "closed" when none came.
  fault_client.py PORT slow N INTERVAL SECONDS [headers|body]
      opens N connections that each send a request one byte every INTERVAL seconds
      (slowloris), for SECONDS at most: its headers (default), or complete headers and then
      its body; prints JSON: how many the server closed ("closed") and after how long at the
      latest ("latest_close_s"), and how many were still open at the end ("open").
"""
import json
import select
import socket
import sys
import time

SLOW_HEADERS = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
SLOW_BODY_HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n")


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def status_of(data):
    line = data.split(b"\r\n", 1)[0].split()
    return line[1].decode() if len(line) >= 2 and line[0].startswith(b"HTTP/") else "closed"


def cut(port, path, limit=None):
    data = open(path, "rb").read()
    s = connect(port)
    s.sendall(data if limit is None else data[: int(limit)])
    s.close()


def read_until(s, marker=None, seconds=10):
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end and (marker is None or marker not in data):
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def after_headers(port, path):
    s = connect(port)
    s.sendall(open(path, "rb").read())
    print(status_of(read_until(s, b"\r\n\r\n")))
    s.close()


def raw(port, path):
    s = connect(port)
    try:
        s.sendall(open(path, "rb").read())
    except (BrokenPipeError, ConnectionResetError):
        pass
    print(status_of(read_until(s)))
    s.close()


def closed_by_peer(s):
    try:
        return s.recv(65536, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def slow(port, n, interval, seconds, what="headers"):
    start = time.monotonic()
    conns = []
    drip = SLOW_HEADERS if what == "headers" else b" " * 4096
    for _ in range(int(n)):
        try:
            s = connect(port)
            if what == "body":
                s.sendall(SLOW_BODY_HEAD)
            conns.append({"s": s, "sent": 0, "closed_at": None})
        except OSError:
            conns.append({"s": None, "sent": 0, "closed_at": 0.0})
    interval, seconds = float(interval), float(seconds)
    while time.monotonic() - start < seconds:
        open_conns = [c for c in conns if c["closed_at"] is None]
        if not open_conns:
            break
        for c in open_conns:
            s = c["s"]
            try:
                if c["sent"] < len(drip):
                    s.send(drip[c["sent"] : c["sent"] + 1])
                    c["sent"] += 1
            except OSError:
                pass
            if closed_by_peer(s):
                c["closed_at"] = time.monotonic() - start
                s.close()
        select.select([], [], [], interval)
    later = [c["closed_at"] for c in conns if c["closed_at"] is not None]
    still_open = [c for c in conns if c["closed_at"] is None]
    for c in still_open:
        c["s"].close()
    print(json.dumps({"closed": len(later),
                      "latest_close_s": round(max(later), 2) if later else None,
                      "open": len(still_open)}))


def main():
    port, cmd, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    {"cut": cut, "after-headers": after_headers, "raw": raw, "slow": slow}[cmd](port, *args)


if __name__ == "__main__":
    main()
