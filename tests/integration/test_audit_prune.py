"""Audit retention: `kinko audit prune DIR --older-than DAYS [--archive DIR2]`
moves or deletes sealed log files (never the live one, never the newest
sealed one) and leaves a signed checkpoint, so that `kinko audit verify`
passes on what remains and, with --archive, on both as one trail."""
import glob
import os
import shutil
import subprocess
import time

from conftest import KINKO


def run(*args):
    p = subprocess.run([KINKO] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def logs(d):
    return sorted(os.path.basename(f) for f in glob.glob(os.path.join(d, "kinko-audit-*.jsonl")))


def sealed(d):
    return [f for f in logs(d) if os.path.exists(os.path.join(d, f + ".digest"))]


def trail(make_server, calls=40):
    """A running server whose audit folder has several sealed files and a live one."""
    s = make_server(["--dev", "--audit-max-file-bytes", "3000", "--audit-sync", "fsync"])
    kms = s.client()
    for i in range(calls):
        kms.create_key(Description="retention %d" % i)
    audit = os.path.join(s.data_dir, "audit")
    assert len(sealed(audit)) >= 4, logs(audit)
    time.sleep(1.1)  # sealed strictly before "now" for --older-than 0
    kms.list_keys(Limit=1)  # a record in the live file
    assert len(logs(audit)) == len(sealed(audit)) + 1, logs(audit)
    return s, kms, audit


def test_prune_without_archive(make_server):
    s, kms, audit = trail(make_server)
    before, before_sealed = logs(audit), sealed(audit)
    live = [f for f in before if f not in before_sealed]
    # Nothing is a day old yet.
    rc, out = run("audit", "prune", audit, "--older-than", "1")
    assert rc == 0 and "nothing to prune" in out and logs(audit) == before
    rc, out = run("audit", "prune", audit, "--older-than", "0")
    assert rc == 0, out
    after = logs(audit)
    # Every sealed file but the newest is gone, with its digest; the live one stays.
    assert sealed(audit) == before_sealed[-1:]
    assert all(f in after for f in live) and live
    assert after == before_sealed[-1:] + live
    assert not glob.glob(os.path.join(audit, before_sealed[0] + ".digest"))
    assert os.path.exists(os.path.join(audit, "kinko-pruned-checkpoint.json"))
    rc, out = run("audit", "verify", audit)
    assert rc == 0, out
    assert "records up to seq" in out and "were pruned" in out and before_sealed[-2] in out
    # The server keeps writing and sealing on top of the pruned trail.
    for i in range(20):
        kms.create_key(Description="after the prune %d" % i)
    assert s.stop() == 0  # seals the live file: nothing is half-sealed while verify reads
    rc, out = run("audit", "verify", audit)
    assert rc == 0, out
    # A second prune moves the checkpoint forward.
    time.sleep(1.1)
    rc, out = run("audit", "prune", audit, "--older-than", "0")
    assert rc == 0 and "pruned" in out, out
    rc, out = run("audit", "verify", audit)
    assert rc == 0, out
    # Removing the checkpoint is noticed: the chain names a digest that is gone.
    os.unlink(os.path.join(audit, "kinko-pruned-checkpoint.json"))
    rc, out = run("audit", "verify", audit)
    assert rc == 1 and "REMOVED digest" in out, out


def test_prune_with_archive_verifies_both_ways(make_server, tmp_path):
    s, kms, audit = trail(make_server)
    before_sealed = sealed(audit)
    archive = str(tmp_path / "archive")
    rc, out = run("audit", "prune", audit, "--older-than", "0", "--archive", archive)
    assert rc == 0, out
    assert logs(archive) == before_sealed[:-1]
    assert sealed(audit) == before_sealed[-1:]
    assert os.path.exists(os.path.join(archive, "kinko-audit-public.pem"))
    assert (os.stat(archive).st_mode & 0o777) == 0o700
    # The remaining trail alone ...
    rc, out = run("audit", "verify", audit)
    assert rc == 0 and "were pruned" in out, out
    # ... and the archive with it, as one trail from seq 1.
    rc, out = run("audit", "verify", audit, "--archive", archive)
    assert rc == 0, out
    assert "were pruned" not in out and "OK: " in out
    # An archived file changed is found when both are verified.
    victim = os.path.join(archive, before_sealed[1])
    data = open(victim).read().replace("retention", "retentioN", 1)
    open(victim, "w").write(data)
    rc, out = run("audit", "verify", audit, "--archive", archive)
    assert rc == 1 and "CHANGED" in out, out


def test_prune_never_takes_the_only_sealed_file_or_the_live_one(make_server):
    s = make_server(["--dev"])
    s.client().list_keys()
    s.stop()  # seals the live file: the newest (and only) sealed file
    audit = os.path.join(s.data_dir, "audit")
    before = logs(audit)
    time.sleep(1.1)
    rc, out = run("audit", "prune", audit, "--older-than", "0")
    assert rc == 0 and "nothing to prune" in out
    assert logs(audit) == before


def test_prune_usage():
    rc, out = run("audit", "prune", "/nonexistent")
    assert rc == 2 and "usage: kinko audit prune" in out
    rc, out = run("audit", "prune", "/nonexistent", "--older-than", "soon")
    assert rc == 2 and "--older-than takes a number of days" in out
    rc, out = run("audit", "prune", "/nonexistent", "--older-than", "3")
    assert rc == 1 and "cannot read the folder" in out
