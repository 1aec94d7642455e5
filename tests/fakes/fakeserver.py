#!/usr/bin/env python3
"""fakeserver: run ONE strict fake provider server (for acog-batch tests).

    python3 tests/fakes/fakeserver.py --kind openai|elevenlabs|heygen|
        runway|webhook|youtube --port 0 --state-dir DIR
        [--tls-cert CERT --tls-key KEY] [--api-key KEY] [kind options]

With --port 0 the kernel picks a free port on 127.0.0.1; it is written to
DIR/port (write temp, rename) once the socket listens, so a test waits for
that file and then connects.  DIR also receives url, pid, requests.jsonl,
submissions.json and the per-kind files described in README.md; faults are
read from DIR/faults.json on every request.  Python 3.11 standard library
only; ffmpeg makes the audio and video.
"""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakecore import FakeCore  # noqa: E402
from fake_elevenlabs import ElevenLabsApp  # noqa: E402
from fake_heygen import HeyGenApp  # noqa: E402
from fake_openai import OpenAIApp  # noqa: E402
from fake_runway import RunwayApp  # noqa: E402
from fake_webhook import WebhookApp  # noqa: E402
from fake_youtube import YouTubeApp  # noqa: E402

APPS = {"openai": OpenAIApp, "elevenlabs": ElevenLabsApp,
        "heygen": HeyGenApp, "runway": RunwayApp, "webhook": WebhookApp,
        "youtube": YouTubeApp}
DEFAULT_KEY = "test-key"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", required=True, choices=sorted(APPS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--api-key", default=None,
                   help="key the fake requires (default %r)" % DEFAULT_KEY)
    p.add_argument("--ffmpeg", default="ffmpeg")
    p.add_argument("--ffprobe", default="ffprobe")
    g = p.add_argument_group("openai")
    g.add_argument("--no-json-schema", action="store_true",
                   help="answer 400 to response_format json_schema")
    g.add_argument("--prose", action="store_true",
                   help="ignore response_format and answer plain prose, "
                   "like a small local model")
    g.add_argument("--no-auth", action="store_true",
                   help="accept any or no Authorization (local servers)")
    g.add_argument("--models", help="comma list of served models; others 404")
    g.add_argument("--flavor", default="openai",
                   choices=["openai", "llamacpp", "ollama", "vllm"],
                   help="error body shape and rate-limit headers")
    g = p.add_argument_group("elevenlabs")
    g.add_argument("--char-limit", type=int, default=None,
                   help="max characters per request (default per model, "
                   "10000 for eleven_multilingual_v2)")
    g.add_argument("--seconds-per-char", type=float, default=0.06)
    g.add_argument("--voices", help="comma list of known voice ids")
    g.add_argument("--max-concurrent", type=int, default=0,
                   help="429 concurrent_limit_exceeded above this (0: off)")
    g = p.add_argument_group("heygen / runway")
    g.add_argument("--polls", type=int, default=None,
                   help="status polls before a job completes (heygen 2, "
                   "runway 3)")
    g.add_argument("--blocked-word", default=None,
                   help="heygen: input_text containing it gets 400105")
    g.add_argument("--list-page-size", type=int, default=10,
                   help="heygen: most videos per GET /v1/video.list page, "
                   "whatever limit asks (small, so clients must page)")
    g.add_argument("--clip-seconds", type=float, default=None,
                   help="serve every rendered clip this long, whatever "
                   "was asked (a provider returning short clips)")
    g = p.add_argument_group("youtube")
    g.add_argument("--client-id", default="test-client-id")
    g.add_argument("--client-secret", default="test-client-secret")
    g.add_argument("--refresh-token", default="test-refresh-token")
    g.add_argument("--scopes", default="https://www.googleapis.com/auth/"
                   "youtube.upload https://www.googleapis.com/auth/youtube")
    g.add_argument("--token-ttl", type=int, default=3599)
    g.add_argument("--session-ttl", type=float, default=7 * 86400)
    g.add_argument("--quota-limit", type=int, default=10000)
    g.add_argument("--insert-cost", type=int, default=100)
    g.add_argument("--upload-cap", type=int, default=100,
                   help="uploads per Pacific day before uploadLimitExceeded")
    g.add_argument("--thumb-max-bytes", type=int, default=2 * 1024 * 1024)
    g.add_argument("--no-custom-thumbnails", action="store_true")
    g.add_argument("--playlist-max", type=int, default=5000)
    g.add_argument("--final-status", type=int, default=200,
                   choices=[200, 201])
    g.add_argument("--device-interval", type=int, default=1,
                   help="device flow: seconds between token polls")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    args.api_key_given = args.api_key is not None
    if args.api_key is None:
        args.api_key = DEFAULT_KEY
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    core = FakeCore(args, APPS[args.kind])

    def stop(signum, frame):
        threading.Thread(target=core.httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    core.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
