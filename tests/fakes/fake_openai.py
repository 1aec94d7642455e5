"""fake_openai: a strict fake of the OpenAI-compatible Chat Completions API.

POST /v1/chat/completions, and the stored completions of the real API:
`store: true` (with `metadata`, at most 16 string pairs) keeps the answer,
GET /v1/chat/completions lists them (metadata[k]=v, model, after, limit,
order) and GET /v1/chat/completions/{id} retrieves one; they are mirrored
in STATE/openai_stored.json.  Validates auth, content type, JSON, model,
messages and response_format (text / json_object / json_schema), then
answers with: a JSON document generated from the request's JSON schema; for
json_object, JSON derived from a schema (or example) embedded in the
prompt, else a scripted or canned object; for text, a markdown video script
with [AVATAR], [VOICEOVER] and [BROLL: ...] markers.  Answers can be
scripted per prompt with STATE/responses.json.
"""

import json
import re
import time

from fakecore import (App, HTTPError, Response, Route, RuleBook, atomic_write,
                      fault_status, is_int, is_num, new_id,
                      retry_after_headers, word_count)

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
REASONING_RE = re.compile(r"^(o[1-9]|gpt-5)")

ERROR_DEFAULTS = {
    400: ("invalid_request_error", "context_length_exceeded",
          "This model's maximum context length is 128000 tokens. However, "
          "your messages resulted in 130000 tokens. Please reduce the length "
          "of the messages."),
    401: ("invalid_request_error", "invalid_api_key",
          "Incorrect API key provided. You can find your API key at "
          "https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model `missing-model` does not exist or you do not have "
          "access to it."),
    409: ("invalid_request_error", None, "Conflict"),
    422: ("invalid_request_error", None, "Unprocessable Entity"),
    500: ("server_error", None, "The server had an error while processing "
          "your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please "
          "try again later"),
    504: ("server_error", None, "Gateway timeout."),
}

BROLL = ["a slow pan across a starry night sky",
         "close-up of hands sketching a diagram on paper",
         "time-lapse of clouds drifting over a city skyline",
         "an animated globe turning slowly",
         "a library aisle with warm light"]


# ---------------------------------------------------------------- schema

def resolve(schema, root):
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        node = root
        if not ref.startswith("#"):
            return {}
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
        seen += 1
    return schema if isinstance(schema, dict) else {}


def schema_type(schema):
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t is None:
        if "properties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"
    return t


