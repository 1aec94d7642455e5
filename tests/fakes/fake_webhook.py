"""fake_webhook: a strict fake of Discord and Slack incoming webhooks.

POST /webhook/<anything> (also /api/webhooks/<id>/<token> and
/services/<...>).  The token lives in the URL, so there is no auth header.
Slack shape when the path contains "slack" or "/services/", or the body
has "text" but neither "content" nor "embeds"; Discord shape otherwise.
Every accepted message is appended to STATE/webhooks.jsonl.
"""

from fakecore import (App, HTTPError, Response, Route, fault_status, new_id,
                      now_iso, retry_after_headers)

PREFIXES = ("/webhook/", "/webhooks/", "/api/webhooks/", "/services/")


class WebhookApp(App):
    kind = "webhook"
    server_name = "fake-webhook"

    def discord_error(self, status, code, message, errors=None,
                      headers=None):
        body = {"message": message, "code": code}
        if errors is not None:
            body["errors"] = errors
        return HTTPError(Response.json(status, body, headers))

    def form_error(self, path, code, message):
        node = {"_errors": [{"code": code, "message": message}]}
        for part in reversed(path):
            node = {str(part): node}
        return self.discord_error(400, 50035, "Invalid Form Body", node)

    def route(self, req):
        if not req.path.startswith(PREFIXES) or \
                len(req.path.rstrip("/")) <= len("/webhook/"):
            raise self.discord_error(404, 10015, "Unknown Webhook")
        if req.method != "POST":
            raise self.discord_error(405, 0, "405: Method Not Allowed")
        return Route(self.post, auth=False)

    def is_slack(self, req, body):
        if "slack" in req.path or req.path.startswith("/services/"):
            return True
        return isinstance(body, dict) and "text" in body and \
            "content" not in body and "embeds" not in body

    def fault_response(self, fault, req):
        status = fault_status(fault)
        if status == 429:
            ra = fault.get("retry_after", 1.0)
            try:
                ra_float = float(ra)
            except (TypeError, ValueError):
                ra_float = 1.0
            headers = retry_after_headers(fault, default=ra)
            headers += [("X-RateLimit-Limit", "5"),
                        ("X-RateLimit-Remaining", "0"),
                        ("X-RateLimit-Reset-After", str(ra_float)),
                        ("X-RateLimit-Bucket", "fakebucket"),
                        ("X-RateLimit-Scope", "shared")]
            if "slack" in req.path or req.path.startswith("/services/"):
                return Response.text(429, "rate_limited", headers)
            return Response.json(429, {
                "message": "You are being rate limited.",
                "retry_after": ra_float, "global": False}, headers)
        if status == 404:
            return self.discord_error(404, 10015, "Unknown Webhook").response
        return self.discord_error(status, fault.get("code", 0), fault.get(
            "message", "%d: injected error" % status),
            headers=retry_after_headers(fault)).response

    def malformed_body(self, req):
        return b'{"id": "1", "content": "unterm'

    def post(self, req):
        ctype = req.media_type()
        if ctype != "application/json":
            if "slack" in req.path or req.path.startswith("/services/"):
                raise HTTPError(Response.text(400, "invalid_payload"))
            raise self.discord_error(400, 50006, "Cannot send an empty "
                                     "message")
        ok, body, _ = req.parsed_json()
        if not ok:
            if "slack" in req.path or req.path.startswith("/services/"):
                raise HTTPError(Response.text(400, "invalid_payload"))
            raise self.discord_error(400, 50109, "The request body contains "
                                     "invalid JSON.")
        if not isinstance(body, dict):
            raise self.discord_error(400, 50109, "The request body contains "
                                     "invalid JSON.")
        if self.is_slack(req, body):
            return self.slack(req, body)
        return self.discord(req, body)

    def slack(self, req, body):
        text = body.get("text")
        if not (isinstance(text, str) and text.strip()) and \
                not body.get("blocks"):
            raise HTTPError(Response.text(400, "no_text"))
        if isinstance(text, str) and len(text) > 40000:
            raise HTTPError(Response.text(400, "msg_too_long"))
        self.record(req, "slack", body)
        return Response.text(200, "ok")

    def discord(self, req, body):
        content = body.get("content")
        embeds = body.get("embeds")
        if content is not None and not isinstance(content, str):
            raise self.form_error(["content"], "BASE_TYPE_STRING",
                                  "Must be a string.")
        if isinstance(content, str) and len(content) > 2000:
            raise self.form_error(["content"], "BASE_TYPE_MAX_LENGTH",
                                  "Must be 2000 or fewer in length.")
        if embeds is not None:
            self.check_embeds(embeds)
        if not (content and content.strip()) and not embeds:
            raise self.discord_error(400, 50006,
                                     "Cannot send an empty message")
        username = body.get("username")
        if username is not None and (not isinstance(username, str) or
                                     not 1 <= len(username) <= 80):
            raise self.form_error(["username"], "BASE_TYPE_BAD_LENGTH",
                                  "Must be between 1 and 80 in length.")
        am = body.get("allowed_mentions")
        if am is not None and (not isinstance(am, dict) or not isinstance(
                am.get("parse", []), list)):
            raise self.form_error(["allowed_mentions"], "MODEL_TYPE_CONVERT",
                                  "Must be an object.")
        self.record(req, "discord", body)
        if req.q("wait") == "true":
            return Response.json(200, {
                "id": str(10 ** 17 + len(content or "")), "type": 0,
                "content": content or "", "embeds": embeds or [],
                "channel_id": "100000000000000001", "webhook_id":
                "100000000000000002", "timestamp": now_iso(),
                "author": {"id": "100000000000000002", "username":
                           username or "Captain Hook", "bot": True}})
        return Response.empty(204)

    def check_embeds(self, embeds):
        if not isinstance(embeds, list):
            raise self.form_error(["embeds"], "BASE_TYPE_ARRAY",
                                  "Must be an array.")
        if len(embeds) > 10:
            raise self.form_error(["embeds"], "BASE_TYPE_MAX_LENGTH",
                                  "Must be 10 or fewer in length.")
        total = 0
        limits = {"title": 256, "description": 4096}
        for i, e in enumerate(embeds):
            if not isinstance(e, dict):
                raise self.form_error(["embeds", i], "MODEL_TYPE_CONVERT",
                                      "Must be an object.")
            for key, lim in limits.items():
                v = e.get(key)
                if v is None:
                    continue
                if not isinstance(v, str) or len(v) > lim:
                    raise self.form_error(["embeds", i, key],
                                          "BASE_TYPE_MAX_LENGTH",
                                          "Must be %d or fewer in length."
                                          % lim)
                total += len(v)
            fields = e.get("fields") or []
            if not isinstance(fields, list) or len(fields) > 25:
                raise self.form_error(["embeds", i, "fields"],
                                      "BASE_TYPE_MAX_LENGTH",
                                      "Must be 25 or fewer in length.")
            for j, f in enumerate(fields):
                if not isinstance(f, dict) or not isinstance(
                        f.get("name"), str) or not isinstance(
                        f.get("value"), str) or not f["name"] or \
                        not f["value"]:
                    raise self.form_error(["embeds", i, "fields", j],
                                          "BASE_TYPE_REQUIRED",
                                          "This field is required")
                if len(f["name"]) > 256 or len(f["value"]) > 1024:
                    raise self.form_error(["embeds", i, "fields", j],
                                          "BASE_TYPE_MAX_LENGTH",
                                          "Field too long.")
                total += len(f["name"]) + len(f["value"])
            for sub, key, lim in (("footer", "text", 2048),
                                  ("author", "name", 256)):
                node = e.get(sub)
                if isinstance(node, dict) and isinstance(node.get(key), str):
                    if len(node[key]) > lim:
                        raise self.form_error(["embeds", i, sub, key],
                                              "BASE_TYPE_MAX_LENGTH",
                                              "Must be %d or fewer in "
                                              "length." % lim)
                    total += len(node[key])
            color = e.get("color")
            if color is not None and (not isinstance(color, int) or
                                      not 0 <= color <= 0xFFFFFF):
                raise self.form_error(["embeds", i, "color"],
                                      "NUMBER_TYPE_MAX",
                                      "int value should be <= 16777215 and "
                                      ">= 0.")
        if total > 6000:
            raise self.form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED",
                                  "Embed size exceeds maximum size of 6000")

    def record(self, req, shape, body):
        self.core.append_jsonl("webhooks.jsonl", {
            "ts": now_iso(), "path": req.raw_path, "shape": shape,
            "json": body, "id": new_id(6)})
        self.core.count("webhook_messages")
