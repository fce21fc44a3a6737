#!/usr/bin/python3
"""A fake Hugging Face Hub for the tests: serves a folder laid out as <owner>/<repo>/<path> under
the Hub's URL scheme, on 127.0.0.1 only.

  GET /<owner>/<repo>/resolve/<revision>/<path>
      LFS files (.gguf, .bin, or >= 1 KiB): 302 to a CDN-like path (on "localhost", another host
      name, so a client must not forward its token), with ETag and X-Linked-Etag = the SHA-256,
      X-Linked-Size, X-Repo-Commit. Other files: served directly, ETag = git blob SHA-1.
      A repository with a file named .gated needs "Authorization: Bearer <its content>".
  GET /cdn/<owner>/<repo>/<path>      the file, with Range support (206, 416).
  GET /_control?path=<owner/repo/path>&mode=<m>[&count=N][&rate=B]
      fault injection for that file, applied to the next N requests (default: all):
      cut (send half of what was asked, then drop the connection), 404, 401, 500,
      corrupt (flip bytes in the body), slow (rate bytes per second), cdn403 (the CDN
      refuses the object, as for an expired signature).
      /_control?redirect=same makes redirects relative (same host).
      /_control?sign=S adds a query string like a signed CDN URL's to every redirect
      (?X-Amz-Signature=S&...); sign= (empty) stops it.
  GET /_stats   JSON: resolve and CDN request counts per file, Authorization headers seen,
                Range headers of CDN requests, CDN requests that carried the signature.
  GET /_reset   forgets faults and counters.

Prints the port on stdout, then serves until stdin closes or it is killed.
"""
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".gguf", ".bin")
LFS_MIN_SIZE = 1024
CHUNK = 16 * 1024