class Generator:
    """Builds a JSON document that satisfies a (simple) JSON schema."""

    def __init__(self, root, topic):
        self.root = root
        self.topic = topic or "the topic"

    def gen(self, schema, name="value", index=0, depth=0):
        schema = resolve(schema, self.root)
        if depth > 12:
            return None
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][index % len(schema["enum"])]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                opts = [resolve(o, self.root) for o in schema[key]]
                pick = next((o for o in opts if schema_type(o) != "null"),
                            opts[0])
                return self.gen(pick, name, index, depth + 1)
        if schema.get("allOf"):
            merged = {}
            for part in schema["allOf"]:
                part = resolve(part, self.root)
                for k, v in part.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged.setdefault("required", []).extend(v)
                    else:
                        merged[k] = v
            return self.gen(merged, name, index, depth + 1)
        t = schema_type(schema)
        if t == "object":
            out = {}
            for pname, pschema in (schema.get("properties") or {}).items():
                out[pname] = self.gen(pschema, pname, index, depth + 1)
            return out
        if t == "array":
            return self.gen_array(schema, name, depth)
        if t == "integer":
            return int(self.gen_number(schema, 3))
        if t == "number":
            return self.gen_number(schema, 1.5)
        if t == "boolean":
            return True
        if t == "null":
            return None
        return self.gen_string(schema, name, index)

    def gen_array(self, schema, name, depth):
        n = max(int(schema.get("minItems", 0)), 2)
        if "maxItems" in schema:
            n = min(n, int(schema["maxItems"]))
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        if isinstance(items, list):      # draft-4 tuple form
            prefix, items = items, {}
        out = []
        for i in range(max(n, len(prefix))):
            sub = prefix[i] if i < len(prefix) else items
            out.append(self.gen(sub, singular(name), i, depth + 1))
        if schema.get("uniqueItems"):
            seen, uniq = set(), []
            for v in out:
                key = json.dumps(v, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    uniq.append(v)
            out = uniq
        return out

    def gen_number(self, schema, default):
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        v = default
        if lo is not None and v <= lo:
            v = lo + (1 if "exclusiveMinimum" in schema else 0)
        if hi is not None and v >= hi:
            v = hi - (1 if "exclusiveMaximum" in schema else 0)
        if lo is not None and hi is not None and not (lo <= v <= hi):
            v = (lo + hi) / 2
        mult = schema.get("multipleOf")
        if mult:
            v = round(v / mult) * mult
        return v

    def gen_string(self, schema, name, index):
        fmt = schema.get("format")
        if fmt == "date-time":
            s = "2026-12-01T15:00:00Z"
        elif fmt == "date":
            s = "2026-12-01"
        elif fmt in ("uri", "url"):
            s = "https://example.com/%s/%d" % (name, index + 1)
        elif fmt == "email":
            s = "someone%d@example.com" % (index + 1)
        elif fmt == "uuid":
            s = "00000000-0000-4000-8000-%012d" % (index + 1)
        else:
            s = self.plausible(name, index, schema.get("maxLength"))
        lo = int(schema.get("minLength", 0))
        if len(s) < lo:
            s = s + "x" * (lo - len(s))
        if "maxLength" in schema:
            s = s[:int(schema["maxLength"])]
        return s

    def plausible(self, name, index, max_len):
        n = name.lower()
        topic = self.topic
        if "script" in n and (max_len is None or max_len > 400):
            return script_text(topic)
        if "title" in n:
            return "%s, Explained (Part %d)" % (topic.rstrip("?.!"), index + 1)
        if n == "narration":
            return ("Part %d of the story about %s. People asked this for "
                    "centuries, and the first clue was hiding in plain "
                    "sight. Scientists measured it carefully and found a "
                    "pattern that nobody expected." % (index + 1,
                                                      topic.rstrip("?.!")))
        if n in ("tag", "tags", "keyword", "keywords"):
            return "%s-%d" % (slug(topic)[:20] or "tag", index + 1)
        if "prompt" in n:
            return "A bright illustration about %s, scene %d" % (topic,
                                                                  index + 1)
        if "url" in n or "link" in n:
            return "https://example.com/%s/%d" % (slug(name), index + 1)
        if "id" == n or n.endswith("_id"):
            return "%s-%d" % (slug(name), index + 1)
        if "lang" in n:
            return "en"
        return ("%s %d about %s: a short, clear sentence that a curious "
                "viewer can follow." % (name.replace("_", " ").capitalize(),
                                        index + 1, topic))


def singular(name):
    return name[:-1] if name.endswith("s") and len(name) > 1 else name


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def script_text(topic):
    t = topic.rstrip("?.!") or "Our topic"
    return (
        "# %s\n\n"
        "[AVATAR]\n"
        "Hi, and welcome back. Today we look at %s. It sounds simple, but the "
        "answer is surprising.\n\n"
        "[VOICEOVER]\n"
        "People have asked this question for centuries. The first clue is "
        "hiding in plain sight. Scientists measured it carefully and found a "
        "pattern that nobody expected.\n\n"
        "[BROLL: %s]\n\n"
        "[VOICEOVER]\n"
        "Here is the key idea. Every piece of the puzzle fits once you look "
        "at it from the right angle. That angle is what we explore next.\n\n"
        "[BROLL: %s]\n\n"
        "[AVATAR]\n"
        "So now you know the short version. If you enjoyed this, subscribe "
        "for the next episode.\n" % (t, t.lower(), BROLL[0], BROLL[2]))


def prose_text(topic):
    """What a small model that ignores every format asks answers: paragraphs."""
    t = topic.rstrip("?.!") or "our topic"
    return (
        "Have you ever wondered about %s? Most people never stop to think "
        "about it, yet the answer is all around us.\n\n"
        "It starts with a simple observation. When you look closely, a "
        "pattern appears, and scientists have studied that pattern for a very "
        "long time. They measured it again and again.\n\n"
        "The explanation fits together like a puzzle. Each piece makes sense "
        "once you see how it connects to the others, and the whole picture "
        "is surprisingly elegant.\n\n"
        "So the next time you notice it, you will know what is going on. "
        "Thanks for watching, and stay curious.\n" % t.lower())


def validate(doc, schema, root=None, where="$"):
    """Small JSON-schema checker used by tests; returns a list of errors."""
    root = root if root is not None else schema
    schema = resolve(schema, root)
    errs = []
    if "const" in schema and doc != schema["const"]:
        errs.append("%s: not const" % where)
    if "enum" in schema and doc not in schema["enum"]:
        errs.append("%s: not in enum" % where)
    if "anyOf" in schema or "oneOf" in schema:
        opts = schema.get("anyOf") or schema.get("oneOf")
        if all(validate(doc, o, root, where) for o in opts):
            errs.append("%s: matches no option" % where)
        return errs
    t = schema.get("type")
    types = t if isinstance(t, list) else [t] if t else []
    checks = {"object": lambda v: isinstance(v, dict),
              "array": lambda v: isinstance(v, list),
              "string": lambda v: isinstance(v, str),
              "integer": is_int, "number": is_num,
              "boolean": lambda v: isinstance(v, bool),
              "null": lambda v: v is None}
    if types and not any(checks[x](doc) for x in types if x in checks):
        return errs + ["%s: not %s" % (where, "/".join(types))]
    if isinstance(doc, dict):
        props = schema.get("properties") or {}
        for r in schema.get("required") or []:
            if r not in doc:
                errs.append("%s: missing %s" % (where, r))
        if schema.get("additionalProperties") is False:
            for k in doc:
                if k not in props:
                    errs.append("%s: extra %s" % (where, k))
        for k, v in doc.items():
            if k in props:
                errs += validate(v, props[k], root, where + "." + k)
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0):
            errs.append("%s: too few items" % where)
        if "maxItems" in schema and len(doc) > schema["maxItems"]:
            errs.append("%s: too many items" % where)
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(doc):
                errs += validate(v, items, root, "%s[%d]" % (where, i))
    if isinstance(doc, str):
        if len(doc) < schema.get("minLength", 0):
            errs.append("%s: too short" % where)
        if "maxLength" in schema and len(doc) > schema["maxLength"]:
            errs.append("%s: too long" % where)
    if is_num(doc):
        if "minimum" in schema and doc < schema["minimum"]:
            errs.append("%s: below minimum" % where)
        if "maximum" in schema and doc > schema["maximum"]:
            errs.append("%s: above maximum" % where)
    return errs


