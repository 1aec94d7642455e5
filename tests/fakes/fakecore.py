"""fakecore: machinery shared by the strict fake provider servers.

One fake runs per process (see fakeserver.py).  This module owns everything
that is not provider specific:

  * the HTTP(S) server (ThreadingHTTPServer, HTTP/1.1 keep-alive, TLS
    handshake done in the worker thread, never in the accept loop);
  * the request pipeline: route -> auth -> fault pick -> body -> handler;
  * fault injection from STATE/faults.json, re-read on every request;
  * accounting: STATE/requests.jsonl (one line per request, written with a
    single write() so readers never see half a line) and
    STATE/submissions.json (counters, replaced atomically);
  * media generation with ffmpeg (argument vectors only, never a shell).

Invariants: state files are replaced by write-to-temp + rename; a fault rule
is consumed at most `times` times per version of faults.json (a rewrite of
the file, even with identical content, re-arms every rule).
"""

import datetime
import itertools
import email.utils
import hashlib
import json
import os
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Faults answered by the app's fault_response() instead of the handler.
STATUS_FAULTS = {"429", "408", "500", "502", "503", "504"}
# Faults that change the transport, not the answer.
TRANSPORT_FAULTS = {"stall", "reset", "truncate", "malformed_json",
                    "huge_body", "wrong_content_type", "redirect", "drip"}


# ---------------------------------------------------------------- helpers

def atomic_write(path, data):
    """Write data (bytes or str) to path via a temp file and rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = "%s.tmp.%d.%d" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def now_iso():
    return (datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def http_date(offset_seconds=0.0):
    return email.utils.formatdate(time.time() + offset_seconds, usegmt=True)


def new_id(nbytes=16):
    return secrets.token_hex(nbytes)


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def word_count(text):
    return len(str(text).split())


# ---------------------------------------------------------------- responses

class Response:
    """An answer: status, content type, extra headers, body bytes."""

    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else str(body).encode()
        self.content_type = content_type
        self.headers = list(headers or [])
        self.close = False

    @classmethod
    def json(cls, status, obj, headers=None, content_type="application/json"):
        return cls(status, json.dumps(obj).encode("utf-8"), content_type,
                   headers)

    @classmethod
    def text(cls, status, text, headers=None):
        return cls(status, text.encode("utf-8"), "text/plain; charset=utf-8",
                   headers)

    @classmethod
    def empty(cls, status, headers=None):
        return cls(status, b"", None, headers)


class HTTPError(Exception):
    """Raised anywhere in a handler to answer with `response` at once."""

    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


class Route:
    def __init__(self, fn, auth=True, name=None):
        self.fn = fn
        self.auth = auth
        self.name = name or getattr(fn, "__name__", "route")


# ---------------------------------------------------------------- requests

class Request:
    """One parsed request, handed to the app's handlers."""

    def __init__(self, handler, core):
        self.handler = handler
        self.core = core
        self.method = handler.command
        self.raw_path = handler.path
        parts = urllib.parse.urlsplit(handler.path)
        self.path = parts.path
        self.query_string = parts.query
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        self.body = b""
        self.partial_body = None
        self.fault = None
        self.route = None
        self._json_state = None  # None = not parsed, else (ok, value, err)

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def q(self, name, default=None):
        vals = self.query.get(name)
        return vals[0] if vals else default

    def media_type(self):
        ct = self.header("Content-Type") or ""
        return ct.split(";")[0].strip().lower()

    def parsed_json(self):
        """(ok, value, error message); parses once, UTF-8 strictly."""
        if self._json_state is None:
            try:
                text = self.body.decode("utf-8")
                self._json_state = (True, json.loads(text), None)
            except (UnicodeDecodeError, ValueError) as e:
                self._json_state = (False, None, str(e))
        return self._json_state

    def base_url(self):
        host = self.header("Host") or "127.0.0.1:%d" % self.core.port
        return "%s://%s" % (self.core.scheme, host)