class State:
    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.faults = {}  # path -> {"mode", "count", "rate"}
            self.resolve_gets = {}
            self.cdn_gets = {}
            self.resolve_auth = {}
            self.cdn_auth = {}
            self.cdn_ranges = {}
            self.redirect_same = False
            self.signature = ""
            self.cdn_signed = 0  # CDN requests that carried the signature

    def take_fault(self, path, modes):
        """The fault for path if its mode is one of modes (consuming one use), else None."""
        with self.lock:
            f = self.faults.get(path)
            if f is None or f["mode"] not in modes:
                return None
            if f["count"] == 0:
                return None
            if f["count"] > 0:
                f["count"] -= 1
            return dict(f)

    def count(self, table, auth_table, path, auth):
        with self.lock:
            table[path] = table.get(path, 0) + 1
            auth_table.setdefault(path, []).append(auth)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path):
    with open(path, "rb") as f:
        data = f.read()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    @property
    def state(self):
        return self.server.state

    def local_file(self, rel):
        """The file for owner/repo/path, or None when missing or outside the root."""
        path = os.path.realpath(os.path.join(self.state.root, rel))
        if not path.startswith(self.state.root + os.sep) or not os.path.isfile(path):
            return None
        return path

    def send_plain(self, code, text, extra=None):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if parts[:1] == ["_control"]:
            return self.control(query)
        if parts[:1] == ["_stats"]:
            return self.stats()
        if parts[:1] == ["_reset"]:
            self.state.reset()
            return self.send_plain(200, "ok")
        if parts[:1] == ["cdn"] and len(parts) >= 4:
            return self.cdn("/".join(parts[1:]), query)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(parts[0], parts[1], "/".join(parts[4:]))
        self.send_plain(404, "not found")

    def control(self, query):
        if "redirect" in query:
            self.state.redirect_same = query["redirect"][0] == "same"
        if "sign" in query:
            self.state.signature = query["sign"][0]
        if "path" in query:
            with self.state.lock:
                self.state.faults[query["path"][0]] = {
                    "mode": query["mode"][0],
                    "count": int(query.get("count", ["-1"])[0]),
                    "rate": int(query.get("rate", ["65536"])[0]),
                }
        self.send_plain(200, "ok")

    def stats(self):
        with self.state.lock:
            body = json.dumps({
                "resolve_gets": self.state.resolve_gets,
                "cdn_gets": self.state.cdn_gets,
                "resolve_auth": self.state.resolve_auth,
                "cdn_auth": self.state.cdn_auth,
                "cdn_ranges": self.state.cdn_ranges,
                "cdn_signed": self.state.cdn_signed,
            })
        self.send_plain(200, body, {"Content-Type": "application/json"})

    def resolve(self, owner, repo, rel_path):
        rel = f"{owner}/{repo}/{rel_path}"
        auth = self.headers.get("Authorization")
        self.state.count(self.state.resolve_gets, self.state.resolve_auth, rel, auth)
        fault = self.state.take_fault(rel, ("404", "401", "500"))
        if fault is not None:
            code = int(fault["mode"])
            return self.send_plain(code, f"fault {code}", {"X-Error-Code": "Injected"})
        repo_dir = os.path.join(self.state.root, owner, repo)
        if not os.path.isdir(repo_dir):
            return self.send_plain(404, "Repository not found",
                                   {"X-Error-Code": "RepoNotFound"})
        gate = os.path.join(repo_dir, ".gated")
        if os.path.isfile(gate):
            with open(gate) as f:
                token = f.read().strip()
            if auth != f"Bearer {token}":
                return self.send_plain(401, "Access to this model is restricted",
                                       {"X-Error-Code": "GatedRepo"})
        path = self.local_file(rel)
        if path is None:
            return self.send_plain(404, "Entry not found", {"X-Error-Code": "EntryNotFound"})
        size = os.path.getsize(path)
        if rel.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE:
            sha = sha256_of(path)
            target = "/cdn/" + urllib.parse.quote(rel)
            if not self.state.redirect_same:
                target = f"http://localhost:{self.server.server_address[1]}{target}"
            if self.state.signature:
                target += ("?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600"
                           f"&X-Amz-Signature={urllib.parse.quote(self.state.signature)}")
            return self.send_plain(302, "Found", {
                "Location": target,
                "ETag": f'"{sha}"',
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(size),
                "X-Repo-Commit": "0" * 40,
            })
        self.send_file(path, rel, {"ETag": f'"{git_blob_sha1(path)}"'}, fault=None)

    def cdn(self, rel, query):
        self.state.count(self.state.cdn_gets, self.state.cdn_auth, rel,
                         self.headers.get("Authorization"))
        with self.state.lock:
            self.state.cdn_ranges.setdefault(rel, []).append(self.headers.get("Range"))
            if query.get("X-Amz-Signature", [""])[0] == self.state.signature != "":
                self.state.cdn_signed += 1
        path = self.local_file(rel)
        if path is None:
            return self.send_plain(404, "no such object")
        fault = self.state.take_fault(rel, ("cut", "corrupt", "slow", "cdn403"))
        if fault is not None and fault["mode"] == "cdn403":
            return self.send_plain(403, "Request has expired")
        self.send_file(path, rel, {"ETag": '"cdn-object"'}, fault)

    def send_file(self, path, rel, headers, fault):
        size = os.path.getsize(path)
        start, end, code = 0, size, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            start = int(first) if first else 0
            end = int(last) + 1 if last else size
            if start >= size:
                return self.send_plain(416, "range not satisfiable",
                                       {"Content-Range": f"bytes */{size}"})
            end = min(end, size)
            code = 206
        self.send_response(code)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = end
        if fault is not None and fault["mode"] == "cut":
            limit = start + (end - start) // 2
        with open(path, "rb") as f:
            f.seek(start)
            pos = start
            while pos < limit:
                block = f.read(min(CHUNK, limit - pos))
                if not block:
                    break
                if fault is not None and fault["mode"] == "corrupt":
                    block = bytes(b ^ 0x5A for b in block)
                self.wfile.write(block)
                pos += len(block)
                if fault is not None and fault["mode"] == "slow":
                    self.wfile.flush()
                    time.sleep(len(block) / max(1, fault["rate"]))
        if limit < end:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fake_hub.py ROOT")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(sys.argv[1])
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # the test closed our stdin (or died): stop
    os._exit(0)


if __name__ == "__main__":
    main()