def strict_problems(schema, root, ctx=()):
    """What OpenAI's strict mode would reject in `schema` (first problem)."""
    schema = resolve(schema, root)
    t = schema_type(schema)
    if t == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return ("In context=%s, 'additionalProperties' is required to be "
                    "supplied and to be false." % (ctx,))
        missing = [k for k in props if k not in (schema.get("required") or [])]
        if missing:
            return ("In context=%s, 'required' is required to be supplied and "
                    "to be an array including every key in properties. "
                    "Missing '%s'." % (ctx, missing[0]))
        for k, v in props.items():
            p = strict_problems(v, root, ctx + ("properties", k))
            if p:
                return p
    if t == "array" and isinstance(schema.get("items"), dict):
        return strict_problems(schema["items"], root, ctx + ("items",))
    for key in ("anyOf",):
        for i, o in enumerate(schema.get(key) or []):
            p = strict_problems(o, root, ctx + (key, str(i)))
            if p:
                return p
    return None


def find_embedded_json(text):
    """Objects found in free text, in order (JSON Schema or examples)."""
    dec = json.JSONDecoder()
    found = []
    i = text.find("{")
    while i != -1 and len(found) < 8:
        try:
            obj, end = dec.raw_decode(text, i)
            if isinstance(obj, dict) and obj:
                found.append(obj)
                i = text.find("{", end)
                continue
        except ValueError:
            pass
        i = text.find("{", i + 1)
    return found


def looks_like_schema(obj):
    return ("$schema" in obj or
            (obj.get("type") == "object" and isinstance(obj.get("properties"),
                                                         dict)))


# ---------------------------------------------------------------- the app

