"""fake_elevenlabs: a strict fake of ElevenLabs text-to-speech.

POST /v1/text-to-speech/{voice_id}[/with-timestamps], GET /v1/models, and
the history of what was generated: GET /v1/history (voice_id, model_id,
date_after_unix, date_before_unix, sort_direction, page_size,
start_after_history_item_id), GET /v1/history/{id} and GET
/v1/history/{id}/audio (not billed), mirrored in STATE/elevenlabs_history.json.
Audio is a real sine tone made by ffmpeg, 0.06 s per character (flag
--seconds-per-char); with-timestamps spreads the characters over that
duration unevenly, as speech does (a space is short, a comma or a full
stop is a pause: CHAR_WEIGHT), so a client that guesses word times from
character counts instead of reading the alignment is caught.  Errors use the `detail` shapes: 401/400 as
{"detail": {type, code, status, message, request_id, param}}, body
validation as 422 {"detail": [{type, loc, msg, input}]}.
"""

import base64
import json
import math
import re
import time

from fakecore import (App, HTTPError, Response, Route, atomic_write,
                      fault_status, is_int, is_num, new_id,
                      retry_after_headers)

# model -> (max characters per request, credits per character)
MODELS = {
    "eleven_multilingual_v2": (10000, 1.0),
    "eleven_v3": (5000, 1.0),
    "eleven_flash_v2_5": (40000, 0.5),
    "eleven_turbo_v2_5": (40000, 0.5),
    "eleven_flash_v2": (30000, 0.5),
    "eleven_turbo_v2": (30000, 0.5),
    "eleven_monolingual_v1": (10000, 1.0),
    "eleven_multilingual_v1": (10000, 1.0),
}
DEFAULT_MODEL = "eleven_multilingual_v2"
FORMAT_RE = re.compile(
    r"^(mp3_(22050_32|24000_48|44100_(32|64|96|128|192))"
    r"|opus_48000_(32|64|96|128|192)"
    r"|pcm_(8000|16000|22050|24000|44100|48000)"
    r"|wav_(8000|16000|22050|24000|44100|48000)"
    r"|ulaw_8000|alaw_8000)$")
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "pcm": "audio/pcm",
                 "wav": "audio/wav", "ulaw": "audio/basic",
                 "alaw": "audio/alaw"}
VOICE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TTS_RE = re.compile(r"^/v1/text-to-speech/([^/]+)(/with-timestamps)?/?$")
HISTORY_RE = re.compile(r"^/v1/history(?:/([^/]+)(/audio)?)?/?$")
# GET /v1/history query parameters: name -> kind ("int" or the allowed values)
HISTORY_QUERY = {"page_size": "int", "start_after_history_item_id": "str",
                 "voice_id": "str", "model_id": "str", "date_before_unix": "int",
                 "date_after_unix": "int", "sort_direction": ("asc", "desc"),
                 "search": "str", "source": ("TTS", "STS")}

STATUS_CODES = {
    400: ("invalid_request", "invalid_request", "Invalid request."),
    401: ("authentication_error", "invalid_api_key", "Invalid API key"),
    403: ("authorization_error", "forbidden", "Forbidden"),
    404: ("not_found", "not_found", "Not found"),
    429: ("rate_limit_error", "rate_limit_exceeded",
          "Too many requests. Please slow down."),
    500: ("internal_error", "internal_server_error",
          "An internal server error occurred."),
    503: ("service_unavailable", "system_busy",
          "The system is experiencing heavy traffic, please try again later."),
}


