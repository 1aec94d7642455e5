"""fake_youtube: a strict fake of Google OAuth and YouTube Data v3.

OAuth: GET /o/oauth2/v2/auth (the consent page: approves at once and
answers 302 to redirect_uri with code and state), POST /token with the
refresh_token, authorization_code (PKCE S256 checked) and device_code
grants, POST /device/code and GET /device?user_code= (the person
approving).  POST /token, resumable videos.insert
(POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status,
then PUT the session URI whole or in 256 KiB-multiple chunks), thumbnails.set
(POST /upload/youtube/v3/thumbnails/set?videoId=), playlistItems.insert
(POST /youtube/v3/playlistItems?part=snippet), playlistItems.list,
channels.list?mine=true, captions.insert (multipart) and videos.list (GET
/youtube/v3/videos?id=).  Every byte range a session PUT carried is logged
in STATE/youtube_ranges.jsonl.  API calls need a Bearer token issued by /token
(or --api-key when given).  A quota ledger per Pacific day lives in
STATE/quota.json; uploaded files land in STATE/uploads/youtube/.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import threading
import time
import urllib.parse

from fakecore import (App, HTTPError, Response, Route, atomic_write,
                      fault_status, new_id, now_iso, retry_after_headers)

CHUNK = 262144
PARTS = {"snippet", "status", "contentDetails", "fileDetails",
         "liveStreamingDetails", "localizations", "player",
         "processingDetails", "recordingDetails", "statistics",
         "suggestions", "topicDetails", "id"}
CATEGORIES = {"1", "2", "10", "15", "17", "18", "19", "20", "21", "22", "23",
              "24", "25", "26", "27", "28", "29", "30", "43", "44"}
RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
QUERY_RE = re.compile(r"^bytes \*/(\d+|\*)$")
SCOPE_UPLOAD = "https://www.googleapis.com/auth/youtube.upload"
SCOPE_YT = "https://www.googleapis.com/auth/youtube"
SCOPE_SSL = "https://www.googleapis.com/auth/youtube.force-ssl"
SCOPE_RO = "https://www.googleapis.com/auth/youtube.readonly"
SCOPES_READ = {SCOPE_YT, SCOPE_SSL, SCOPE_RO}
SCOPES_UPLOAD = {SCOPE_UPLOAD, SCOPE_YT, SCOPE_SSL}
KNOWN_SCOPES = {SCOPE_UPLOAD, SCOPE_YT, SCOPE_SSL, SCOPE_RO}
DEVICE_SCOPES = {SCOPE_YT, SCOPE_RO}
UPLOADS_PLAYLIST = "UUfakechannel000000000000"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
STATUS_TEXT = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
               403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
               503: "UNAVAILABLE"}
DEFAULT_REASONS = {400: ("badRequest", "global", "Bad Request"),
                   401: ("authError", "global", "Invalid Credentials"),
                   403: ("forbidden", "youtube.video", "Forbidden"),
                   404: ("notFound", "global", "Not Found"),
                   429: ("rateLimitExceeded", "youtube.quota",
                         "Too many requests"),
                   500: ("backendError", "global", "Backend Error"),
                   502: ("backendError", "global", "Bad Gateway"),
                   503: ("backendError", "global", "Service Unavailable"),
                   504: ("backendError", "global", "Gateway Timeout")}


def pacific_today():
    try:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo("America/Los_Angeles")
    except Exception:  # no tz database: close enough for a fake
        tz = datetime.timezone(datetime.timedelta(hours=-8))
    return datetime.datetime.now(tz).date().isoformat()


def video_id():
    alphabet = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789-_")
    return "".join(secrets.choice(alphabet) for _ in range(11))


def gerror(status, reason, message, domain="global", headers=None, **extra):
    err = {"message": message, "domain": domain, "reason": reason}
    err.update(extra)
    body = {"error": {"code": status, "message": message, "errors": [err]}}
    if status in STATUS_TEXT:
        body["error"]["status"] = STATUS_TEXT[status]
    return HTTPError(Response.json(status, body, headers,
                                   "application/json; charset=UTF-8"))


class YouTubeApp(App):
    kind = "youtube"
    server_name = "fake-youtube"
    extra_status_faults = ("quota_exceeded", "upload_limit", "invalid_grant")

    def __init__(self, core):
        super().__init__(core)
        self.lock = threading.Lock()
        self.tokens = {}
        self.sessions = {}
        self.videos = {}
        self.playlists = {}
        self.refresh_tokens = {self.args.refresh_token: self.args.scopes}
        self.codes = {}          # authorization code -> grant
        self.devices = {}        # device_code -> {user_code, scope, approved}
        self.order = []          # video ids, oldest first
        self.captions = {}
        self.dir = core.path("uploads", "youtube")
        os.makedirs(self.dir, exist_ok=True)

    # -- routing and auth

    def route(self, req):
        path = req.path.rstrip("/")
        if path in ("/token", "/o/oauth2/token"):
            return self.need(req, "POST", Route(self.token, auth=False))
        if path == "/o/oauth2/v2/auth":
            return self.need(req, "GET", Route(self.consent, auth=False))
        if path == "/device/code":
            return self.need(req, "POST", Route(self.device_code, auth=False))
        if path == "/device":
            return self.need(req, "GET", Route(self.device_approve,
                                               auth=False))
        if path == "/youtube/v3/channels":
            return self.need(req, "GET", Route(self.channels_list))
        if path == "/upload/youtube/v3/captions":
            return self.need(req, "POST", Route(self.captions_insert))
        if path == "/youtube/v3/captions":
            return self.need(req, "GET", Route(self.captions_list))
        if path == "/youtube/v3/playlistItems" and req.method == "GET":
            return Route(self.playlist_list)
        if path == "/upload/youtube/v3/videos":
            if "upload_id" in req.query:
                return self.need(req, "PUT", Route(self.session, auth=False))
            return self.need(req, "POST", Route(self.insert))
        if path == "/upload/youtube/v3/thumbnails/set":
            return self.need(req, "POST", Route(self.thumbnail))
        if path == "/youtube/v3/playlistItems":
            return self.need(req, "POST", Route(self.playlist_insert))
        if path == "/youtube/v3/videos":
            return self.need(req, "GET", Route(self.videos_list))
        raise gerror(404, "notFound", "Not Found")

    def need(self, req, method, route):
        if req.method != method:
            raise gerror(405, "httpMethodNotAllowed", "Method %s not allowed"
                         % req.method)
        return route

    def authenticate(self, req):
        auth = req.header("Authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        ok = False
        if token:
            with self.lock:
                entry = self.tokens.get(token)
            ok = entry is not None and entry["expires"] > time.time()
            if not ok and self.args.api_key_given and \
                    token == self.args.api_key:
                ok, entry = True, {"scope": self.args.scopes}
        if not ok:
            raise gerror(401, "authError", "Request had invalid "
                         "authentication credentials. Expected OAuth 2 access "
                         "token, login cookie or other valid authentication "
                         "credential.", location="Authorization",
                         locationType="header")
        req.scope = entry["scope"].split()

    def is_token_path(self, req):
        return req.path.rstrip("/") in ("/token", "/o/oauth2/token")

    def fault_response(self, fault, req):
        status = fault_status(fault)
        headers = retry_after_headers(fault)
        if fault.name == "invalid_grant" or (self.is_token_path(req) and
                                             status == 400):
            return Response.json(400, {"error": "invalid_grant",
                                       "error_description":
                                       fault.get("message", "Token has been "
                                                 "expired or revoked.")},
                                 headers)
        if self.is_token_path(req):
            code = {401: "invalid_client", 429: "rate_limit_exceeded"}.get(
                status, "internal_failure" if status >= 500 else
                "invalid_request")
            return Response.json(status, {"error": code, "error_description":
                                          fault.get("message", code)},
                                 headers)
        if fault.name == "quota_exceeded":
            return gerror(403, "quotaExceeded", "The request cannot be "
                          "completed because you have exceeded your "
                          "<a href=\"/youtube/v3/getting-started#quota\">"
                          "quota</a>.", "youtube.quota", headers).response
        if fault.name == "upload_limit":
            return gerror(400, "uploadLimitExceeded", "The user has exceeded "
                          "the number of videos they may upload.",
                          "youtube.video", headers).response
        reason, domain, msg = DEFAULT_REASONS.get(
            status, ("error", "global", "Error %d" % status))
        return gerror(status, fault.get("reason", reason),
                      fault.get("message", msg),
                      fault.get("domain", domain), headers).response

    def malformed_body(self, req):
        return b'{"kind": "youtube#video", "id": "abc", "status": {"upl'

    # -- OAuth

    def token(self, req):
        def oauth_error(status, code, desc):
            return HTTPError(Response.json(status, {
                "error": code, "error_description": desc}))
        if req.media_type() != "application/x-www-form-urlencoded":
            raise oauth_error(400, "invalid_request", "Invalid content type; "
                              "expected application/x-www-form-urlencoded")
        try:
            form = urllib.parse.parse_qs(req.body.decode("utf-8"),
                                         keep_blank_values=True,
                                         strict_parsing=bool(req.body))
        except (UnicodeDecodeError, ValueError):
            raise oauth_error(400, "invalid_request", "Malformed form body")
        get = lambda k: form.get(k, [None])[0]
        client_id, secret = get("client_id"), get("client_secret")
        basic = req.header("Authorization") or ""
        if basic.startswith("Basic ") and client_id is None:
            try:
                client_id, secret = base64.b64decode(basic[6:]).decode(
                    "utf-8").split(":", 1)
            except (ValueError, UnicodeDecodeError):
                pass
        grant = get("grant_type")
        if grant is None:
            raise oauth_error(400, "invalid_request",
                              "Missing required parameter: grant_type")
        if grant not in ("refresh_token", "authorization_code",
                         DEVICE_GRANT):
            raise oauth_error(400, "unsupported_grant_type",
                              "Invalid grant_type: %s" % grant)
        if not client_id:
            raise oauth_error(400, "invalid_request",
                              "Missing required parameter: client_id")
        if client_id != self.args.client_id:
            raise oauth_error(401, "invalid_client",
                              "The OAuth client was not found.")
        if secret != self.args.client_secret:
            raise oauth_error(401, "invalid_client", "Unauthorized")
        if grant == "authorization_code":
            return self.grant_code(get, oauth_error)
        if grant == DEVICE_GRANT:
            return self.grant_device(get, oauth_error)
        refresh = get("refresh_token")
        if not refresh:
            raise oauth_error(400, "invalid_request",
                              "Missing required parameter: refresh_token")
        with self.lock:
            scope = self.refresh_tokens.get(refresh)
        if scope is None:
            raise oauth_error(400, "invalid_grant", "Bad Request")
        self.core.count("youtube_token_refresh")
        return self.issue(scope)

    def issue(self, scope, refresh=None):
        token = "ya29.fake-" + new_id(16)
        with self.lock:
            self.tokens[token] = {"expires": time.time() +
                                  self.args.token_ttl, "scope": scope}
            if refresh:
                self.refresh_tokens[refresh] = scope
        body = {"access_token": token, "expires_in": self.args.token_ttl,
                "scope": scope, "token_type": "Bearer"}
        if refresh:
            body["refresh_token"] = refresh
        return Response.json(200, body,
                             [("Cache-Control", "no-cache, no-store")])

    # -- OAuth: loopback (authorization code + PKCE) and device flows

    def consent(self, req):
        """The consent page, approved at once: 302 to redirect_uri."""
        def bad(msg):
            return HTTPError(Response.text(400, "Error 400: " + msg))
        if req.q("client_id") != self.args.client_id:
            raise bad("invalid_client")
        redirect = req.q("redirect_uri") or ""
        if not re.match(r"^http://(127\.0\.0\.1|\[::1\]|localhost):\d+/?$",
                        redirect):
            raise bad("redirect_uri_mismatch: loopback IP redirect only")
        if req.q("response_type") != "code":
            raise bad("unsupported_response_type")
        scopes = (req.q("scope") or "").split()
        if not scopes or not set(scopes) <= KNOWN_SCOPES:
            raise bad("invalid_scope")
        challenge = req.q("code_challenge") or ""
        if req.q("code_challenge_method") != "S256" or \
                not re.match(r"^[A-Za-z0-9_-]{43}$", challenge):
            raise bad("invalid_request: PKCE S256 code_challenge required")
        if not req.q("state"):
            raise bad("this fake insists on a state parameter")
        code = "4/fake-" + new_id(16)
        with self.lock:
            self.codes[code] = {"challenge": challenge, "redirect": redirect,
                                "scope": " ".join(scopes)}
        self.core.count("youtube_consents")
        loc = "%s%s?%s" % (redirect.rstrip("/"), "/", urllib.parse.urlencode(
            {"state": req.q("state"), "code": code,
             "scope": " ".join(scopes)}))
        return Response.empty(302, [("Location", loc)])

    def grant_code(self, get, oauth_error):
        with self.lock:
            grant = self.codes.pop(get("code") or "", None)
        if grant is None:
            raise oauth_error(400, "invalid_grant", "Malformed auth code.")
        if get("redirect_uri") != grant["redirect"]:
            raise oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = get("code_verifier") or ""
        digest = base64.urlsafe_b64encode(hashlib.sha256(
            verifier.encode()).digest()).rstrip(b"=").decode()
        if not 43 <= len(verifier) <= 128 or digest != grant["challenge"]:
            raise oauth_error(400, "invalid_grant", "Invalid code verifier.")
        self.core.count("youtube_code_exchanges")
        return self.issue(grant["scope"], "1//fake-refresh-" + new_id(16))

    def device_code(self, req):
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))
        get = lambda k: form.get(k, [None])[0]
        if get("client_id") != self.args.client_id:
            return Response.json(401, {"error": "invalid_client"})
        scopes = (get("scope") or "").split()
        if not scopes or not set(scopes) <= DEVICE_SCOPES:
            return Response.json(400, {"error": "invalid_scope",
                                       "error_description": "Not authorized "
                                       "to request the scopes: %s" % scopes})
        dc, uc = "fake-device-" + new_id(12), new_id(4).upper()
        with self.lock:
            self.devices[dc] = {"user_code": uc, "scope": " ".join(scopes),
                                "approved": False}
        return Response.json(200, {
            "device_code": dc, "user_code": uc, "expires_in": 1800,
            "interval": self.args.device_interval,
            "verification_url": req.base_url() + "/device"})

    def device_approve(self, req):
        with self.lock:
            for d in self.devices.values():
                if d["user_code"] == req.q("user_code"):
                    d["approved"] = True
                    return Response.text(200, "approved")
        return Response.text(404, "unknown code")

    def grant_device(self, get, oauth_error):
        with self.lock:
            d = self.devices.get(get("device_code") or "")
        if d is None:
            raise oauth_error(400, "invalid_grant", "Bad Request")
        if not d["approved"]:
            raise oauth_error(428, "authorization_pending", "Precondition "
                              "Required")
        with self.lock:
            self.devices.pop(get("device_code"), None)
        self.core.count("youtube_device_grants")
        return self.issue(d["scope"], "1//fake-refresh-" + new_id(16))

    # -- quota

    def charge(self, cost, upload=False):
        """Charge quota; raise quotaExceeded/uploadLimitExceeded if over."""
        with self.lock:
            path = self.core.path("quota.json")
            try:
                with open(path) as f:
                    q = json.load(f)
            except (OSError, ValueError):
                q = {}
            if q.get("day") != pacific_today():
                q = {"day": pacific_today(), "units": 0, "uploads": 0,
                     "by_method": {}}
            if q["units"] + cost > self.args.quota_limit:
                q["units"] += 1
                atomic_write(path, json.dumps(q, indent=1))
                raise gerror(403, "quotaExceeded", "The request cannot be "
                             "completed because you have exceeded your "
                             "quota.", "youtube.quota")
            if upload and q["uploads"] >= self.args.upload_cap:
                q["units"] += 1
                atomic_write(path, json.dumps(q, indent=1))
                raise gerror(400, "uploadLimitExceeded", "The user has "
                             "exceeded the number of videos they may "
                             "upload.", "youtube.video")
            q["units"] += cost
            q["uploads"] += 1 if upload else 0
            atomic_write(path, json.dumps(q, indent=1))

    def charged(self, fn, cost, upload=False):
        """Run fn; a request that fails validation still costs 1 unit."""
        try:
            out = fn()
        except HTTPError:
            self.charge(1)
            raise
        self.charge(cost, upload)
        return out

    # -- videos.insert, step 1

    def parse_json(self, req):
        if req.media_type() != "application/json":
            raise gerror(400, "badContent", "Unsupported content with type: "
                         "%s" % (req.header("Content-Type") or "(none)"))
        ok, body, _ = req.parsed_json()
        if not ok:
            raise gerror(400, "parseError", "Parse Error")
        if not isinstance(body, dict):
            raise gerror(400, "parseError", "Parse Error")
        return body

    def check_parts(self, req, needed):
        parts = [p.strip() for p in (req.q("part") or "").split(",")
                 if p.strip()]
        if not parts:
            raise gerror(400, "required", "Required parameter: part",
                         location="part", locationType="parameter")
        for p in parts:
            if p not in PARTS:
                raise gerror(400, "unexpectedPart", "The request specifies an "
                             "unexpected value in the part parameter: %s" % p,
                             "youtube.part")
        for p in needed:
            if p not in parts:
                raise gerror(400, "invalidVideoMetadata", "part must include "
                             "%s" % p, "youtube.video")
        return parts

    def check_video(self, body):
        snippet = body.get("snippet")
        if not isinstance(snippet, dict):
            raise gerror(400, "invalidTitle", "The request metadata specifies "
                         "an invalid or empty video title.", "youtube.video")
        title = snippet.get("title")
        if not isinstance(title, str) or not title.strip() or \
                len(title) > 100 or "<" in title or ">" in title:
            raise gerror(400, "invalidTitle", "The request metadata specifies "
                         "an invalid or empty video title.", "youtube.video")
        desc = snippet.get("description", "")
        if not isinstance(desc, str) or len(desc.encode("utf-8")) > 5000 or \
                "<" in desc or ">" in desc:
            raise gerror(400, "invalidDescription", "The request metadata "
                         "specifies an invalid video description.",
                         "youtube.video")
        tags = snippet.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str)
                                                 for t in tags):
            raise gerror(400, "invalidTags", "The request metadata specifies "
                         "invalid video keywords.", "youtube.video")
        total = sum(len(t) + (2 if " " in t else 0) for t in tags) + \
            max(0, len(tags) - 1)
        if total > 500 or any("<" in t or ">" in t for t in tags):
            raise gerror(400, "invalidTags", "The request metadata specifies "
                         "invalid video keywords.", "youtube.video")
        cat = snippet.get("categoryId")
        if cat is not None and (not isinstance(cat, str) or
                                cat not in CATEGORIES):
            raise gerror(400, "invalidCategoryId", "The snippet.categoryId "
                         "property specifies an invalid category ID.",
                         "youtube.video")
        self.check_status(body.get("status"))

    def check_status(self, status):
        def meta(msg):
            return gerror(400, "invalidVideoMetadata", msg, "youtube.video")
        if not isinstance(status, dict):
            raise meta("status.privacyStatus is required (this fake insists: "
                       "YouTube would default to public)")
        privacy = status.get("privacyStatus")
        if privacy not in ("public", "unlisted", "private"):
            raise meta("status.privacyStatus must be public, unlisted or "
                       "private")
        for key in ("selfDeclaredMadeForKids", "containsSyntheticMedia",
                    "embeddable", "publicStatsViewable"):
            if key in status and not isinstance(status[key], bool):
                raise meta("status.%s must be a boolean" % key)
        if status.get("license", "youtube") not in ("youtube",
                                                     "creativeCommon"):
            raise meta("status.license is invalid")
        publish_at = status.get("publishAt")
        if publish_at is not None:
            try:
                when = datetime.datetime.fromisoformat(
                    str(publish_at).replace("Z", "+00:00"))
                if when.tzinfo is None:
                    raise ValueError("no timezone")
            except ValueError:
                raise gerror(400, "invalidPublishAt", "The request metadata "
                             "specifies an invalid scheduled publishing "
                             "time.", "youtube.video")
            if privacy != "private" or when <= datetime.datetime.now(
                    datetime.timezone.utc):
                raise gerror(400, "invalidPublishAt", "The request metadata "
                             "specifies an invalid scheduled publishing "
                             "time.", "youtube.video")

    def insert(self, req):
        def validate():
            self.need_scope(req, SCOPES_UPLOAD)
            if req.q("uploadType") != "resumable":
                raise gerror(400, "invalidUploadType", "This fake supports "
                             "only uploadType=resumable", "global")
            self.check_parts(req, ("snippet", "status"))
            body = self.parse_json(req)
            self.check_video(body)
            length = req.header("X-Upload-Content-Length")
            if length is not None and not length.isdigit():
                raise gerror(400, "badRequest", "Invalid "
                             "X-Upload-Content-Length")
            ctype = req.header("X-Upload-Content-Type")
            if ctype is not None and not (ctype.startswith("video/") or
                                          ctype == "application/octet-stream"):
                raise gerror(400, "invalidContentType", "Media type '%s' is "
                             "not supported." % ctype, "youtube.video")
            return body, length, ctype
        body, length, ctype = self.charged(validate, self.args.insert_cost,
                                           upload=True)
        upload_id = "fake-" + new_id(16)
        sess = {"id": upload_id, "total": int(length) if length else None,
                "received": 0, "resource": body, "done": None,
                "created": time.time(), "ctype": ctype,
                "notify": req.q("notifySubscribers", "true"),
                "part_file": os.path.join(self.dir, upload_id + ".part")}
        open(sess["part_file"], "wb").close()
        with self.lock:
            self.sessions[upload_id] = sess
        self.core.count("youtube_upload_sessions")
        query = urllib.parse.urlencode({"uploadType": "resumable",
                                        "part": req.q("part"),
                                        "upload_id": upload_id}, safe=",")
        location = "%s/upload/youtube/v3/videos?%s" % (req.base_url(), query)
        return Response.empty(200, [("Location", location),
                                    ("X-GUploader-UploadID", upload_id)])

    # -- videos.insert, step 2: the session URI

    def get_session(self, req):
        upload_id = req.q("upload_id")
        with self.lock:
            sess = self.sessions.get(upload_id)
        if sess is None or time.time() - sess["created"] > \
                self.args.session_ttl:
            raise gerror(404, "notFound", "Upload session not found or "
                         "expired")
        return sess

    def store(self, sess, data, offset):
        """Write data at offset into the part file; keep received exact."""
        with open(sess["part_file"], "r+b") as f:
            f.seek(offset)
            f.write(data)
            f.truncate(offset + len(data))
        sess["received"] = offset + len(data)

    def drop_to(self, sess, n):
        with open(sess["part_file"], "r+b") as f:
            f.truncate(n)
        sess["received"] = n

    def incomplete(self, sess, with_range=True):
        headers = []
        if with_range and sess["received"] > 0:
            headers.append(("Range", "bytes=0-%d" % (sess["received"] - 1)))
        headers.append(("X-GUploader-UploadID", sess["id"]))
        return Response.empty(308, headers)

    def complete(self, sess):
        if sess["done"] is None:
            vid = video_id()
            ext = "mp4" if (sess["ctype"] or "video/mp4") in (
                "video/mp4", "application/octet-stream") else "bin"
            final = os.path.join(self.dir, "%s.%s" % (vid, ext))
            os.replace(sess["part_file"], final)
            res = self.video_resource(vid, sess["resource"], sess["received"])
            sess["done"] = res
            with self.lock:
                self.videos[vid] = {"resource": res, "path": final}
                self.order.append(vid)
            self.core.append_jsonl("youtube_videos.jsonl", {
                "ts": now_iso(), "id": vid, "path": final,
                "bytes": sess["received"], "resource": res})
            self.core.count("youtube_uploads_completed")
        return Response.json(self.args.final_status, sess["done"],
                             content_type="application/json; charset=UTF-8")

    def video_resource(self, vid, meta, size):
        snippet = dict(meta.get("snippet") or {})
        status = dict(meta.get("status") or {})
        snippet.update({"publishedAt": now_iso(),
                        "channelId": "UCfakechannel000000000000",
                        "channelTitle": "Fake Channel",
                        "liveBroadcastContent": "none",
                        "thumbnails": {"default": {
                            "url": "https://i.ytimg.com/vi/%s/default.jpg"
                            % vid, "width": 120, "height": 90}}})
        snippet.setdefault("description", "")
        snippet["localized"] = {"title": snippet.get("title"),
                                "description": snippet["description"]}
        status.setdefault("license", "youtube")
        status.setdefault("embeddable", True)
        status.setdefault("publicStatsViewable", True)
        status["uploadStatus"] = "uploaded"
        return {"kind": "youtube#video", "etag": new_id(12), "id": vid,
                "snippet": snippet, "status": status,
                "fileDetails": {"fileSize": str(size)}}

    def session(self, req):
        sess = self.get_session(req)
        fault = req.fault.name if req.fault else None
        if fault == "session_expired":
            with self.lock:
                self.sessions.pop(sess["id"], None)
            status = int(req.fault.get("status", 404))
            raise gerror(status, "notFound", "Upload session expired")
        cr = req.header("Content-Range")
        if cr is not None and QUERY_RE.match(cr):
            return self.status_query(req, sess, cr, fault)
        if sess["done"] is not None:
            return self.complete(sess)
        first, last, total = self.chunk_bounds(req, sess, cr)
        self.core.append_jsonl("youtube_ranges.jsonl", {
            "upload_id": sess["id"], "first": first, "last": last,
            "total": total, "held_before": sess["received"],
            "fault": fault})
        start, data = first, req.body
        if first < sess["received"]:       # overlap: ignore what we have
            data = data[sess["received"] - first:]
            first = sess["received"]
        if data:
            self.store(sess, data, first)
        if total is not None and sess["total"] is None:
            sess["total"] = total
        if fault == "308_no_range":
            self.drop_to(sess, 0)
            return self.incomplete(sess, with_range=False)
        if fault == "308_partial":
            keep = req.fault.get("keep_bytes")
            if keep is None:
                keep = (len(req.body) // 2) // CHUNK * CHUNK
            self.drop_to(sess, min(sess["received"], start + int(keep)))
            return self.incomplete(sess)
        if total is not None and sess["received"] >= total:
            if total == 0:
                raise gerror(400, "mediaBodyRequired", "The request does not "
                             "include the video content.", "youtube.video")
            return self.complete(sess)
        return self.incomplete(sess)

    def chunk_bounds(self, req, sess, cr):
        """(first, last, total or None) of a PUT, validated."""
        n = len(req.body)
        if cr is None:
            total = n
            if sess["total"] is not None and total != sess["total"]:
                raise gerror(400, "badRequest", "Body length %d does not "
                             "match X-Upload-Content-Length %d"
                             % (n, sess["total"]))
            return 0, n - 1, total
        m = RANGE_RE.match(cr)
        if not m:
            raise gerror(400, "badRequest", "Invalid Content-Range: %s" % cr)
        first, last = int(m.group(1)), int(m.group(2))
        total = None if m.group(3) == "*" else int(m.group(3))
        if last < first or last - first + 1 != n:
            raise gerror(400, "badRequest", "Content-Range %s does not match "
                         "body length %d" % (cr, n))
        if total is not None and last >= total:
            raise gerror(400, "badRequest", "Content-Range beyond total")
        if sess["total"] is not None and total is not None and \
                total != sess["total"]:
            raise gerror(400, "badRequest", "Total %d does not match "
                         "X-Upload-Content-Length %d" % (total, sess["total"]))
        if first > sess["received"]:
            raise gerror(400, "badRequest", "Content-Range starts at %d but "
                         "only %d bytes were received" %
                         (first, sess["received"]))
        final = total is not None and last + 1 == total
        if not final and n % CHUNK:
            raise gerror(400, "badRequest", "Chunk size %d is not a multiple "
                         "of 262144 bytes" % n)
        return first, last, total

    def status_query(self, req, sess, cr, fault):
        if req.body:
            raise gerror(400, "badRequest", "A status query must have an "
                         "empty body")
        if sess["done"] is not None:
            return self.complete(sess)
        if fault == "308_no_range":
            self.drop_to(sess, 0)
        return self.incomplete(sess)

    def on_partial_body(self, req):
        """Connection dropped mid-PUT: keep whole 256 KiB units received."""
        if req.route is None or req.route.fn != self.session:
            return
        try:
            sess = self.get_session(req)
        except HTTPError:
            return
        cr = req.header("Content-Range")
        first = 0
        m = RANGE_RE.match(cr or "")
        if m:
            first = int(m.group(1))
        if first != sess["received"] or sess["done"] is not None:
            return
        keep = len(req.partial_body) // CHUNK * CHUNK
        self.core.append_jsonl("youtube_ranges.jsonl", {
            "upload_id": sess["id"], "first": first,
            "last": first + len(req.partial_body) - 1, "total": None,
            "held_before": sess["received"], "fault": "dropped",
            "kept": keep})
        if keep:
            self.store(sess, req.partial_body[:keep], first)

    # -- thumbnails.set

    def thumbnail(self, req):
        def validate():
            self.need_scope(req, SCOPES_UPLOAD)
            vid = req.q("videoId")
            if not vid:
                raise gerror(400, "required", "Required parameter: videoId",
                             location="videoId", locationType="parameter")
            with self.lock:
                known = vid in self.videos
            if not known:
                raise gerror(404, "videoNotFound", "The video that you are "
                             "trying to update cannot be found.",
                             "youtube.thumbnail")
            if self.args.no_custom_thumbnails:
                raise gerror(403, "forbidden", "The authenticated user doesn't "
                             "have permissions to upload and set custom video "
                             "thumbnails.", "youtube.thumbnail")
            ctype = req.media_type()
            if ctype not in ("image/jpeg", "image/png",
                             "application/octet-stream"):
                raise gerror(400, "mediaContentTypeNotSupported", "Media type "
                             "'%s' is not supported." % ctype,
                             "youtube.thumbnail")
            if not req.body:
                raise gerror(400, "mediaBodyRequired", "The request does not "
                             "include the image content.", "youtube.thumbnail")
            if len(req.body) > self.args.thumb_max_bytes:
                raise gerror(413, "mediaBodyTooLarge", "Media larger than: %d"
                             % self.args.thumb_max_bytes, "global")
            if req.body[:8] == b"\x89PNG\r\n\x1a\n":
                ext = "png"
            elif req.body[:3] == b"\xff\xd8\xff":
                ext = "jpg"
            else:
                raise gerror(400, "invalidImage", "The provided image content "
                             "is invalid.", "youtube.thumbnail")
            return vid, ext
        vid, ext = self.charged(validate, 50)
        atomic_write(os.path.join(self.dir, "thumb_%s.%s" % (vid, ext)),
                     req.body)
        self.core.count("youtube_thumbnails")
        base = "https://i.ytimg.com/vi/%s/" % vid
        return Response.json(200, {
            "kind": "youtube#thumbnailSetResponse", "etag": new_id(12),
            "items": [{"default": {"url": base + "default.jpg", "width": 120,
                                   "height": 90},
                       "medium": {"url": base + "mqdefault.jpg",
                                  "width": 320, "height": 180},
                       "high": {"url": base + "hqdefault.jpg", "width": 480,
                                "height": 360}}]})

    # -- playlistItems.insert

    def playlist_insert(self, req):
        def validate():
            self.check_parts(req, ("snippet",))
            if not ({SCOPE_YT, SCOPE_SSL} & set(req.scope)):
                raise gerror(403, "insufficientPermissions", "Request had "
                             "insufficient authentication scopes.")
            body = self.parse_json(req)
            snippet = body.get("snippet")
            if not isinstance(snippet, dict) or not isinstance(
                    snippet.get("playlistId"), str) or \
                    not snippet["playlistId"]:
                raise gerror(400, "playlistIdRequired", "The request does not "
                             "specify a value for the required playlistId "
                             "property.", "youtube.playlistItem")
            rid = snippet.get("resourceId")
            if not isinstance(rid, dict) or rid.get("kind") != \
                    "youtube#video" or not isinstance(rid.get("videoId"), str):
                raise gerror(400, "invalidResourceId", "The resource ID "
                             "specified in the request is invalid.",
                             "youtube.playlistItem")
            with self.lock:
                known = rid["videoId"] in self.videos
                count = len(self.playlists.get(snippet["playlistId"], []))
            if not known:
                raise gerror(404, "videoNotFound", "Video not found.",
                             "youtube.playlistItem")
            if count >= self.args.playlist_max:
                raise gerror(403, "playlistContainsMaximumNumberOfVideos",
                             "The playlist already contains the maximum "
                             "allowed number of items.",
                             "youtube.playlistItem")
            return snippet
        snippet = self.charged(validate, 50)
        item_id = new_id(16)
        with self.lock:
            items = self.playlists.setdefault(snippet["playlistId"], [])
            items.append(snippet["resourceId"]["videoId"])
            position = len(items) - 1
        self.core.count("youtube_playlist_items")
        out = dict(snippet)
        out.update({"position": position, "publishedAt": now_iso(),
                    "channelId": "UCfakechannel000000000000"})
        return Response.json(200, {"kind": "youtube#playlistItem",
                                   "etag": new_id(12), "id": item_id,
                                   "snippet": out})

    # -- videos.list

    def videos_list(self, req):
        def validate():
            self.check_parts(req, ())
            ids = [i for i in (req.q("id") or "").split(",") if i]
            if not ids:
                raise gerror(400, "missingRequiredParameter", "No filter "
                             "selected. Expected one of: id",
                             "youtube.parameter")
            return ids
        ids = self.charged(validate, 1)
        with self.lock:
            items = [self.videos[i]["resource"] for i in ids
                     if i in self.videos]
        return Response.json(200, {"kind": "youtube#videoListResponse",
                                   "etag": new_id(12), "items": items,
                                   "pageInfo": {"totalResults": len(items),
                                                "resultsPerPage": len(items)}})

    # -- scopes, channels.list, playlistItems.list, captions.insert

    def need_scope(self, req, allowed):
        if not (set(allowed) & set(req.scope)):
            raise gerror(403, "insufficientPermissions", "Request had "
                         "insufficient authentication scopes.")

    def channels_list(self, req):
        def validate():
            self.need_scope(req, SCOPES_READ)
            self.check_parts(req, ())
            if req.q("mine") != "true":
                raise gerror(400, "missingRequiredParameter", "No filter "
                             "selected. Expected one of: mine",
                             "youtube.parameter")
        self.charged(validate, 1)
        return Response.json(200, {
            "kind": "youtube#channelListResponse", "etag": new_id(12),
            "items": [{"kind": "youtube#channel", "id":
                       "UCfakechannel000000000000", "contentDetails": {
                           "relatedPlaylists": {"likes": "",
                                                "uploads": UPLOADS_PLAYLIST}}}]})

    def playlist_list(self, req):
        def validate():
            self.need_scope(req, SCOPES_READ)
            self.check_parts(req, ())
            if not req.q("playlistId"):
                raise gerror(400, "missingRequiredParameter", "No filter "
                             "selected. Expected one of: playlistId",
                             "youtube.parameter")
        self.charged(validate, 1)
        pid = req.q("playlistId")
        with self.lock:
            ids = list(reversed(self.order)) if pid == UPLOADS_PLAYLIST \
                else list(self.playlists.get(pid, []))
        if req.q("videoId"):
            ids = [i for i in ids if i == req.q("videoId")]
        ids = ids[:int(req.q("maxResults", "5"))]
        items = [{"kind": "youtube#playlistItem", "id": new_id(16),
                  "snippet": {"playlistId": pid, "resourceId": {
                      "kind": "youtube#video", "videoId": i}},
                  "contentDetails": {"videoId": i}} for i in ids]
        return Response.json(200, {"kind": "youtube#playlistItemListResponse",
                                   "etag": new_id(12), "items": items,
                                   "pageInfo": {"totalResults": len(items),
                                                "resultsPerPage": 50}})

    def captions_insert(self, req):
        def validate():
            self.need_scope(req, {SCOPE_SSL})
            self.check_parts(req, ("snippet",))
            if req.q("uploadType") != "multipart":
                raise gerror(400, "invalidUploadType", "This fake supports "
                             "only uploadType=multipart for captions")
            m = re.match(r"multipart/related;\s*boundary=(\S+)",
                         req.header("Content-Type") or "")
            if not m:
                raise gerror(400, "badContent", "multipart/related needed")
            parts = req.body.split(b"--" + m.group(1).encode())
            if len(parts) < 4:
                raise gerror(400, "mediaBodyRequired", "The request does not "
                             "include the caption track.", "youtube.caption")
            meta = json.loads(parts[1].split(b"\r\n\r\n", 1)[1])
            track = parts[2].split(b"\r\n\r\n", 1)[1]
            snippet = meta.get("snippet") or {}
            with self.lock:
                known = snippet.get("videoId") in self.videos
            if not known:
                raise gerror(404, "videoNotFound", "Video not found.",
                             "youtube.caption")
            if not snippet.get("language") or b"-->" not in track:
                raise gerror(400, "invalidMetadata", "Bad caption track",
                             "youtube.caption")
            return snippet, track
        snippet, track = self.charged(validate, 400)
        with self.lock:
            self.captions.setdefault(snippet["videoId"], []).append(
                {"language": snippet["language"],
                 "name": snippet.get("name", "")})
        atomic_write(os.path.join(self.dir, "captions_%s.srt" %
                                  snippet["videoId"]), track)
        self.core.count("youtube_captions")
        return Response.json(200, {"kind": "youtube#caption",
                                   "id": new_id(16), "snippet": snippet})

    def captions_list(self, req):
        """captions.list?videoId= (50 units, youtube.force-ssl)."""
        def validate():
            self.need_scope(req, {SCOPE_SSL})
            self.check_parts(req, ("snippet",))
            if not req.q("videoId"):
                raise gerror(400, "missingRequiredParameter", "No filter "
                             "selected. Expected one of: videoId",
                             "youtube.parameter")
            with self.lock:
                if req.q("videoId") not in self.videos:
                    raise gerror(404, "videoNotFound", "Video not found.",
                                 "youtube.caption")
        self.charged(validate, 50)
        vid = req.q("videoId")
        with self.lock:
            tracks = list(self.captions.get(vid, []))
        items = [{"kind": "youtube#caption", "id": new_id(16), "snippet": dict(
            t, videoId=vid, trackKind="standard")} for t in tracks]
        return Response.json(200, {"kind": "youtube#captionListResponse",
                                   "etag": new_id(12), "items": items})