class OpenAIApp(App):
    kind = "openai"
    server_name = "fake-openai"

    def __init__(self, core):
        super().__init__(core)
        self.responses = RuleBook(core.path("responses.json"),
                                  default_times=-1)
        self.models = ([m.strip() for m in self.args.models.split(",")
                        if m.strip()] if self.args.models else None)
        self.stored = []  # stored completions, oldest first

    # -- errors in the flavour's shape

    def error(self, status, message, etype="invalid_request_error",
              param=None, code=None, headers=None):
        flavor = self.args.flavor
        if flavor == "llamacpp":
            body = {"error": {"code": status, "message": message,
                              "type": etype}}
        elif flavor == "vllm":
            body = {"object": "error", "message": message, "type": etype,
                    "param": param, "code": status}
        else:
            body = {"error": {"message": message, "type": etype,
                              "param": param, "code": code}}
        return HTTPError(Response.json(status, body, headers))

    def route(self, req):
        path = req.path.rstrip("/")
        if path in ("/v1/chat/completions", "/chat/completions"):
            if req.method == "GET":
                return Route(self.list_stored)
            if req.method != "POST":
                raise self.error(405, "Invalid method for URL (%s %s)" %
                                 (req.method, req.path))
            return Route(self.chat)
        m = re.match(r"^(?:/v1)?/chat/completions/([^/]+)$", path)
        if m and req.method == "GET":
            return Route(self.get_stored)
        if req.path.rstrip("/") in ("/v1/models", "/models") and \
                req.method == "GET":
            return Route(self.list_models)
        raise self.error(404, "Invalid URL (%s %s)" % (req.method, req.path))

    def authenticate(self, req):
        if self.args.no_auth:
            return
        auth = req.header("Authorization")
        if not auth:
            raise self.error(401, "You didn't provide an API key. You need to "
                             "provide your API key in an Authorization header "
                             "using Bearer auth (i.e. Authorization: Bearer "
                             "YOUR_KEY).")
        if auth != "Bearer " + self.args.api_key:
            raise self.error(401, ERROR_DEFAULTS[401][2],
                             code="invalid_api_key")

    def fault_response(self, fault, req):
        status = fault_status(fault)
        headers = retry_after_headers(fault)
        if status == 429:
            if fault.get("insufficient_quota"):
                e = self.error(429, "You exceeded your current quota, please "
                               "check your plan and billing details.",
                               etype="insufficient_quota",
                               code="insufficient_quota", headers=headers)
            else:
                headers += self.ratelimit_headers(remaining=0)
                e = self.error(429, "Rate limit reached for requests. Please "
                               "try again later.", etype="requests",
                               code="rate_limit_exceeded", headers=headers)
            return e.response
        if status == 503 and self.args.flavor == "llamacpp":
            return self.error(503, "Loading model", etype="unavailable_error",
                              headers=headers).response
        etype, code, msg = ERROR_DEFAULTS.get(
            status, ("server_error" if status >= 500 else
                     "invalid_request_error", None, "Error %d" % status))
        return self.error(status, fault.get("message", msg),
                          etype=fault.get("type", etype),
                          param=fault.get("param"),
                          code=fault.get("code", code),
                          headers=headers).response

    def malformed_body(self, req):
        return (b'{"id": "chatcmpl-broken", "object": "chat.completion", '
                b'"choices": [{"index": 0, "message": {"role": "assistant", '
                b'"content": "{\\"title\\": \\"unterminated')

    def ratelimit_headers(self, remaining=499):
        if self.args.flavor != "openai":
            return []
        return [("x-ratelimit-limit-requests", "500"),
                ("x-ratelimit-limit-tokens", "200000"),
                ("x-ratelimit-remaining-requests", str(remaining)),
                ("x-ratelimit-remaining-tokens", str(remaining * 400)),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-reset-tokens", "6m0s")]

    def list_models(self, req):
        names = self.models or ["gpt-4o-mini"]
        return Response.json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000,
             "owned_by": "fake"} for m in names]})

    # -- validation

    def parse_body(self, req):
        if req.media_type() != "application/json":
            raise self.error(400, "Unsupported content type: '%s'. This API "
                             "method only accepts 'application/json' "
                             "requests." % (req.header("Content-Type") or ""))
        ok, body, _ = req.parsed_json()
        if not ok:
            raise self.error(400, "We could not parse the JSON body of your "
                             "request. (HINT: This likely means you aren't "
                             "using your HTTP library correctly. The OpenAI "
                             "API expects a JSON payload.)")
        if not isinstance(body, dict):
            raise self.error(400, "Invalid type for request body: expected "
                             "an object.")
        return body

    def check_messages(self, messages):
        if messages is None:
            raise self.error(400, "Missing required parameter: 'messages'.",
                             param="messages", code="missing_required_parameter")
        if not isinstance(messages, list) or not messages:
            raise self.error(400, "Invalid 'messages': empty array. Expected "
                             "an array with minimum length 1.",
                             param="messages", code="empty_array")
        texts = []
        for i, m in enumerate(messages):
            where = "messages[%d]" % i
            if not isinstance(m, dict):
                raise self.error(400, "Invalid type for '%s': expected an "
                                 "object." % where, param=where,
                                 code="invalid_type")
            role = m.get("role")
            if role not in ROLES:
                raise self.error(400, "Invalid value: '%s'. Supported values "
                                 "are: 'system', 'assistant', 'user', 'tool', "
                                 "'function' and 'developer'." % role,
                                 param=where + ".role", code="invalid_value")
            content = m.get("content")
            if content is None and role != "assistant":
                raise self.error(400, "Missing required parameter: "
                                 "'%s.content'." % where,
                                 param=where + ".content",
                                 code="missing_required_parameter")
            if isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict) or "type" not in part:
                        raise self.error(400, "Invalid content part in '%s'."
                                         % where, param=where + ".content",
                                         code="invalid_type")
                    if part.get("type") == "text":
                        texts.append(str(part.get("text", "")))
            elif isinstance(content, str):
                texts.append(content)
            elif content is not None:
                raise self.error(400, "Invalid type for '%s.content': "
                                 "expected one of a string or array of "
                                 "objects." % where, param=where + ".content",
                                 code="invalid_type")
        return texts

    def check_options(self, body, model):
        t = body.get("temperature")
        if t is not None and (not is_num(t) or not 0 <= t <= 2):
            raise self.error(400, "Invalid 'temperature': decimal above "
                             "maximum value. Expected a value <= 2, but got "
                             "%r instead." % (t,), param="temperature",
                             code="decimal_above_max_value")
        for key in ("max_completion_tokens", "max_tokens"):
            v = body.get(key)
            if v is not None and (not is_int(v) or v < 1):
                raise self.error(400, "Invalid '%s': integer below minimum "
                                 "value. Expected a value >= 1." % key,
                                 param=key, code="integer_below_min_value")
        if body.get("max_tokens") is not None and REASONING_RE.match(model):
            raise self.error(400, "Unsupported parameter: 'max_tokens' is not "
                             "supported with this model. Use "
                             "'max_completion_tokens' instead.",
                             param="max_tokens", code="unsupported_parameter")
        n = body.get("n")
        if n is not None and (not is_int(n) or not 1 <= n <= 128):
            raise self.error(400, "Invalid 'n'.", param="n",
                             code="invalid_value")
        stop = body.get("stop")
        if stop is not None and not (isinstance(stop, str) or (
                isinstance(stop, list) and len(stop) <= 4 and
                all(isinstance(s, str) for s in stop))):
            raise self.error(400, "Invalid 'stop'.", param="stop",
                             code="invalid_type")
        if body.get("stream") not in (None, False):
            raise self.error(400, "This fake does not implement streaming "
                             "(stream: true); acog-batch must not need it.",
                             param="stream", code="unsupported_value")
        seed = body.get("seed")
        if seed is not None and not is_int(seed):
            raise self.error(400, "Invalid type for 'seed': expected an "
                             "integer.", param="seed", code="invalid_type")

    def check_response_format(self, rf, texts):
        """Returns (kind, schema, name)."""
        if rf is None:
            return "text", None, None
        if not isinstance(rf, dict) or rf.get("type") not in (
                "text", "json_object", "json_schema"):
            raise self.error(400, "Invalid value for 'response_format.type': "
                             "expected one of 'text', 'json_object' or "
                             "'json_schema'.", param="response_format.type",
                             code="invalid_value")
        kind = rf["type"]
        if kind == "json_object":
            if not any("json" in t.lower() for t in texts):
                raise self.error(400, "'messages' must contain the word "
                                 "'json' in some form, to use "
                                 "'response_format' of type 'json_object'.",
                                 param="messages")
            return kind, rf.get("schema"), None
        if kind == "text":
            return kind, None, None
        if self.args.no_json_schema:
            raise self.error(400, "response_format type 'json_schema' is not "
                             "supported by this server",
                             param="response_format")
        js = rf.get("json_schema")
        if not isinstance(js, dict):
            raise self.error(400, "Missing required parameter: "
                             "'response_format.json_schema'.",
                             param="response_format.json_schema",
                             code="missing_required_parameter")
        name = js.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise self.error(400, "Invalid 'response_format.json_schema.name':"
                             " string does not match pattern. Expected a "
                             "string that matches the pattern "
                             "'^[a-zA-Z0-9_-]+$'.",
                             param="response_format.json_schema.name",
                             code="invalid_value")
        schema = js.get("schema", {})
        if not isinstance(schema, dict):
            raise self.error(400, "Invalid type for 'response_format."
                             "json_schema.schema': expected an object.",
                             param="response_format.json_schema.schema",
                             code="invalid_type")
        if js.get("strict") is True:
            problem = strict_problems(schema, schema)
            if problem:
                raise self.error(400, "Invalid schema for response_format "
                                 "'%s': %s" % (name, problem),
                                 param="response_format",
                                 code="invalid_json_schema")
        return kind, schema, name

    # -- answering

    def chat(self, req):
        body = self.parse_body(req)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise self.error(400, "you must provide a model parameter")
        if self.models is not None and model not in self.models:
            raise self.error(404, "The model `%s` does not exist or you do "
                             "not have access to it." % model,
                             code="model_not_found")
        texts = self.check_messages(body.get("messages"))
        self.check_options(body, model)
        store = self.check_store(body)
        kind, schema, _ = self.check_response_format(
            body.get("response_format"), texts)
        prompt = "\n".join(texts)
        topic = guess_topic(body["messages"])

        finish, refusal = "stop", None
        scripted = self.responses.pick("POST", prompt)
        if scripted is not None and "content" in scripted.rule:
            c = scripted.rule["content"]
            content = c if isinstance(c, str) else json.dumps(c)
            finish = scripted.rule.get("finish_reason", "stop")
            refusal = scripted.rule.get("refusal")
        else:
            content = self.answer(kind, schema, prompt, topic)

        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        fault = req.fault.name if req.fault else None
        if cap and word_count(content) > cap:
            content, finish = cut_words(content, cap), "length"
        if fault == "length":
            content, finish = content[:max(1, len(content) // 2)], "length"
        elif fault == "refusal":
            content = None
            refusal = req.fault.get("message", "I'm sorry, I can't help with "
                                    "that request.")
        elif fault == "content_filter":
            content, finish = None, "content_filter"

        prompt_tokens = sum(word_count(t) for t in texts)
        completion_tokens = word_count(content or refusal or "")
        self.core.count("openai_chat")
        out = {
            "id": "chatcmpl-" + new_id(12), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {
                "role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens,
                      "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        }
        headers = [("x-request-id", "req_" + new_id(12)),
                   ("openai-processing-ms", "42")]
        headers += self.ratelimit_headers()
        if store:
            self.keep(out, body.get("metadata") or {})
        return Response.json(200, out, headers)

    # -- stored completions

    def check_store(self, body):
        """`store` and `metadata` as the real API checks them; True when
        the completion is to be kept."""
        store = body.get("store")
        if store is not None and not isinstance(store, bool):
            raise self.error(400, "Invalid type for 'store': expected a "
                             "boolean.", param="store", code="invalid_type")
        md = body.get("metadata")
        if md is None:
            return bool(store)
        if not isinstance(md, dict) or len(md) > 16:
            raise self.error(400, "Invalid 'metadata': expected an object "
                             "with at most 16 keys.", param="metadata",
                             code="invalid_type")
        for k, v in md.items():
            if len(k) > 64 or not isinstance(v, str) or len(v) > 512:
                raise self.error(400, "Invalid 'metadata': keys are strings "
                                 "of at most 64 characters, values strings "
                                 "of at most 512.", param="metadata." + k,
                                 code="invalid_value")
        return bool(store)

    def keep(self, out, metadata):
        with self.core.lock:
            self.stored.append(dict(out, metadata=metadata,
                                    request_id="req_" + new_id(12)))
            atomic_write(self.core.path("openai_stored.json"),
                         json.dumps(self.stored, indent=1))

    def list_query(self, req):
        """GET /v1/chat/completions: after, limit (1-100), metadata[k]=v,
        model, order (asc|desc); any other parameter is refused."""
        q, md = {}, {}
        for name, vals in req.query.items():
            m = re.match(r"^metadata\[([^\]]{1,64})\]$", name)
            if m:
                md[m.group(1)] = vals[-1]
            elif name in ("after", "limit", "model", "order"):
                q[name] = vals[-1]
            else:
                raise self.error(400, "Unrecognized query parameter: '%s'."
                                 % name, param=name, code="unknown_parameter")
        limit = q.get("limit", "20")
        if not re.match(r"^[0-9]+$", limit) or not 1 <= int(limit) <= 100:
            raise self.error(400, "Invalid 'limit': expected an integer "
                             "from 1 to 100.", param="limit",
                             code="invalid_value")
        if q.get("order", "asc") not in ("asc", "desc"):
            raise self.error(400, "Invalid 'order': expected 'asc' or "
                             "'desc'.", param="order", code="invalid_value")
        return q, md, int(limit)

    def list_stored(self, req):
        q, md, limit = self.list_query(req)
        with self.core.lock:
            items = [c for c in self.stored
                     if all(c["metadata"].get(k) == v for k, v in md.items())
                     and q.get("model", c["model"]) == c["model"]]
        if q.get("order", "asc") == "desc":
            items.reverse()
        if "after" in q:
            ids = [c["id"] for c in items]
            items = items[ids.index(q["after"]) + 1:] if q["after"] in ids \
                else []
        page = items[:limit]
        self.core.count("openai_chat_list")
        return Response.json(200, {
            "object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > len(page)})

    def get_stored(self, req):
        cid = req.path.rstrip("/").rsplit("/", 1)[1]
        with self.core.lock:
            found = [c for c in self.stored if c["id"] == cid]
        if not found:
            raise self.error(404, "No chat completion found with id '%s'."
                             % cid, param="completion_id",
                             code="not_found")
        self.core.count("openai_chat_retrieve")
        return Response.json(200, found[0])

    def answer(self, kind, schema, prompt, topic):
        if self.args.prose:
            return prose_text(topic)
        if kind == "json_schema":
            return json.dumps(Generator(schema, topic).gen(schema, "root"))
        if kind == "json_object":
            if isinstance(schema, dict):      # llama.cpp extension
                return json.dumps(Generator(schema, topic).gen(schema, "root"))
            found = find_embedded_json(prompt)
            for obj in found:
                if looks_like_schema(obj):
                    return json.dumps(Generator(obj, topic).gen(obj, "root"))
            if found:
                return json.dumps(found[0])
            return json.dumps({"answer": "Here is a short answer about %s."
                               % topic, "topic": topic})
        return script_text(topic)


def guess_topic(messages):
    """A short topic from the last user message, for plausible answers."""
    for m in reversed(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            text = m["content"]
            hit = re.search(r'"topic"\s*:\s*"([^"]{1,120})"', text) or \
                re.search(r"(?im)^\s*topic\s*[:=]\s*(.{1,120})$", text)
            if hit:
                return hit.group(1).strip()
            line = text.strip().splitlines()[0] if text.strip() else ""
            line = re.sub(r"(?i)^(please\s+)?(write|make|create|plan|draft)"
                          r"\s+(a|an|the)?\s*\w*\s*(about|on|for)\s+", "",
                          line)
            return " ".join(line.split()[:10])[:120] or "the topic"
    return "the topic"


def cut_words(text, n):
    parts = re.split(r"(\s+)", text)
    out, words = [], 0
    for p in parts:
        if p and not p.isspace():
            if words >= n:
                break
            words += 1
        out.append(p)
    return "".join(out).rstrip()