class ElevenLabsApp(App):
    kind = "elevenlabs"
    server_name = "fake-elevenlabs"

    def __init__(self, core):
        super().__init__(core)
        self.voices = ([v.strip() for v in self.args.voices.split(",")
                        if v.strip()] if self.args.voices else None)
        self.inflight = 0
        self.history = []        # items, oldest first
        self.history_audio = {}  # history_item_id -> (duration, format)
        self.characters = 0      # the account's character counter

    # -- error shapes

    def detail(self, status, code, message, etype=None, param=None,
               headers=None):
        etype = etype or STATUS_CODES.get(status, ("error",))[0]
        body = {"detail": {"type": etype, "code": code, "status": code,
                           "message": message,
                           "request_id": new_id(10), "param": param}}
        return HTTPError(Response.json(status, body, headers))

    def invalid(self, items):
        """422 FastAPI validation error; items = [(type, loc, msg, input)]."""
        return HTTPError(Response.json(422, {"detail": [
            {"type": t, "loc": loc, "msg": msg, "input": inp}
            for t, loc, msg, inp in items]}))

    def route(self, req):
        m = TTS_RE.match(req.path)
        if m:
            if req.method != "POST":
                raise HTTPError(Response.json(405, {
                    "detail": "Method Not Allowed"}))
            return Route(self.tts)
        if req.path.rstrip("/") == "/v1/models":
            if req.method != "GET":
                raise HTTPError(Response.json(405, {
                    "detail": "Method Not Allowed"}))
            return Route(self.models)
        m = HISTORY_RE.match(req.path)
        if m:
            if req.method != "GET":
                raise HTTPError(Response.json(405, {
                    "detail": "Method Not Allowed"}))
            if m.group(2):
                return Route(self.history_item_audio)
            return Route(self.history_item if m.group(1) else
                         self.history_list)
        raise HTTPError(Response.json(404, {"detail": "Not Found"}))

    def authenticate(self, req):
        key = req.header("xi-api-key")
        if key is None:
            raise self.detail(401, "needs_authorization",
                              "Neither authorization header nor xi-api-key "
                              "received, please provide one.")
        if key != self.args.api_key:
            raise self.detail(401, "invalid_api_key", "Invalid API key")

    def fault_response(self, fault, req):
        status = fault_status(fault)
        etype, code, msg = STATUS_CODES.get(
            status, ("error", "error_%d" % status, "Error %d" % status))
        if status == 400:
            code, msg = "max_character_limit_exceeded", (
                "The text you provided is too long.")
        return self.detail(status, fault.get("code", code),
                           fault.get("message", msg), etype=etype,
                           headers=retry_after_headers(fault)).response

    def malformed_body(self, req):
        return b'{"audio_base64": "SUQzBAAAAAAA", "alignment": {"characters": '

    def models(self, req):
        return Response.json(200, [{
            "model_id": m, "name": m.replace("_", " ").title(),
            "can_do_text_to_speech": True,
            "max_characters_request_free_user": min(limit, 2500),
            "max_characters_request_subscribed_user": limit,
            "token_cost_factor": factor} for m, (limit, factor) in
            MODELS.items()])

    # -- validation

    def parse(self, req):
        if req.media_type() != "application/json":
            raise self.invalid([("model_attributes_type", ["body"],
                                 "Input should be a valid dictionary or "
                                 "object to extract fields from",
                                 req.body.decode("utf-8", "replace")[:100])])
        ok, body, err = req.parsed_json()
        if not ok:
            raise self.invalid([("json_invalid", ["body", 0],
                                 "JSON decode error", {})])
        if not isinstance(body, dict):
            raise self.invalid([("model_attributes_type", ["body"],
                                 "Input should be a valid dictionary", body)])
        return body

    def check_body(self, body):
        text = body.get("text")
        if "text" not in body:
            raise self.invalid([("missing", ["body", "text"],
                                 "Field required", body)])
        if not isinstance(text, str):
            raise self.invalid([("string_type", ["body", "text"],
                                 "Input should be a valid string", text)])
        if not text.strip():
            raise self.detail(400, "invalid_text", "Text must not be empty.",
                              param="text")
        model = body.get("model_id", DEFAULT_MODEL)
        if not isinstance(model, str) or model not in MODELS:
            raise self.detail(400, "model_not_found",
                              "A model with model ID %s does not exist."
                              % model, param="model_id")
        limit = self.args.char_limit or MODELS[model][0]
        if len(text) > limit:
            raise self.detail(400, "max_character_limit_exceeded",
                              "You are sending %d characters in a single "
                              "request, but the maximum is %d characters."
                              % (len(text), limit), param="text")
        self.check_voice_settings(body.get("voice_settings"))
        for key in ("previous_request_ids", "next_request_ids"):
            ids = body.get(key)
            if ids is not None and (not isinstance(ids, list) or len(ids) > 3
                                    or not all(isinstance(i, str)
                                               for i in ids)):
                raise self.detail(400, "invalid_request", "%s must be a list "
                                  "of at most 3 request ids." % key,
                                  param=key)
        norm = body.get("apply_text_normalization")
        if norm is not None and norm not in ("auto", "on", "off"):
            raise self.invalid([("enum", ["body", "apply_text_normalization"],
                                 "Input should be 'auto', 'on' or 'off'",
                                 norm)])
        seed = body.get("seed")
        if seed is not None and (not is_int(seed) or
                                 not 0 <= seed <= 4294967295):
            raise self.invalid([("int_type", ["body", "seed"],
                                 "Input should be a valid integer between 0 "
                                 "and 4294967295", seed)])
        for key in ("language_code", "previous_text", "next_text"):
            v = body.get(key)
            if v is not None and not isinstance(v, str):
                raise self.invalid([("string_type", ["body", key],
                                     "Input should be a valid string", v)])
        return text, model

    def check_voice_settings(self, vs):
        if vs is None:
            return
        if not isinstance(vs, dict):
            raise self.invalid([("model_type", ["body", "voice_settings"],
                                 "Input should be an object", vs)])
        ranges = {"stability": (0, 1), "similarity_boost": (0, 1),
                  "style": (0, 1), "speed": (0.7, 1.2)}
        for key, (lo, hi) in ranges.items():
            v = vs.get(key)
            if v is None:
                continue
            if not is_num(v):
                raise self.invalid([("float_type",
                                     ["body", "voice_settings", key],
                                     "Input should be a valid number", v)])
            if not lo <= v <= hi:
                kind = "less_than_equal" if v > hi else "greater_than_equal"
                bound = hi if v > hi else lo
                raise self.invalid([(kind, ["body", "voice_settings", key],
                                     "Input should be %s %s" % (
                                         "less than or equal to" if v > hi
                                         else "greater than or equal to",
                                         bound), v)])
        boost = vs.get("use_speaker_boost")
        if boost is not None and not isinstance(boost, bool):
            raise self.invalid([("bool_type", ["body", "voice_settings",
                                               "use_speaker_boost"],
                                 "Input should be a valid boolean", boost)])

    def check_query(self, req):
        fmt = req.q("output_format", "mp3_44100_128")
        if not FORMAT_RE.match(fmt):
            raise self.invalid([("enum", ["query", "output_format"],
                                 "Input should be a valid output format",
                                 fmt)])
        osl = req.q("optimize_streaming_latency")
        if osl is not None and osl not in ("0", "1", "2", "3", "4"):
            raise self.invalid([("int_parsing", ["query",
                                                 "optimize_streaming_latency"],
                                 "Input should be an integer 0-4", osl)])
        el = req.q("enable_logging")
        if el is not None and el not in ("true", "false"):
            raise self.invalid([("bool_parsing", ["query", "enable_logging"],
                                 "Input should be a valid boolean", el)])
        return fmt

    # -- answering

    def tts(self, req):
        m = TTS_RE.match(req.path)
        voice_id, timestamps = m.group(1), bool(m.group(2))
        fmt = self.check_query(req)
        body = self.parse(req)
        if not VOICE_RE.match(voice_id) or (
                self.voices is not None and voice_id not in self.voices):
            raise self.detail(400, "voice_not_found", "A voice with voice_id "
                              "%s does not exist." % voice_id,
                              param="voice_id")
        text, model = self.check_body(body)
        limit = self.args.max_concurrent
        with self.core.lock:
            if limit and self.inflight >= limit:
                busy = True
            else:
                busy = False
                self.inflight += 1
        if busy:
            raise self.detail(429, "concurrent_limit_exceeded",
                              "Too many concurrent requests for your "
                              "subscription.")
        try:
            return self.synthesize(req, text, model, fmt, timestamps,
                                   voice_id, body.get("voice_settings"))
        finally:
            with self.core.lock:
                self.inflight -= 1

    def synthesize(self, req, text, model, fmt, timestamps, voice_id,
                   settings):
        duration = max(0.3, self.args.seconds_per_char * len(text))
        audio = self.core.media.audio(duration, fmt)
        cost = int(math.ceil(len(text) * MODELS[model][1]))
        request_id = new_id(10)
        item = self.remember(text, model, fmt, voice_id, settings, cost,
                             request_id, duration)
        headers = [("request-id", request_id),
                   ("character-cost", str(cost)),
                   ("history-item-id", item["history_item_id"]),
                   ("current-concurrent-requests", "1"),
                   ("maximum-concurrent-requests",
                    str(self.args.max_concurrent or 5))]
        self.core.count("elevenlabs_tts")
        self.core.count("elevenlabs_characters", len(text))
        if not timestamps:
            return Response(200, audio,
                            CONTENT_TYPES[fmt.split("_")[0]], headers)
        stripped = " ".join(text.split())
        out = {"audio_base64": base64.b64encode(audio).decode("ascii"),
               "alignment": alignment(text, duration),
               "normalized_alignment": alignment(stripped, duration)}
        return Response.json(200, out, headers)

    # -- the history of generations

    def remember(self, text, model, fmt, voice_id, settings, cost,
                 request_id, duration):
        """A generation in the history, as ElevenLabs keeps it (at once:
        before the answer is sent)."""
        with self.core.lock:
            item = {"history_item_id": new_id(10), "request_id": request_id,
                    "voice_id": voice_id, "model_id": model,
                    "voice_name": "Fake voice", "voice_category": "premade",
                    "text": text, "date_unix": int(time.time()),
                    "character_count_change_from": self.characters,
                    "character_count_change_to": self.characters + cost,
                    "content_type": CONTENT_TYPES[fmt.split("_")[0]],
                    "state": "created", "settings": settings,
                    "feedback": None, "share_link_id": None,
                    "source": "TTS", "alignments": None, "dialogue": None}
            self.characters += cost
            self.history.append(item)
            self.history_audio[item["history_item_id"]] = (duration, fmt)
            atomic_write(self.core.path("elevenlabs_history.json"),
                         json.dumps(self.history, indent=1))
        return item

    def history_query(self, req):
        """The query, checked as FastAPI would (422); a parameter the
        real API does not know is refused too, to catch a client's typo."""
        out = {}
        for name, vals in req.query.items():
            kind = HISTORY_QUERY.get(name)
            if kind is None:
                raise self.invalid([("extra_forbidden", ["query", name],
                                     "Extra inputs are not permitted",
                                     vals[0])])
            v = vals[-1]
            if kind == "int":
                if not re.match(r"^-?[0-9]+$", v):
                    raise self.invalid([("int_parsing", ["query", name],
                                         "Input should be a valid integer",
                                         v)])
                v = int(v)
            elif isinstance(kind, tuple) and v not in kind:
                raise self.invalid([("enum", ["query", name],
                                     "Input should be %s" % " or ".join(
                                         repr(k) for k in kind), v)])
            out[name] = v
        size = out.get("page_size", 100)
        if not 1 <= size <= 1000:
            raise self.invalid([("less_than_equal" if size > 1000 else
                                 "greater_than_equal",
                                 ["query", "page_size"],
                                 "Input should be between 1 and 1000",
                                 size)])
        return out

    def history_list(self, req):
        q = self.history_query(req)
        with self.core.lock:
            items = list(self.history)
        keep = [i for i in items if
                q.get("voice_id", i["voice_id"]) == i["voice_id"] and
                q.get("model_id", i["model_id"]) == i["model_id"] and
                i["date_unix"] >= q.get("date_after_unix", i["date_unix"])
                and ("date_before_unix" not in q or
                     i["date_unix"] < q["date_before_unix"]) and
                q.get("search", "").lower() in i["text"].lower() and
                q.get("source", "TTS") == i["source"]]
        if q.get("sort_direction", "desc") == "desc":
            keep.reverse()
        after = q.get("start_after_history_item_id")
        if after is not None:
            ids = [i["history_item_id"] for i in keep]
            if after not in ids:
                raise self.detail(400, "history_item_not_found",
                                  "History item %s was not found." % after,
                                  param="start_after_history_item_id")
            keep = keep[ids.index(after) + 1:]
        page = keep[:q.get("page_size", 100)]
        self.core.count("elevenlabs_history_list")
        return Response.json(200, {
            "history": page,
            "last_history_item_id": (page[-1]["history_item_id"] if page
                                     else None),
            "has_more": len(keep) > len(page),
            "scanned_until": int(time.time())})

    def find_item(self, req):
        hid = HISTORY_RE.match(req.path).group(1)
        with self.core.lock:
            for item in self.history:
                if item["history_item_id"] == hid:
                    return item
        raise self.detail(404, "history_item_not_found",
                          "History item %s was not found." % hid,
                          param="history_item_id")

    def history_item(self, req):
        return Response.json(200, self.find_item(req))

    def history_item_audio(self, req):
        """The generation's audio again: not billed."""
        item = self.find_item(req)
        duration, fmt = self.history_audio[item["history_item_id"]]
        self.core.count("elevenlabs_history_audio")
        return Response(200, self.core.media.audio(duration, fmt),
                        item["content_type"])


# How long a character lasts, relative to a letter.
CHAR_WEIGHT = {" ": 0.5, ",": 4.0, ";": 4.0, ":": 4.0, ".": 6.0, "!": 6.0,
               "?": 6.0, "i": 0.6, "l": 0.7, "m": 1.6, "w": 1.6, "o": 1.4}


def alignment(text, duration):
    weights = [CHAR_WEIGHT.get(c.lower(), 1.0) for c in text]
    step = duration / max(1e-9, sum(weights))
    starts, ends, at = [], [], 0.0
    for w in weights:
        starts.append(round(at * step, 3))
        at += w
        ends.append(round(at * step, 3))
    return {"characters": list(text),
            "character_start_times_seconds": starts,
            "character_end_times_seconds": ends}
