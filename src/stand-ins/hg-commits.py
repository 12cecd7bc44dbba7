"""Writes changesets into local Mercurial repositories, for the hg stand-in
(hg-server.ts, through hg-commit-writer.ts) that the tests, benchmarks and
the demo push to. Run with the Python that runs `hg`, since it imports
mercurial.

One long-lived process, one JSON request per stdin line and one JSON answer
per stdout line: far faster than one `hg commit` per changeset (~0.2 s of
start-up each), and it can store bytes `hg commit` refuses (invalid UTF-8 in
a description, as old real histories contain).

request: {"repo": path, "describe": bool, "commits": [{"parents": [node|"tip"|null...],
          "branch": str, "user": str, "date": "<unix> 0",
          "message": str, "message_b64": str (raw bytes, optional),
          "files": {path: content-or-null (null = remove)},
          "copies": {dest: source}}]}
answer:  {"nodes": [40 hex per commit, in order], "full": [pushlog full=1 entries
          when "describe" is set]} or {"error": text}

bulk request (benchmarks: ~1,100 changesets/s where the request above makes
~320/s): {"repo": path, "generate": {"count": N, "start": n0, "files": F}}
commits N linear changesets on the tip in one transaction, the n-th
changing one of F files, and answers {"nodes": [...]}.
"""
import base64
import json
import sys

from mercurial import context, encoding, hg, ui as uimod

# changelog.add() re-encodes user and description from the local encoding and
# refuses invalid UTF-8; keep the bytes as given instead.
encoding.fromlocal = lambda s: s

def describe(repo, node):
    """The pushlog's full=1 changeset entry (hg.mozilla.org's json-pushes)."""
    ctx = repo[node]
    parents = [p.hex().decode() for p in ctx.parents()] or ["0" * 40]
    return {
        "author": ctx.user().decode("utf-8", "replace"),
        "branch": ctx.branch().decode("utf-8", "replace"),
        "desc": ctx.description().decode("latin-1") if not _utf8(ctx.description()) else ctx.description().decode(),
        "files": [f.decode("utf-8", "replace") for f in ctx.files()],
        "git_node": None,
        "git_parents": [None for _ in parents],
        "node": ctx.hex().decode(),
        "parents": parents,
        "tags": [t.decode() for t in ctx.tags()],
    }


def _utf8(data):
    try:
        data.decode()
        return True
    except UnicodeDecodeError:
        return False


def write(spec):
    ui = uimod.ui.load()
    ui.setconfig(b"ui", b"quiet", b"true")
    repo = hg.repository(ui, spec["repo"].encode())
    out = []
    with repo.wlock(), repo.lock(), repo.transaction(b"hg-commits"):
        for commit in spec["commits"]:
            parents = []
            for p in commit.get("parents") or ["tip"]:
                if p is None:
                    parents.append(None)
                elif p == "tip":
                    parents.append(repo[b"tip"].node())
                else:
                    parents.append(repo[p.encode()].node())
            while len(parents) < 2:
                parents.append(None)
            files = {k.encode(): v for k, v in (commit.get("files") or {}).items()}
            copies = {k.encode(): v.encode() for k, v in (commit.get("copies") or {}).items()}

            def filectx(repo, mctx, path, files=files, copies=copies):
                content = files[path]
                if content is None:
                    return None
                return context.memfilectx(repo, mctx, path, content.encode(), copysource=copies.get(path))

            if "message_b64" in commit:
                message = base64.b64decode(commit["message_b64"])
            else:
                message = commit.get("message", "commit").encode()
            branch = commit.get("branch")
            if branch is None:
                branch = repo[parents[0]].branch().decode() if parents[0] else "default"
            ctx = context.memctx(
                repo,
                tuple(parents),
                message,
                list(files.keys()),
                filectx,
                user=commit.get("user", "Test <test@example.com>").encode(),
                date=commit.get("date", "1700000000 0").encode(),
                extra={b"branch": branch.encode()},
            )
            node = ctx.commit()
            out.append(node.hex() if isinstance(node, bytes) and len(node) == 20 else node.decode())
    return out, [describe(repo, bytes.fromhex(n)) for n in out] if spec.get("describe") else []


def generate(spec):
    ui = uimod.ui.load()
    ui.setconfig(b"ui", b"quiet", b"true")
    repo = hg.repository(ui, spec["repo"].encode())
    count, start, files = spec["generate"]["count"], spec["generate"].get("start", 0), spec["generate"].get("files", 20)
    out = []
    with repo.wlock(), repo.lock(), repo.transaction(b"hg-commits-generate"):
        parent = repo[b"tip"].node()
        for n in range(start, start + count):
            path = b"dir%d/file%d.ftl" % (n % 4, n % files)

            def filectx(repo, mctx, path, n=n):
                return context.memfilectx(repo, mctx, path, b"key%d = value %d\n" % (n, n))

            ctx = context.memctx(
                repo,
                (parent, None),
                b"change %d\n\nBug %d - a longer description line" % (n, n),
                [path],
                filectx,
                user=b"Test <test@example.com>",
                date=b"%d 0" % (1700000000 + n),
                extra={b"branch": b"default"},
            )
            parent = ctx.commit()
            out.append(parent.hex() if isinstance(parent, bytes) and len(parent) == 20 else parent.decode())
    return out


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        spec = json.loads(line)
        if "generate" in spec:
            answer = {"nodes": generate(spec), "full": []}
        else:
            nodes, full = write(spec)
            answer = {"nodes": nodes, "full": full}
    except Exception as error:  # reported to the caller, the loop goes on
        answer = {"error": repr(error)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
