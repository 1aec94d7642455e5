#!/usr/bin/env python3
"""Writes the hostile idea corpus: tests/corpus/ideas/*.json and EXPECTED.tsv
(file name, then a substring its spool/rejected/<name>.error must contain).
Run it again after changing a case; the files are committed so the test does
not depend on this script.  Cases that need the file system (symlinks, FIFOs,
sockets, folders, zero-byte and oversized files, a file still being written)
are made by tests/test_hostile.py at run time."""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "ideas"
G = '"channel": "t", "topic": "x"'


def j(d):
    return json.dumps(d).encode()


def ok(**kw):
    d = {"channel": "t", "topic": "x"}
    d.update(kw)
    return j(d)


def nest(depth):
    return ("{" + G + ', "deep": ' + "[" * depth + "]" * depth + "}").encode()


CASES = [
    # malformed JSON
    ("m-garbage.json", b"this is not json", "line 1, column 1"),
    ("m-truncated.json", b'{"channel": "t", "topic": "x"', "ends too early"),
    ("m-trailing-garbage.json", b'{' + G.encode() + b'} {"again": 1}', "line 1, column"),
    ("m-trailing-comma.json", b'{' + G.encode() + b',}', "line 1, column 32"),
    ("m-single-quotes.json", b"{'channel': 't', 'topic': 'x'}", "invalid JSON"),
    ("m-unquoted-keys.json", b'{channel: "t", topic: "x"}', "invalid JSON"),
    ("m-comment.json", b'// an idea\n{' + G.encode() + b'}', "line 1, column 1"),
    ("m-line3.json", b'{\n  "channel": "t",\n  "topic": x\n}', "line 3, column"),
    ("m-nan.json", b'{' + G.encode() + b', "priority": NaN}', "invalid JSON"),
    ("m-infinity.json", b'{' + G.encode() + b', "target_length_minutes": Infinity}', "invalid JSON"),
    ("m-hex-number.json", b'{' + G.encode() + b', "priority": 0x10}', "invalid JSON"),
    ("m-raw-newline-in-string.json", b'{"channel": "t", "topic": "a\nb"}', "invalid JSON"),
    ("m-bad-escape.json", b'{"channel": "t", "topic": "a\\qb"}', "invalid JSON"),
    ("m-lone-surrogate.json", b'{"channel": "t", "topic": "\\ud800"}', "invalid JSON"),
    ("m-only-whitespace.json", b"   \n\t  \n", "ends too early"),
    ("m-unclosed-string.json", b'{"channel": "t", "topic": "x', "line 1, column 28"),
    # top level
    ("t-array.json", b'[{' + G.encode() + b'}]', "top level must be a JSON object"),
    ("t-string.json", b'"channel t"', "top level must be a JSON object"),
    ("t-number.json", b"42", "top level must be a JSON object"),
    ("t-null.json", b"null", "top level must be a JSON object"),
    ("t-empty-object.json", b"{}", "channel: required"),
    # encodings
    ("e-bom.json", b"\xef\xbb\xbf{" + G.encode() + b"}", "byte order mark"),
    ("e-utf16-bom.json", "{\"channel\": \"t\", \"topic\": \"x\"}".encode("utf-16"), "NUL"),
    ("e-nul-byte.json", b'{"channel": "t",\x00 "topic": "x"}', "NUL"),
    ("e-nul-at-end.json", b'{' + G.encode() + b'}\x00', "NUL"),
    ("e-nul-escape-channel.json", b'{"channel": "t\\u0000/../../etc", "topic": "x"}', "\\u0000"),
    ("e-nul-escape-topic.json", b'{"channel": "t", "topic": "x\\u0000hidden"}', "\\u0000"),
    ("e-latin1.json", '{"channel": "t", "topic": "caf\xe9"}'.encode("latin-1"), "not valid UTF-8"),
    ("e-overlong-slash.json", b'{"channel": "t\xc0\xaf..", "topic": "x"}', "not valid UTF-8"),
    ("e-overlong-3byte.json", b'{"channel": "t", "topic": "\xe0\x80\xaf"}', "not valid UTF-8"),
    ("e-overlong-4byte.json", b'{"channel": "t", "topic": "\xf0\x80\x80\xaf"}', "not valid UTF-8"),
    ("e-surrogate-utf8.json", b'{"channel": "t", "topic": "\xed\xa0\x80"}', "not valid UTF-8"),
    ("e-above-10ffff.json", b'{"channel": "t", "topic": "\xf4\x90\x80\x80"}', "not valid UTF-8"),
    ("e-truncated-seq.json", b'{"channel": "t", "topic": "\xe2\x82"}', "not valid UTF-8"),
    ("e-lone-continuation.json", b'{"channel": "t", "topic": "\x80"}', "not valid UTF-8"),
    ("e-5byte.json", b'{"channel": "t", "topic": "\xf8\x88\x80\x80\x80"}', "not valid UTF-8"),
    # duplicate keys: two parsers could read two different ideas
    ("d-channel-twice.json", b'{"channel": "t", "topic": "x", "channel": "../../etc"}', "duplicate key 'channel'"),
    ("d-topic-twice.json", b'{"channel": "t", "topic": "x", "topic": "y"}', "duplicate key 'topic'"),
    ("d-nested-twice.json", b'{' + G.encode() + b', "extra": {"a": 1, "a": 2}}', "duplicate key 'a'"),
    # size and depth
    ("s-deep-arrays.json", nest(5000), "invalid JSON"),
    ("s-deep-objects.json", ('{' + G + ', "d": ' + '{"a":' * 3000 + '1' + '}' * 3000 + '}').encode(), "invalid JSON"),
    ("s-huge-topic.json", ok(topic="x" * 100000), "topic: longer than 500 bytes"),
    ("s-huge-brief.json", ok(brief="b" * 20001), "brief: longer than 20000 bytes"),
    ("s-huge-audience.json", ok(target_audience="a" * 2001), "target_audience: longer than 2000 bytes"),
    ("s-huge-key.json", ok(idempotency_key="k" * 201), "idempotency_key: longer than 200 bytes"),
    ("s-many-points.json", ok(key_points=["p"] * 51), "key_points: at most 50 points"),
    ("s-huge-number-priority.json", b'{' + G.encode() + b', "priority": 1' + b'0' * 400 + b'}', "priority"),
    ("s-huge-exponent-length.json", b'{' + G.encode() + b', "target_length_minutes": 1e999}', "target_length_minutes"),
    ("s-negative-length.json", ok(target_length_minutes=-5), "target_length_minutes"),
    ("s-tiny-priority.json", b'{' + G.encode() + b', "priority": -1e308}', "between -1000 and 1000"),
    ("s-long-channel.json", ok(channel="c" * 300), "not a valid channel id"),
    # wrong types
    ("w-channel-number.json", j({"channel": 7, "topic": "x"}), "channel: expected a string"),
    ("w-channel-null.json", j({"channel": None, "topic": "x"}), "channel: expected a string"),
    ("w-channel-object.json", j({"channel": {"id": "t"}, "topic": "x"}), "channel: expected a string"),
    ("w-topic-array.json", j({"channel": "t", "topic": ["x"]}), "topic: expected a string"),
    ("w-topic-bool.json", j({"channel": "t", "topic": True}), "topic: expected a string"),
    ("w-topic-empty.json", j({"channel": "t", "topic": ""}), "topic: must not be empty"),
    ("w-brief-number.json", ok(brief=3), "brief: expected a string"),
    ("w-audience-array.json", ok(target_audience=["kids"]), "target_audience: expected a string"),
    ("w-points-object.json", ok(key_points={"a": "b"}), "key_points: expected an array"),
    ("w-point-null.json", ok(key_points=["a", None]), "key_points[1]"),
    ("w-length-string.json", ok(target_length_minutes="5"), "target_length_minutes: expected a number"),
    ("w-priority-bool.json", ok(priority=True), "priority"),
    ("w-priority-float.json", ok(priority=1.5), "whole number"),
    ("w-source-number.json", ok(idea_source=1), "idea_source"),
    ("w-source-unknown.json", ok(idea_source="tv"), "idea_source"),
    ("w-publish-number.json", ok(publish_at=1764600000), "publish_at"),
    ("w-publish-no-zone.json", ok(publish_at="2026-12-01T15:00:00"), "publish_at"),
    ("w-publish-feb30.json", ok(publish_at="2026-02-30T15:00:00Z"), "publish_at"),
    ("w-key-number.json", ok(idempotency_key=5), "idempotency_key"),
    ("w-no-topic.json", j({"channel": "t"}), "topic: required"),
    # channel ids that name something else
    ("c-unknown.json", ok(channel="nope"), "unknown channel 'nope'"),
    ("c-case.json", ok(channel="T"), "unknown channel 'T'"),
    ("c-dotdot.json", ok(channel=".."), "escape"),
    ("c-dot.json", ok(channel="."), "escape"),
    ("c-parent-path.json", ok(channel="../../../etc"), "escape"),
    ("c-slash.json", ok(channel="t/../t"), "escape"),
    ("c-absolute.json", ok(channel="/etc/passwd"), "escape"),
    ("c-backslash.json", ok(channel="..\\..\\t"), "escape"),
    ("c-empty.json", ok(channel=""), "escape"),
    ("c-newline.json", ok(channel="t\nt"), "escape"),
    ("c-dotfile.json", ok(channel=".hidden"), "unknown channel '.hidden'"),
]


def main():
    HERE.mkdir(exist_ok=True)
    names = set()
    rows = []
    for name, data, want in CASES:
        assert name not in names, name
        names.add(name)
        (HERE / name).write_bytes(data)
        rows.append(f"{name}\t{want}\n")
    (HERE / "EXPECTED.tsv").write_text("# file\tsubstring of spool/rejected/<file>.error\n" + "".join(rows))
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
