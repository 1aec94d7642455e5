"""fake_runway: a strict fake of the Runway developer API (video tasks).

POST /v1/text_to_video and /v1/image_to_video -> {"id"}; GET
/v1/tasks/{id} walks PENDING -> THROTTLED -> RUNNING over --polls polls
(default 3) and answers SUCCEEDED with output [URL of a real MP4 served
here under /files/runway/]; DELETE /v1/tasks/{id} cancels (or deletes a
finished task).  Every API call needs `Authorization: Bearer KEY` and
`X-Runway-Version: 2024-11-06`.  Errors are {"error": "<message>"}, body
validation adds "issues".
"""

import json
import re
import threading
import time
import uuid

from fakecore import (App, HTTPError, Response, Route, atomic_write,
                      fault_status, is_int, new_id, now_iso,
                      retry_after_headers, small_size, utf16_len)

API_VERSION = "2024-11-06"
GEN4_RATIOS = ["1280:720", "720:1280", "1104:832", "832:1104", "960:960",
               "1584:672"]
VEO_RATIOS = ["1280:720", "720:1280", "1080:1920", "1920:1080"]
# model -> endpoints it serves, allowed durations, allowed ratios, default
MODELS = {
    "gen4.5": {"kinds": {"text", "image"}, "durations": range(2, 11),
               "ratios": GEN4_RATIOS, "default_duration": 5},
    "gen4_turbo": {"kinds": {"image"}, "durations": range(2, 11),
                   "ratios": GEN4_RATIOS, "default_duration": 10},
    "gen3a_turbo": {"kinds": {"image"}, "durations": (5, 10),
                    "ratios": ["1280:768", "768:1280"],
                    "default_duration": 10},
    "veo3": {"kinds": {"text", "image"}, "durations": (4, 6, 8),
             "ratios": VEO_RATIOS, "default_duration": 8},
    "veo3.1": {"kinds": {"text", "image"}, "durations": (4, 6, 8),
               "ratios": VEO_RATIOS, "default_duration": 8},
    "veo3.1_fast": {"kinds": {"text", "image"}, "durations": (4, 6, 8),
                    "ratios": VEO_RATIOS, "default_duration": 8},
}
TASK_RE = re.compile(r"^/v1/tasks/([^/]+)/?$")
FILE_RE = re.compile(r"^/files/runway/([0-9a-f-]+)\.mp4$")
STEPS = ["PENDING", "THROTTLED", "RUNNING"]


