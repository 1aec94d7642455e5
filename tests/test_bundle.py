"""Air-gapped hand-off: the directory publisher's outbox entry is a signed,
self-contained bundle; `upload BUNDLE` on another root verifies it and
publishes it once, however often it is run; any tampering is refused with
the reason and the file.

The connected root publishes through its channel's upload provider: the
`youtube` provider against tests/fakes/fake_youtube.py (one video on the
fake), and the `directory` provider (one outbox entry)."""
import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import Root, run

SIGNED = "  upload: {name: directory, signing_key_file: keys/acog-signing.key, privacy: unlisted}\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An air-gapped root that published one episode into a signed bundle."""
    a = Root(tmp_path_factory.mktemp("gapped") / "root")
    run(["init"], a.path)
    run(["keygen"], a.path)
    a.channel("t", review="false", extra=SIGNED)
    a.drop(a.idea("Why do cats purr?"), "cat.json")
    a.drain()
    [ep] = a.status()
    assert ep["status"] == "published", ep
    return a, ep, a.path / "channels/t/outbox" / ep["id"]


@pytest.fixture
def connected(tmp_path, made):
    a, _, _ = made
    b = Root(tmp_path / "connected")
    run(["init"], b.path)
    b.channel("t", review="false")
    (b.path / "acog.yaml").write_text("trusted_keys: [trusted.pub]\n")
    shutil.copy(a.path / "keys/acog-signing.pub", b.path / "trusted.pub")
    return b


def copy_bundle(made, tmp_path):
    dst = tmp_path / "carried" / made[1]["id"]
    shutil.copytree(made[2], dst)
    return dst


def test_keygen_modes_and_no_overwrite(tmp_path):
    r = tmp_path / "k"
    run(["init"], r)
    out = run(["keygen", "--out", str(tmp_path / "keys")], r).stdout
    priv, pub = tmp_path / "keys/acog-signing.key", tmp_path / "keys/acog-signing.pub"
    assert str(priv) in out and str(pub) in out
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600 and stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert "PRIVATE KEY" in priv.read_text() and "PUBLIC KEY" in pub.read_text()
    before = priv.read_bytes()
    p = run(["keygen", "--out", str(tmp_path / "keys")], r, check=False)
    assert p.returncode != 0 and "never overwrites" in p.stderr and priv.read_bytes() == before


def test_bundle_is_self_contained_and_signed(made, tmp_path):
    a, ep, bundle = made
    manifest_bytes = (bundle / "manifest.json").read_bytes()
    m = json.loads(manifest_bytes)
    names = {f["name"] for f in m["files"]}
    assert names >= {"final.mp4", "metadata.json", "thumbnail.png", "subtitles.srt", "settings.json"}
    assert set(os.listdir(bundle)) == names | {"manifest.json", "manifest.sig"}
    for f in m["files"]:
        data = (bundle / f["name"]).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest(), f["name"]
    assert m["format"] == "acog-bundle/1" and m["episode_id"] == ep["id"] and "publish_at" in m
    assert json.loads((bundle / "settings.json").read_text())["privacy"] == "unlisted"
    # The signature checks out with openssl, independently of acog-batch.
    sig = tmp_path / "sig.bin"
    sig.write_bytes(base64.b64decode((bundle / "manifest.sig").read_text()))
    p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(a.path / "keys/acog-signing.pub"),
                        "-rawin", "-in", str(bundle / "manifest.json"), "-sigfile", str(sig)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "Verified Successfully" in p.stdout, p.stdout + p.stderr


def test_uploaded_twice_makes_one_video(made, connected, tmp_path):
    bundle = copy_bundle(made, tmp_path)
    ep_id = made[1]["id"]
    p = connected.cli("upload", str(bundle))
    assert "queued at the upload stage" in p.stdout
    connected.drain()
    p = connected.cli("upload", str(bundle))
    assert "already on this machine" in p.stdout and "not uploading it again" in p.stdout
    connected.drain()
    [ep] = connected.status()
    assert ep["id"] == ep_id and ep["status"] == "published"
    out = connected.path / "channels/t/outbox"
    assert os.listdir(out) == [ep_id], "one published copy"
    assert (out / ep_id / "final.mp4").read_bytes() == (bundle / "final.mp4").read_bytes()
    jobs = connected.q("SELECT status FROM jobs WHERE episode_id = ? AND stage = 'upload'", ep_id)
    assert jobs == [{"status": "completed"}], jobs
    # one audit row says where the episode came from: the bundle, imported by `upload`
    audit = connected.q("SELECT actor_type, actor_id, new_values FROM audit_logs WHERE entity_id = ?"
                        " AND json_extract(old_values, '$.state') = 'new'", ep_id)
    assert len(audit) == 1 and audit[0]["actor_type"] == "user" and audit[0]["actor_id"] == "upload", audit
    assert "bundle:" in audit[0]["new_values"], audit


