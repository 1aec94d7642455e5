"""fake_heygen: a strict fake of HeyGen v2 avatar video (plus v1 upload).

POST /v1/asset (raw bytes, checked against their Content-Type), POST
/v2/video/generate, GET /v1/video_status.get?video_id=..., GET
/v1/video.list (newest first, `title` kept from generate as video_title,
at most --list-page-size videos a page whatever `limit` asks, the next page
by the opaque `token` it answered, null on the last page), and the
rendered files under GET /files/... (real MP4s made by ffmpeg; no API key,
like HeyGen's signed links).  A job answers `pending`, then `processing`,
for --polls status requests (default 2) and `completed` on the next one.
v1 endpoints answer errors as {"code": <int>, "message", "data": null},
v2 endpoints as {"error": {"code", "message"}, "data": null}.
"""

import json
import os
import re
import threading
import time

from fakecore import (App, HTTPError, Response, Route, atomic_write,
                      fault_status, is_int, is_num, new_id,
                      retry_after_headers, small_size)

ASSET_TYPES = {"audio/mpeg": ("audio", "mp3"), "image/png": ("image", "png"),
               "image/jpeg": ("image", "jpg"), "video/mp4": ("video", "mp4"),
               "video/webm": ("video", "webm")}
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
FILE_RE = re.compile(r"^/files/(videos|thumbs|assets)/([0-9a-f]+)\.(\w+)$")
NEW_CODES = {401: "unauthorized", 402: "insufficient_credit",
             403: "forbidden", 404: "not_found", 429: "rate_limit_exceeded",
             500: "internal_error", 502: "bad_gateway",
             503: "service_unavailable", 504: "gateway_timeout",
             400: "invalid_parameter"}


def sniff(data):
    """The media type the bytes really are, or None."""
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and
                              data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return None