class RunwayApp(App):
    kind = "runway"
    server_name = "fake-runway"

    def __init__(self, core):
        super().__init__(core)
        self.tasks = {}
        self.lock = threading.Lock()

    def err(self, status, message, headers=None, **extra):
        body = {"error": message}
        body.update(extra)
        return HTTPError(Response.json(status, body, headers))

    def route(self, req):
        path = req.path.rstrip("/")
        if path in ("/v1/text_to_video", "/v1/image_to_video"):
            if req.method != "POST":
                raise self.err(405, "Method not allowed")
            return Route(self.create)
        if TASK_RE.match(req.path):
            if req.method not in ("GET", "DELETE"):
                raise self.err(405, "Method not allowed")
            return Route(self.task if req.method == "GET" else self.cancel)
        if FILE_RE.match(req.path):
            return Route(self.download, auth=False)
        raise self.err(404, "Not found")

    def authenticate(self, req):
        auth = req.header("Authorization")
        if not auth or not auth.startswith("Bearer "):
            raise self.err(401, "Missing or malformed Authorization header. "
                           "Expected 'Bearer <API key>'.")
        if auth != "Bearer " + self.args.api_key:
            raise self.err(401, "Invalid API key.")
        version = req.header("X-Runway-Version")
        if version is None:
            raise self.err(400, "You must specify the X-Runway-Version "
                           "header.")
        if version != API_VERSION:
            raise self.err(400, "Invalid API version %r; supported: %s"
                           % (version, API_VERSION))

    def fault_response(self, fault, req):
        status = fault_status(fault)
        msgs = {400: "Validation of body failed", 401: "Invalid API key.",
                404: "Not found", 429: "You have exceeded the rate limit.",
                500: "Internal server error", 502: "Bad gateway",
                503: "Service unavailable", 504: "Gateway timeout"}
        return self.err(status, fault.get("message", msgs.get(
            status, "Error %d" % status)),
            headers=retry_after_headers(fault)).response

    def malformed_body(self, req):
        return b'{"id": "1b2c", "status": "SUCC'

    # -- creating

    def issue(self, path, message):
        return self.err(400, "Validation of body failed", issues=[
            {"path": path, "message": message}])

    def parse(self, req):
        if req.media_type() != "application/json":
            raise self.err(400, "Content-Type must be application/json")
        ok, body, _ = req.parsed_json()
        if not ok:
            raise self.err(400, "Invalid JSON in request body")
        if not isinstance(body, dict):
            raise self.issue([], "Expected object")
        return body

    def check_image(self, img):
        def ok_uri(u):
            return isinstance(u, str) and (
                u.startswith("https://") or u.startswith("data:image/"))
        if isinstance(img, str):
            if not ok_uri(img):
                raise self.issue(["promptImage"], "Must be an HTTPS URL or "
                                 "a data URI")
            return
        if isinstance(img, list) and 1 <= len(img) <= 2:
            positions = set()
            for i, item in enumerate(img):
                if not isinstance(item, dict) or not ok_uri(item.get("uri")):
                    raise self.issue(["promptImage", i, "uri"],
                                     "Must be an HTTPS URL or a data URI")
                pos = item.get("position", "first")
                if pos not in ("first", "last") or pos in positions:
                    raise self.issue(["promptImage", i, "position"],
                                     "Must be 'first' or 'last', once each")
                positions.add(pos)
            return
        raise self.issue(["promptImage"], "Required: a URL, data URI or list "
                         "of {uri, position}")

    def create(self, req):
        kind = "image" if req.path.rstrip("/").endswith("image_to_video") \
            else "text"
        body = self.parse(req)
        model = body.get("model")
        if not isinstance(model, str):
            raise self.issue(["model"], "Required")
        spec = MODELS.get(model)
        if spec is None or kind not in spec["kinds"]:
            raise self.issue(["model"], "Invalid model %r for %s_to_video"
                             % (model, kind))
        prompt = body.get("promptText")
        if kind == "text" or prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise self.issue(["promptText"], "Required non-empty string")
            if utf16_len(prompt) > 1000:
                raise self.issue(["promptText"], "String must contain at most "
                                 "1000 character(s)")
        if kind == "image":
            self.check_image(body.get("promptImage"))
        elif "promptImage" in body:
            raise self.issue(["promptImage"], "Not allowed for text_to_video")
        ratio = body.get("ratio")
        if ratio not in spec["ratios"]:
            raise self.issue(["ratio"], "Invalid enum value. Expected %s"
                             % " | ".join(repr(r) for r in spec["ratios"]))
        duration = body.get("duration", spec["default_duration"])
        if not is_int(duration) or duration not in spec["durations"]:
            raise self.issue(["duration"], "Invalid duration %r for %s"
                             % (duration, model))
        seed = body.get("seed")
        if seed is not None and (not is_int(seed) or
                                 not 0 <= seed <= 4294967295):
            raise self.issue(["seed"], "Must be an integer 0-4294967295")
        cm = body.get("contentModeration")
        if cm is not None and (not isinstance(cm, dict) or cm.get(
                "publicFigureThreshold", "auto") not in ("auto", "low")):
            raise self.issue(["contentModeration"], "Invalid")
        task_id = str(uuid.uuid4())
        fault = req.fault.name if req.fault else None
        w, h = (int(x) for x in ratio.split(":"))
        task = {"id": task_id, "createdAt": now_iso(), "status": "PENDING",
                "polls": 0, "model": model, "duration": duration,
                "ratio": ratio, "width": w, "height": h,
                "fail": fault == "status_failed",
                "fail_rule": dict(req.fault.rule) if fault == "status_failed"
                else {},
                "stuck": fault == "status_stuck"}
        with self.lock:
            self.tasks[task_id] = task
            self.save()
        self.core.count("runway_create")
        return Response.json(200, {"id": task_id})

    def save(self):
        atomic_write(self.core.path("runway_tasks.json"),
                     json.dumps(self.tasks, indent=1, sort_keys=True))

    # -- polling

    def task(self, req):
        task_id = TASK_RE.match(req.path).group(1)
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.get("deleted"):
                raise self.err(404, "Task not found")
            self.advance(task, req.fault)
            self.save()
            t = dict(task)
        out = {"id": t["id"], "createdAt": t["createdAt"],
               "status": t["status"]}
        if t["status"] == "RUNNING":
            out["progress"] = t.get("progress", 0.5)
        elif t["status"] == "SUCCEEDED":
            exp = int(time.time()) + 86400
            out["output"] = ["%s/files/runway/%s.mp4?_jwt=%s&exp=%d" % (
                req.base_url(), t["id"], new_id(12), exp)]
        elif t["status"] == "FAILED":
            out["failure"] = t["failure"]
            out["failureCode"] = t["failureCode"]
        return Response.json(200, out)

    def advance(self, task, fault):
        if task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return
        task["polls"] += 1
        n = task["polls"]
        name = fault.name if fault else None
        if name == "status_stuck":
            task["stuck"] = True
        if name == "status_failed":
            task["fail"], task["fail_rule"] = True, dict(fault.rule)
            task["fail_rule"].setdefault("after_polls", 0)
        if task["stuck"]:
            task["status"] = "THROTTLED" if n > 1 else "PENDING"
            return
        polls = self.args.polls if self.args.polls is not None else 3
        rule = task["fail_rule"]
        limit = rule.get("after_polls", polls) if task["fail"] else polls
        if n <= limit:
            step = (n - 1) * len(STEPS) // max(1, limit)
            task["status"] = STEPS[min(step, len(STEPS) - 1)]
            task["progress"] = round(n / float(limit + 1), 2)
            return
        if task["fail"]:
            task["status"] = "FAILED"
            task["failure"] = rule.get("message", "Task failed: injected "
                                       "failure")
            task["failureCode"] = rule.get("code", "INTERNAL.BAD_OUTPUT.CODE01")
            return
        task["status"] = "SUCCEEDED"

    def cancel(self, req):
        task_id = TASK_RE.match(req.path).group(1)
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.get("deleted"):
                raise self.err(404, "Task not found")
            if task["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                task["deleted"] = True
            else:
                task["status"] = "CANCELLED"
            self.save()
        self.core.count("runway_cancel")
        return Response.empty(204)

    def download(self, req):
        task_id = FILE_RE.match(req.path).group(1)
        with self.lock:
            task = self.tasks.get(task_id)
            ok = task is not None and task["status"] == "SUCCEEDED"
        if not ok:
            raise HTTPError(Response.text(404, "Not Found"))
        w, h = small_size(task["width"], task["height"])
        path = self.core.media.video(self.args.clip_seconds or
                                     task["duration"], w, h)
        return self.serve_file(req, path, "video/mp4")