class Fault:
    def __init__(self, rule, index):
        self.rule = rule
        self.index = index
        self.name = str(rule.get("fault", ""))

    def get(self, key, default=None):
        return self.rule.get(key, default)


class RuleBook:
    """Rules from a JSON list file, re-read whenever the file changes.

    Each rule {"match": substring, "times": N, ...} is used at most N times
    (times < 0 or null: forever); the first matching rule with uses left
    wins.  A new version of the file (new inode, mtime or size) re-arms
    every rule.
    """

    def __init__(self, path, default_times=1, state_path=None):
        self.path = path
        self.default_times = default_times
        self.state_path = state_path
        self.lock = threading.Lock()
        self.identity = None
        self.rules = []
        self.used = []
        self.load_error = None

    def _reload(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.identity, self.rules, self.used = None, [], []
            return
        ident = (st.st_ino, st.st_mtime_ns, st.st_size)
        if ident == self.identity:
            return
        self.identity = ident
        self.load_error = None
        try:
            with open(self.path, "rb") as f:
                rules = json.loads(f.read().decode("utf-8"))
            if isinstance(rules, dict):
                rules = rules.get("rules", [])
            if not isinstance(rules, list):
                raise ValueError("top level must be a list of rules")
        except (OSError, ValueError) as e:
            self.load_error = "%s: %s" % (self.path, e)
            rules = []
        self.rules = [r for r in rules if isinstance(r, dict)]
        self.used = [0] * len(self.rules)

    def pick(self, method, target, text=None):
        """First rule matching `target` (and `text` if the rule has
        match_body); consumes one use."""
        with self.lock:
            self._reload()
            for i, rule in enumerate(self.rules):
                if str(rule.get("match", "")) not in target:
                    continue
                want = rule.get("method")
                if want and str(want).upper() != method:
                    continue
                body_match = rule.get("match_body")
                if body_match is not None and (text is None
                                               or str(body_match) not in text):
                    continue
                times = rule.get("times", self.default_times)
                if times is not None and times >= 0 and self.used[i] >= times:
                    continue
                self.used[i] += 1
                self._save_state()
                return Fault(rule, i)
        return None

    def _save_state(self):
        if not self.state_path:
            return
        state = []
        for rule, used in zip(self.rules, self.used):
            times = rule.get("times", self.default_times)
            left = None if times is None or times < 0 else times - used
            state.append({"rule": rule, "used": used, "remaining": left})
        atomic_write(self.state_path, json.dumps(state, indent=1))


# ---------------------------------------------------------------- media

class Media:
    """ffmpeg-made audio and video, cached under STATE/media/."""

    def __init__(self, state_dir, ffmpeg="ffmpeg", ffprobe="ffprobe"):
        self.dir = os.path.join(state_dir, "media")
        os.makedirs(self.dir, exist_ok=True)
        self.ffmpeg = shutil.which(ffmpeg) or ffmpeg
        self.ffprobe = shutil.which(ffprobe) or ffprobe
        self.lock = threading.Lock()
        self.key_locks = {}

    def _cached(self, key, ext, argv_for):
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:24] + "." + ext
        path = os.path.join(self.dir, name)
        with self.lock:
            klock = self.key_locks.setdefault(name, threading.Lock())
        with klock:
            if not os.path.exists(path):
                tmp = path + ".tmp." + ext
                argv = argv_for(tmp)
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=300)
                if proc.returncode != 0:
                    raise RuntimeError("ffmpeg failed: %s" %
                                       proc.stderr.decode(errors="replace"))
                os.replace(tmp, path)
        return path

    def audio(self, duration, fmt="mp3_44100_128", freq=440):
        """Bytes of a sine tone of `duration` s in ElevenLabs `fmt`."""
        codec, rate, extra = (fmt.split("_") + ["", ""])[:3]
        rate = int(rate)
        d = "%.3f" % max(0.05, duration)
        src = ["-f", "lavfi", "-i",
               "sine=frequency=%d:sample_rate=%d:duration=%s" % (freq, rate, d)]
        if codec == "mp3":
            out = ["-c:a", "libmp3lame", "-b:a", "%sk" % extra, "-f", "mp3"]
            ext = "mp3"
        elif codec == "pcm":
            out = ["-c:a", "pcm_s16le", "-f", "s16le"]
            ext = "pcm"
        elif codec == "wav":
            out = ["-c:a", "pcm_s16le", "-f", "wav"]
            ext = "wav"
        elif codec == "opus":
            out = ["-c:a", "libopus", "-b:a", "%sk" % extra, "-f", "ogg"]
            ext = "ogg"
        elif codec == "ulaw":
            out = ["-c:a", "pcm_mulaw", "-f", "mulaw"]
            ext = "ulaw"
        elif codec == "alaw":
            out = ["-c:a", "pcm_alaw", "-f", "alaw"]
            ext = "alaw"
        else:
            raise ValueError("unknown output format " + fmt)
        argv_for = lambda tmp: ([self.ffmpeg, "-hide_banner", "-loglevel",
                                 "error", "-nostdin", "-y"] + src +
                                ["-ac", "1", "-ar", str(rate)] + out + [tmp])
        path = self._cached(("audio", d, fmt, freq), ext, argv_for)
        with open(path, "rb") as f:
            return f.read()

    def video(self, duration, width=320, height=180):
        """Path of an H.264/AAC MP4 test pattern of `duration` seconds."""
        d = "%.3f" % max(0.2, duration)
        size = "%dx%d" % (width, height)

        def argv_for(tmp):
            return [self.ffmpeg, "-hide_banner", "-loglevel", "error",
                    "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=%s:rate=10:duration=%s"
                    % (size, d),
                    "-f", "lavfi", "-i",
                    "sine=frequency=330:sample_rate=44100:duration=%s" % d,
                    "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k",
                    "-shortest", "-movflags", "+faststart", "-f", "mp4", tmp]
        return self._cached(("video", d, size), "mp4", argv_for)

    def image(self, width=320, height=180):
        """Path of a solid-colour JPEG (thumbnails)."""
        size = "%dx%d" % (width, height)

        def argv_for(tmp):
            return [self.ffmpeg, "-hide_banner", "-loglevel", "error",
                    "-nostdin", "-y", "-f", "lavfi", "-i",
                    "color=c=0x336699:s=%s:d=1" % size, "-frames:v", "1",
                    "-c:v", "mjpeg", "-f", "image2", tmp]
        return self._cached(("image", size), "jpg", argv_for)

    def probe_duration(self, path):
        """Duration in seconds of a media file, or None."""
        try:
            proc = subprocess.run(
                [self.ffprobe, "-v", "error", "-show_entries",
                 "format=duration", "-of", "default=nw=1:nk=1", path],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            return float(proc.stdout.decode().strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            return None


def small_size(width, height, cap=320):
    """Scale (width, height) down so the long side is <= cap; even sides."""
    scale = min(1.0, cap / float(max(width, height)))
    w = max(16, int(width * scale) // 2 * 2)
    h = max(16, int(height * scale) // 2 * 2)
    return w, h


# ---------------------------------------------------------------- the app base

class App:
    """Base of one provider fake.  Subclasses implement route(),
    authenticate() and fault_response(); handlers return a Response or
    raise HTTPError."""

    kind = "base"
    server_name = "fake"

    def __init__(self, core):
        self.core = core
        self.args = core.args

    def route(self, req):
        raise NotImplementedError

    def authenticate(self, req):
        pass

    # Named faults (besides 429, 5xx, error_NNN) this app answers at once
    # through fault_response(); all other names reach the handler.
    extra_status_faults = ()

    def is_status_fault(self, fault):
        name = fault.name
        return (name in STATUS_FAULTS or name.startswith("error_") or
                name.isdigit() or name in self.extra_status_faults)

    def fault_response(self, fault, req):
        return None

    def malformed_body(self, req):
        return b'{"error": null, "data": {"id": "broken", "status": '

    def on_partial_body(self, req):
        """Called with req.partial_body before a `reset` after N bytes."""

    def serve_file(self, req, path, content_type):
        if req.method not in ("GET", "HEAD"):
            raise HTTPError(Response.text(405, "method not allowed"))
        with open(path, "rb") as f:
            data = f.read()
        return Response(200, data, content_type,
                        [("Accept-Ranges", "none")])


# ---------------------------------------------------------------- the server

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def _dispatch(self):
        self.server.core.dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch
    do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, fmt, *args):
        pass

    @property
    def server_version(self):
        return self.server.core.app.server_name


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def finish_request(self, request, client_address):
        ctx = self.core.ssl_ctx
        if ctx is None:
            return super().finish_request(request, client_address)
        # TLS handshake here, in the worker thread, so one slow or broken
        # client cannot block the accept loop.
        request.settimeout(30)
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass


class FakeCore:
    """Runs one App behind an HTTP(S) server, with faults and accounting."""

    def __init__(self, args, app_cls):
        self.args = args
        self.state_dir = os.path.abspath(args.state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.counters = {}
        self.faults = RuleBook(os.path.join(self.state_dir, "faults.json"),
                               default_times=1,
                               state_path=os.path.join(self.state_dir,
                                                       "faults_state.json"))
        self.media = Media(self.state_dir, args.ffmpeg, args.ffprobe)
        self.ssl_ctx = None
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            self.ssl_ctx = ctx
        self.scheme = "https" if self.ssl_ctx else "http"
        self.app = app_cls(self)
        self.httpd = FakeHTTPServer((args.host, args.port), Handler)
        self.httpd.core = self
        self.port = self.httpd.server_address[1]

    # -- accounting

    def path(self, *names):
        return os.path.join(self.state_dir, *names)

    def count(self, name, n=1):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n
            atomic_write(self.path("submissions.json"),
                         json.dumps(self.counters, indent=1, sort_keys=True))

    def append_jsonl(self, name, obj):
        line = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
        with self.log_lock:
            fd = os.open(self.path(name),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def log_server(self, text):
        with self.log_lock:
            with open(self.path("server.log"), "a", encoding="utf-8") as f:
                f.write("%s %s\n" % (now_iso(), text))

    def write_ready_files(self):
        atomic_write(self.path("url"), "%s://127.0.0.1:%d\n" %
                     (self.scheme, self.port))
        atomic_write(self.path("pid"), "%d\n" % os.getpid())
        atomic_write(self.path("port"), "%d\n" % self.port)

    # -- body reading

    def _read_chunked(self, h, limit):
        out = bytearray()
        while True:
            line = h.rfile.readline(65537)
            if not line:
                break
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            want = size if limit is None else min(size, limit - len(out))
            out += h.rfile.read(want)
            if limit is not None and len(out) >= limit:
                h.close_connection = True
                break
            h.rfile.read(size - want + 2)
        return bytes(out)

    def read_body(self, h, limit=None):
        """Read the request body (or its first `limit` bytes)."""
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(h, limit)
        length = int(h.headers.get("Content-Length") or 0)
        if limit is not None and limit < length:
            h.close_connection = True
            length = limit
        out = bytearray()
        while len(out) < length:
            chunk = h.rfile.read(min(1 << 20, length - len(out)))
            if not chunk:
                h.close_connection = True
                break
            out += chunk
        return bytes(out)

    # -- the pipeline

    def dispatch(self, h):
        req = Request(h, self)
        t0 = time.time()
        fault = None
        body_read = False
        try:
            try:
                req.route = route = self.app.route(req)
                if route.auth:
                    self.app.authenticate(req)
                fault = req.fault = self.faults.pick(req.method, req.raw_path)
                late = bool(fault and fault.get("after_handler"))
                if fault and fault.name == "reset" and not late:
                    after = fault.get("after_bytes")
                    if after is not None:
                        req.partial_body = self.read_body(h, int(after))
                        self.app.on_partial_body(req)
                    else:
                        req.body = self.read_body(h)
                    self._log(req, None, fault, t0)
                    self._reset(h)
                    return
                req.body = self.read_body(h)
                body_read = True
                if fault and fault.name == "stall" and not late:
                    time.sleep(float(fault.get("seconds", 30)))
                elif fault and self.app.is_status_fault(fault) and not late:
                    resp = self.app.fault_response(fault, req)
                    if resp is not None:
                        raise HTTPError(resp)
                resp = route.fn(req)
                if late and fault.name == "stall":
                    # done (and counted); the answer is held back, as a
                    # provider still sending it while the client dies
                    time.sleep(float(fault.get("seconds", 30)))
                if late and self._after_handler(h, req, fault, t0):
                    return
                if late and self.app.is_status_fault(fault):
                    resp = self.app.fault_response(fault, req) or resp
            except HTTPError as e:
                resp = e.response
            if not body_read:
                self._discard_body(h)
        except Exception:  # a bug in the fake: say so loudly
            self.log_server(traceback.format_exc())
            resp = Response.json(500, {"error": {
                "message": "fake server bug, see server.log",
                "type": "fake_bug"}})
            h.close_connection = True
        self._send(h, req, resp, fault, t0)

    def _after_handler(self, h, req, fault, t0):
        """A fault with "after_handler": the request was carried out (the
        job made and counted); now its answer is lost.  True when the
        connection was dropped (a `reset`); a status fault replaces the
        answer in dispatch()."""
        if fault.name != "reset":
            return False
        self._log(req, None, fault, t0)
        self._reset(h)
        return True

    def _discard_body(self, h):
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        chunked = h.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if length > (64 << 20):
            h.close_connection = True
            return
        if length or chunked:
            self.read_body(h)

    def _reset(self, h):
        """Drop the connection with a TCP RST, answering nothing."""
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (h.wfile, h.rfile):
            try:
                f.close()
            except OSError:
                pass
        try:
            h.connection.close()
        except OSError:
            pass

    def _send(self, h, req, resp, fault, t0):
        """Log, then answer: a client that got its answer always finds the
        request in requests.jsonl already."""
        status, body, ctype = resp.status, resp.body, resp.content_type
        headers = list(resp.headers)
        name = fault.name if fault else None
        if name == "malformed_json":
            status, ctype = 200, "application/json"
            body = self.app.malformed_body(req)
        if name in ("huge_body", "drip"):
            return self._send_hostile(h, req, fault, t0)
        if name == "wrong_content_type":
            # A proxy or captive portal answering for the provider.
            status = int(fault.get("status", 200))
            ctype = fault.get("content_type", "text/html; charset=utf-8")
            body = fault.get("body", "<!DOCTYPE html><html><body><h1>Welcome to Hotel WiFi</h1>"
                                     "<p>Please log in.</p></body></html>").encode()
        if name == "redirect":
            status = int(fault.get("status", 302))
            headers.append(("Location", fault.get("location", "http://169.254.169.254/latest/meta-data/")))
            ctype, body = "text/plain", b"moved\n"
        out, declared = body, len(body)
        if name == "truncate":
            # A 204 has no body to cut: answer 200 with a promised one.
            status = 200 if status in (204, 304) else status
            declared = max(len(body), 64)
            out = body[:len(body) // 2]
        self._log(req, status, fault, t0)
        try:
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            if ctype:
                h.send_header("Content-Type", ctype)
            if status != 204 and status != 304:
                h.send_header("Content-Length", str(declared))
            if name == "truncate" or resp.close or h.close_connection:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            if req.method != "HEAD" and out:
                h.wfile.write(out)
            h.wfile.flush()
            if name == "truncate":
                h.connection.shutdown(socket.SHUT_RDWR)
        except (OSError, ssl.SSLError):
            h.close_connection = True

    def _send_hostile(self, h, req, fault, t0):
        """`huge_body`: 200 JSON of `bytes` bytes (default 256 MiB), streamed
        (never held in memory), with Content-Length unless `chunked`.
        `drip`: 200 JSON, one byte every `interval` s (default 1) for up to
        `seconds` (default 600): a server that never quite stalls."""
        name = fault.name
        self._log(req, 200, fault, t0)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.close_connection = True
            h.send_header("Connection", "close")
            if name == "huge_body":
                size = int(fault.get("bytes", 256 << 20))
                chunked = bool(fault.get("chunked"))
                if chunked:
                    h.send_header("Transfer-Encoding", "chunked")
                else:
                    h.send_header("Content-Length", str(size))
                h.end_headers()
                block = b'{"pad": "' + b"x" * ((1 << 16) - 9)
                sent = 0
                while sent < size:
                    piece = block[:min(len(block), size - sent)]
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    sent += len(piece)
                if chunked:
                    h.wfile.write(b"0\r\n\r\n")
            else:
                h.end_headers()
                interval = float(fault.get("interval", 1))
                end = time.monotonic() + float(fault.get("seconds", 600))
                for b in itertools.cycle(b'{"data": [' + b" " * 64):
                    if time.monotonic() > end:
                        break
                    h.wfile.write(bytes([b]))
                    h.wfile.flush()
                    time.sleep(interval)
            h.wfile.flush()
        except (OSError, ssl.SSLError):
            pass

    def _log(self, req, status, fault, t0):
        headers = {}
        for k, v in req.headers.items():
            headers[k] = headers[k] + ", " + v if k in headers else v
        body = req.body if req.partial_body is None else req.partial_body
        entry = {"ts": now_iso(), "method": req.method, "path": req.raw_path,
                 "headers": headers, "body_len": len(body), "json": None,
                 "status": status, "fault": fault.name if fault else None,
                 "ms": int((time.time() - t0) * 1000)}
        if body and "json" in (req.header("Content-Type") or ""):
            ok, value, _ = req.parsed_json()
            if ok:
                entry["json"] = value
        if self.faults.load_error:
            entry["faults_error"] = self.faults.load_error
        self.append_jsonl("requests.jsonl", entry)

    # -- running

    def serve(self):
        self.write_ready_files()
        print("fake %s listening on %s://127.0.0.1:%d" %
              (self.app.kind, self.scheme, self.port), file=sys.stderr,
              flush=True)
        self.httpd.serve_forever(poll_interval=0.2)
        self.httpd.server_close()


def retry_after_headers(fault, default=None):
    """Retry-After (and friends) as a 429 fault asks for them."""
    headers = []
    ra = fault.get("retry_after", default)
    if fault.get("retry_after_date") is not None:
        ra = http_date(float(fault.get("retry_after_date")))
    if ra is not None:
        headers.append(("Retry-After", str(ra)))
    if fault.get("retry_after_ms") is not None:
        headers.append(("retry-after-ms", str(fault.get("retry_after_ms"))))
    if fault.get("x_should_retry") is not None:
        headers.append(("x-should-retry",
                        "true" if fault.get("x_should_retry") else "false"))
    for k, v in (fault.get("headers") or {}).items():
        headers.append((str(k), str(v)))
    return headers


def fault_status(fault):
    """HTTP status a status-type fault asks for (429, 500, error_403 ...)."""
    name = fault.name
    if name.startswith("error_"):
        name = name[len("error_"):]
    try:
        return int(name)
    except ValueError:
        return 500