class HeyGenApp(App):
    kind = "heygen"
    server_name = "fake-heygen"

    def __init__(self, core):
        super().__init__(core)
        self.assets = {}
        self.jobs = {}
        self.jobs_lock = threading.Lock()
        self.list_tokens = {}   # token -> offset into the newest-first list
        self.upload_dir = core.path("uploads", "heygen")
        os.makedirs(self.upload_dir, exist_ok=True)

    # -- error shapes

    def v1_error(self, status, code, message, headers=None):
        return HTTPError(Response.json(status, {"code": code,
                                                "message": message,
                                                "data": None}, headers))

    def v2_error(self, status, code, message, headers=None):
        return HTTPError(Response.json(status, {
            "error": {"code": code, "message": message}, "data": None},
            headers))

    def error_for(self, req, status, code, message, headers=None):
        if req.path.startswith("/v2/"):
            return self.v2_error(status, code, message, headers)
        return self.v1_error(status, code, message, headers)

    def route(self, req):
        table = {"/v1/asset": ("POST", self.upload),
                 "/v2/video/generate": ("POST", self.generate),
                 "/v1/video_status.get": ("GET", self.status),
                 "/v1/video.list": ("GET", self.video_list)}
        path = req.path.rstrip("/")
        if path in table:
            method, fn = table[path]
            if req.method != method:
                raise self.error_for(req, 405, 405, "Method Not Allowed")
            return Route(fn)
        if FILE_RE.match(req.path):
            return Route(self.download, auth=False)
        raise self.error_for(req, 404, 404, "Not Found")

    def authenticate(self, req):
        if req.header("X-Api-Key") != self.args.api_key:
            raise self.error_for(req, 401, 400112, "Unauthorized")

    def fault_response(self, fault, req):
        status = fault_status(fault)
        headers = retry_after_headers(fault)
        default = 400112 if status == 401 else NEW_CODES.get(
            status, "error_%d" % status)
        code = fault.get("code", default)
        msg = fault.get("message", "Unauthorized" if status == 401 else
                        "Injected error %d" % status)
        if req.path.startswith("/v2/"):
            return self.v2_error(status, code, msg, headers).response
        return self.v1_error(status, code, msg, headers).response

    def malformed_body(self, req):
        return b'{"code": 100, "data": {"id": "broken", "status": "compl'

    # -- uploads

    def upload(self, req):
        ctype = req.media_type()
        if ctype not in ASSET_TYPES:
            raise self.v1_error(400, 400542, "Unsupported content type: %s. "
                                "Use one of %s" % (ctype or "(none)",
                                                   ", ".join(ASSET_TYPES)))
        if not req.body:
            raise self.v1_error(400, 40001, "Missing file content")
        real = sniff(req.body)
        if real != ctype:
            raise self.v1_error(400, 400543, "The file type does not match "
                                "the Content-Type %s" % ctype)
        file_type, ext = ASSET_TYPES[ctype]
        asset_id = new_id(16)
        path = os.path.join(self.upload_dir, "%s.%s" % (asset_id, ext))
        atomic_write(path, req.body)
        url = "%s/files/assets/%s.%s" % (req.base_url(), asset_id, ext)
        with self.jobs_lock:
            self.assets[asset_id] = {"path": path, "type": file_type,
                                     "url": url}
        self.core.count("heygen_asset")
        return Response.json(200, {"code": 100, "data": {
            "id": asset_id, "name": asset_id, "file_type": file_type,
            "folder_id": "", "meta": None, "created_ts": int(time.time()),
            "url": url, "image_key": None}, "msg": None, "message": None})

    # -- generation

    def parse(self, req):
        if req.media_type() != "application/json":
            raise self.v2_error(400, "invalid_parameter",
                                "Content-Type must be application/json")
        ok, body, err = req.parsed_json()
        if not ok:
            raise self.v2_error(400, "invalid_parameter",
                                "Invalid JSON body: %s" % err)
        if not isinstance(body, dict):
            raise self.v2_error(400, "invalid_parameter",
                                "Request body must be an object")
        return body

    def missing(self, what):
        return self.v2_error(400, 40001, "Missing required parameter: %s"
                             % what)

    def bad(self, what, why):
        return self.v2_error(400, "invalid_parameter",
                             "Invalid parameter %s: %s" % (what, why))

    def check_character(self, c, where):
        if not isinstance(c, dict):
            raise self.missing(where)
        t = c.get("type")
        if t == "avatar":
            if not isinstance(c.get("avatar_id"), str) or not c["avatar_id"]:
                raise self.missing(where + ".avatar_id")
            style = c.get("avatar_style", "normal")
            if style not in ("normal", "circle", "closeUp"):
                raise self.bad(where + ".avatar_style", "unknown style")
        elif t == "talking_photo":
            if not isinstance(c.get("talking_photo_id"), str) or \
                    not c["talking_photo_id"]:
                raise self.missing(where + ".talking_photo_id")
        else:
            raise self.bad(where + ".type",
                           "must be avatar or talking_photo")

    def check_voice(self, v, where):
        """Validates one voice; returns its duration estimate in seconds."""
        if not isinstance(v, dict):
            raise self.missing(where)
        t = v.get("type")
        if t == "text":
            text = v.get("input_text")
            if not isinstance(text, str) or not text.strip():
                raise self.missing(where + ".input_text")
            if len(text) > 5000:
                raise self.bad(where + ".input_text", "longer than 5000")
            if not isinstance(v.get("voice_id"), str) or not v["voice_id"]:
                raise self.missing(where + ".voice_id")
            speed = v.get("speed", 1.0)
            if not is_num(speed) or not 0.5 <= speed <= 1.5:
                raise self.bad(where + ".speed", "must be 0.5-1.5")
            if self.args.blocked_word and \
                    self.args.blocked_word.lower() in text.lower():
                raise self.v2_error(400, 400105, "Input text contains "
                                    "blocked words")
            return max(1.0, 0.06 * len(text) / speed)
        if t == "audio":
            has_id = "audio_asset_id" in v
            has_url = "audio_url" in v
            if has_id == has_url:
                raise self.bad(where, "exactly one of audio_asset_id or "
                               "audio_url is required")
            if has_url:
                url = v["audio_url"]
                if not isinstance(url, str) or not url.startswith(
                        ("http://", "https://")):
                    raise self.bad(where + ".audio_url", "must be a URL")
                return 5.0
            with self.jobs_lock:
                asset = self.assets.get(v["audio_asset_id"])
            if asset is None or asset["type"] != "audio":
                raise self.v2_error(400, "asset_not_found", "Audio asset %s "
                                    "not found" % v["audio_asset_id"])
            return self.core.media.probe_duration(asset["path"]) or 5.0
        if t == "silence":
            d = v.get("duration", 1.0)
            if not is_num(d) or not 1 <= float(d) <= 100:
                raise self.bad(where + ".duration", "must be 1-100")
            return float(d)
        raise self.bad(where + ".type", "must be text, audio or silence")

    def check_background(self, b, where):
        if b is None:
            return
        if not isinstance(b, dict):
            raise self.bad(where, "must be an object")
        t = b.get("type")
        if t == "color":
            if not isinstance(b.get("value"), str) or \
                    not COLOR_RE.match(b["value"]):
                raise self.bad(where + ".value", "must be #RRGGBB")
        elif t in ("image", "video"):
            if not (b.get("url") or b.get("image_asset_id") or
                    b.get("video_asset_id")):
                raise self.missing(where + ".url")
        else:
            raise self.bad(where + ".type", "must be color, image or video")

    def check_dimension(self, dim):
        if dim is None:
            return 1920, 1080
        if not isinstance(dim, dict):
            raise self.bad("dimension", "must be an object")
        out = []
        for key in ("width", "height"):
            v = dim.get(key)
            if not is_int(v) or not 128 <= v <= 4096 or v % 2:
                raise self.bad("dimension." + key,
                               "must be an even integer 128-4096")
            out.append(v)
        return tuple(out)

    def generate(self, req):
        body = self.parse(req)
        inputs = body.get("video_inputs")
        if inputs is None:
            raise self.missing("video_inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 50:
            raise self.bad("video_inputs", "must hold 1 to 50 scenes")
        duration = 0.0
        for i, scene in enumerate(inputs):
            where = "video_inputs[%d]" % i
            if not isinstance(scene, dict):
                raise self.bad(where, "must be an object")
            if "character" not in scene:
                raise self.missing(where + ".character")
            self.check_character(scene["character"], where + ".character")
            if "voice" not in scene:
                raise self.missing(where + ".voice")
            duration += self.check_voice(scene["voice"], where + ".voice")
            self.check_background(scene.get("background"),
                                  where + ".background")
        width, height = self.check_dimension(body.get("dimension"))
        for key, typ in (("title", str), ("callback_id", str),
                         ("callback_url", str), ("test", bool),
                         ("caption", bool)):
            if key in body and not isinstance(body[key], typ):
                raise self.bad(key, "wrong type")
        video_id = new_id(16)
        fail = bool(req.fault and req.fault.name == "status_failed")
        job = {"id": video_id, "polls": 0, "duration": round(duration, 3),
               "width": width, "height": height, "created_at": int(time.time()),
               "callback_id": body.get("callback_id"), "status": "pending",
               "fail": fail, "stuck": bool(req.fault and
                                           req.fault.name == "status_stuck"),
               "fail_after": req.fault.get("after_polls") if fail else None,
               "fail_rule": dict(req.fault.rule) if fail else {},
               "title": body.get("title")}
        with self.jobs_lock:
            job["seq"] = len(self.jobs)
            self.jobs[video_id] = job
            self.save_jobs()
        self.core.count("heygen_generate")
        return Response.json(200, {"error": None,
                                   "data": {"video_id": video_id}})

    def save_jobs(self):
        atomic_write(self.core.path("heygen_jobs.json"),
                     json.dumps(self.jobs, indent=1, sort_keys=True))

    # -- the video list (look-ups, never paid)

    def video_list(self, req):
        for name in req.query:
            if name not in ("limit", "token", "folder_id"):
                raise self.v1_error(400, 40001, "Unknown parameter: %s" % name)
        limit = req.q("limit", "10")
        if not re.match(r"^[0-9]+$", limit) or not 0 <= int(limit) <= 100:
            raise self.v1_error(400, 40001, "limit must be an integer "
                                "from 0 to 100")
        token = req.q("token")
        with self.jobs_lock:
            if token is not None and token not in self.list_tokens:
                raise self.v1_error(400, 40001, "Invalid pagination token")
            start = self.list_tokens.get(token, 0) if token else 0
            jobs = sorted(self.jobs.values(), key=lambda j: (j["created_at"], j.get("seq", 0)), reverse=True)
            size = min(int(limit) or 10, self.args.list_page_size)
            page = jobs[start:start + size]
            nxt = None
            if start + size < len(jobs):
                nxt = "pg_" + new_id(12) + "+/="     # opaque: the client must escape it
                self.list_tokens[nxt] = start + size
        videos = [{"video_id": j["id"], "video_title": j["title"] or "",
                   "status": j["status"], "created_at": j["created_at"],
                   "type": "GENERATED"} for j in page]
        self.core.count("heygen_video_list")
        return Response.json(200, {"code": 100, "message": None,
                                   "data": {"videos": videos, "token": nxt}})

    # -- polling

    def status(self, req):
        video_id = req.q("video_id")
        if not video_id:
            raise self.v1_error(400, 40001, "Missing required parameter: "
                                "video_id")
        with self.jobs_lock:
            job = self.jobs.get(video_id)
            if job is None:
                raise self.v1_error(404, 40004, "Video not found")
            self.advance(job, req.fault)
            self.save_jobs()
            snap = dict(job)
        data = {"id": snap["id"], "status": snap["status"],
                "video_url": None, "video_url_caption": None,
                "thumbnail_url": None, "gif_url": None, "caption_url": None,
                "duration": None, "error": None,
                "created_at": snap["created_at"],
                "callback_id": snap["callback_id"]}
        if snap["status"] == "completed":
            base = req.base_url()
            sig = "?Expires=%d&Signature=%s" % (int(time.time()) + 7 * 86400,
                                                new_id(8))
            data.update({
                "video_url": "%s/files/videos/%s.mp4%s" % (base, snap["id"],
                                                           sig),
                "thumbnail_url": "%s/files/thumbs/%s.jpg%s" % (base,
                                                               snap["id"], sig),
                "duration": snap["duration"]})
        elif snap["status"] == "failed":
            data["error"] = snap.get("error")
        return Response.json(200, {"code": 100, "data": data,
                                   "message": "Success"})

    def advance(self, job, fault):
        """One poll moves a job along; called with jobs_lock held."""
        if job["status"] in ("completed", "failed"):
            return
        job["polls"] += 1
        n = job["polls"]
        fault_name = fault.name if fault else None
        if fault_name == "status_stuck":
            job["stuck"] = True
        if fault_name == "status_failed":
            job["fail"], job["fail_after"] = True, 0
            job["fail_rule"] = dict(fault.rule)
        if job["stuck"]:
            job["status"] = "waiting" if n > 1 else "pending"
            return
        polls = self.args.polls if self.args.polls is not None else 2
        limit = polls if job["fail_after"] is None else job["fail_after"]
        if n <= limit:
            job["status"] = ["pending", "processing"][min(1, (n - 1) * 2 //
                                                          max(1, limit))]
            return
        if job["fail"]:
            job["status"] = "failed"
            rule = job["fail_rule"]
            job["error"] = {"code": rule.get("code", "RENDER_FAILED"),
                            "message": rule.get("message",
                                                "Video rendering failed"),
                            "detail": rule.get("detail",
                                               "injected failure")}
            return
        job["status"] = "completed"

    # -- files

    def download(self, req):
        m = FILE_RE.match(req.path)
        folder, ident, ext = m.groups()
        if folder == "assets":
            with self.jobs_lock:
                asset = self.assets.get(ident)
            if asset is None:
                raise HTTPError(Response.text(404, "Not Found"))
            ctype = [k for k, v in ASSET_TYPES.items() if v[1] == ext]
            return self.serve_file(req, asset["path"],
                                   ctype[0] if ctype else
                                   "application/octet-stream")
        with self.jobs_lock:
            job = self.jobs.get(ident)
            ok = job is not None and job["status"] == "completed"
        if not ok:
            raise HTTPError(Response.text(404, "Not Found"))
        w, h = small_size(job["width"], job["height"])
        path = self.core.media.video(self.args.clip_seconds or job["duration"],
                                     w, h)
        if folder == "thumbs":
            thumb = self.core.media.image(w, h)
            return self.serve_file(req, thumb, "image/jpeg")
        return self.serve_file(req, path, "video/mp4")