def flip_byte(b):
    v = b / "final.mp4"
    data = bytearray(v.read_bytes())
    data[len(data) // 2] ^= 1
    v.write_bytes(bytes(data))


def edit_manifest(b):
    m = json.loads((b / "manifest.json").read_text())
    m["title"] = "Something else entirely"
    (b / "manifest.json").write_text(json.dumps(m, indent=2))


TAMPER = [
    ("byte", flip_byte, "tampered file", "final.mp4"),
    ("removed", lambda b: (b / "thumbnail.png").unlink(), "missing file", "thumbnail.png"),
    ("extra", lambda b: (b / "notes.txt").write_text("hi"), "extra file", "notes.txt"),
    ("manifest", edit_manifest, "bad signature", "manifest.sig"),
    ("unsigned", lambda b: (b / "manifest.sig").unlink(), "unsigned bundle", "manifest.sig"),
]


@pytest.mark.parametrize("kind,tamper,reason,file", TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_bundle_is_refused(made, connected, tmp_path, kind, tamper, reason, file):
    bundle = copy_bundle(made, tmp_path)
    tamper(bundle)
    p = connected.cli("upload", str(bundle), check=False)
    assert p.returncode == 65, (p.returncode, p.stdout, p.stderr)
    assert "refused" in p.stderr and reason in p.stderr and file in p.stderr, p.stderr
    assert connected.status() == [], "nothing imported"


def test_without_trusted_keys_hashes_still_checked(made, connected, tmp_path):
    (connected.path / "acog.yaml").write_text("{}\n")
    bundle = copy_bundle(made, tmp_path)
    flip_byte(bundle)
    p = connected.cli("upload", str(bundle), check=False)
    assert p.returncode == 65 and "tampered file" in p.stderr
    good = copy_bundle(made, tmp_path / "g")
    (good / "manifest.sig").unlink()
    p = connected.cli("upload", str(good), "--trust", str(connected.path / "trusted.pub"), check=False)
    assert p.returncode == 65 and "unsigned bundle" in p.stderr
    connected.cli("upload", str(good))
    assert [e["id"] for e in connected.status()] == [made[1]["id"]]


def test_unusable_signing_key_fails_the_upload_with_the_reason(root):
    run(["keygen"], root.path)
    key = root.path / "keys/acog-signing.key"
    key.chmod(0o644)
    root.channel("t", review="false", extra=SIGNED)
    root.drop(root.idea("Why is the sea salty?"), "sea.json")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "failed" and ep["stage"] == "upload", ep
    assert str(key) in ep["last_error"] and "chmod 600" in ep["last_error"], ep["last_error"]
    jobs = root.q("SELECT retry_count FROM jobs WHERE episode_id = ? AND stage = 'upload'", ep["id"])
    assert jobs == [{"retry_count": 0}], "a bad key is not retried"
    assert not (root.path / "channels/t/outbox" / ep["id"]).exists()


def test_uploaded_twice_makes_one_video_on_youtube(made, tmp_path):
    from test_youtube import YT, video_of
    b = Root(tmp_path / "connected-yt")
    run(["init"], b.path)
    yt = YT(b, tmp_path)
    try:
        yt.acog_yaml("trusted_keys: [trusted.pub]\n")
        shutil.copy(made[0].path / "keys/acog-signing.pub", b.path / "trusted.pub")
        yt.channel("t")
        bundle = copy_bundle(made, tmp_path)
        b.cli("upload", str(bundle))
        yt.drain()
        p = b.cli("upload", str(bundle))
        assert "not uploading it again" in p.stdout
        yt.drain()
        [ep] = b.status()
        assert ep["id"] == made[1]["id"] and ep["status"] == "published", ep
        v = video_of(yt, ep)
        assert len(yt.videos()) == 1
        assert Path(v["path"]).read_bytes() == (bundle / "final.mp4").read_bytes()
        title = json.loads((bundle / "metadata.json").read_text())["final_title"]
        assert v["resource"]["snippet"]["title"] == title
    finally:
        yt.fake.stop()
