#!/usr/bin/env python3
"""Writes the broken channel corpus: tests/corpus/channels/<id>.yaml and
EXPECTED.tsv (file, then substrings separated by tabs that the load error
must contain: the file and the line/column or the key).  tests/
test_hostile.py installs each as channels/<id>/channel.yaml beside a good
channel.  Broken key files (missing, loose mode, symlink) need the file
system and a fake provider: tests/test_security.py makes them."""
from pathlib import Path

HERE = Path(__file__).resolve().parent / "channels"

BASE = """\
id: {id}
name: Broken {id}
niche: testing
persona: {{name: Tess, voice: calm}}
style_guide: {{tone: plain}}
video: {{width: 320, height: 180, fps: 10, preset: ultrafast}}
gates: {{script_review: false, review: true}}
providers:
  avatar: {{name: still, image: avatar.png}}
  broll: generated
"""


def base(cid, extra=""):
    return BASE.format(id=cid) + extra


CASES = [
    # YAML syntax: line and column
    ("yaml-bad-indent", lambda i: f"id: {i}\nname: x\n  niche: bad\n", ["line 3, column"]),
    ("yaml-tab-indent", lambda i: f"id: {i}\nproviders:\n\taudio: espeak\n", ["line 3, column"]),
    ("yaml-unclosed-flow", lambda i: f"id: {i}\nvideo: {{width: 320, height: 180\nname: x\n", ["line"]),
    ("yaml-unclosed-quote", lambda i: f"id: {i}\nname: \"Broken\nniche: x\n", ["line"]),
    ("yaml-bad-key-colon", lambda i: f"id: {i}\nname: a: b: c\n", ["line 2, column"]),
    ("yaml-alias", lambda i: base(i, "timeouts: &t {default: 10}\nextra: *t\n"), ["aliases are not supported"]),
    ("yaml-two-documents", lambda i: base(i) + "---\nid: other\n", ["only one YAML document"]),
    ("yaml-top-list", lambda i: f"- id: {i}\n- name: x\n", ["top level must be a mapping"]),
    ("yaml-top-scalar", lambda i: "just words\n", ["top level must be a mapping"]),
    ("yaml-invalid-utf8", lambda i: f"id: {i}\nname: caf\xe9\n".encode("latin-1"), ["line 2, column 10"]),
    ("yaml-nul", lambda i: f"id: {i}\nname: a\x00b\n", ["line 2, column 8", "control characters"]),
    ("yaml-complex-key", lambda i: f"id: {i}\n? [a, b]\n: c\n", ["mapping keys must be plain words"]),
    # identity
    ("id-mismatch", lambda i: base("someone-else"), ["id 'someone-else' does not match its folder name"]),
    # providers
    ("unknown-provider", lambda i: base(i, "  audio: bogus\n"), ["providers.audio", "bogus"]),
    ("unknown-provider-map", lambda i: base(i, "  planning: {name: gpt-magic}\n"), ["gpt-magic"]),
    ("misspelt-stage", lambda i: base(i, "  audoi: espeak\n"), ["providers.audoi", "did you mean \"audio\""]),
    ("misspelt-option", lambda i: base(i, "  planning: {name: openai, base_url: 'http://127.0.0.1:9/v1',"
                                          " model: m, api_key_env: K, temprature: 0.5}\n"),
     ["temprature", "temperature"]),
    ("provider-wrong-type", lambda i: base(i, "  metadata: 42\n"), ["providers.metadata"]),
    ("provider-name-type", lambda i: base(i, "  metadata: {name: [builtin]}\n"), ["providers.metadata"]),
    ("option-wrong-type", lambda i: base(i, "  planning: {name: openai, base_url: 'http://127.0.0.1:9/v1',"
                                            " model: m, api_key_env: K, temperature: hot}\n"),
     ["temperature"]),
    ("option-out-of-range", lambda i: base(i, "  planning: {name: openai, base_url: 'http://127.0.0.1:9/v1',"
                                              " model: m, api_key_env: K, temperature: 9}\n"),
     ["temperature", "9"]),
    ("url-not-http", lambda i: base(i, "  planning: {name: openai, base_url: 'ftp://example.com/v1',"
                                       " model: m, api_key_env: K}\n"), ["base_url", "http"]),
    ("env-name-bad", lambda i: base(i, "  planning: {name: openai, base_url: 'http://127.0.0.1:9/v1',"
                                       " model: m, api_key_env: 'sk-live-not-a-name'}\n"), ["api_key_env", "never the key itself"]),
    # sections keyed by stage or gate
    ("gate-wrong-type", lambda i: base(i).replace("review: true", "review: maybe"), ["gates.review"]),
    ("gate-misspelt", lambda i: base(i).replace("review: true", "reveiw: true"), ["gates.reveiw"]),
    ("timeouts-wrong-type", lambda i: base(i, "timeouts: {assembly: long}\n"), ["timeouts.assembly"]),
    ("timeouts-negative", lambda i: base(i, "timeouts: {default: -5}\n"), ["timeouts.default"]),
    ("timeouts-not-map", lambda i: base(i, "timeouts: 30\n"), ["timeouts must be a map"]),
    ("providers-not-map", lambda i: BASE.format(id=i).split("providers:")[0] + "providers: [espeak]\n",
     ["providers must be a map"]),
]


def main():
    HERE.mkdir(exist_ok=True)
    rows = []
    for name, make, want in CASES:
        data = make(name)
        (HERE / f"{name}.yaml").write_bytes(data if isinstance(data, bytes) else data.encode())
        rows.append("\t".join([f"{name}.yaml"] + want) + "\n")
    (HERE / "EXPECTED.tsv").write_text("# file\tsubstrings of the load error (the file path is checked too)\n"
                                       + "".join(rows))
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
