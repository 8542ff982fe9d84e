"""A loopback stand-in for the Hugging Face Hub: just the endpoints that push_to_hub, upload_folder,
hf_hub_download and snapshot_download use, for model repos and Spaces (kept as "spaces/user/name"), so the real
client runs end to end over HTTP in tests."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.shas: dict[str, str] = {}
        self.private: dict[str, bool] = {}
        self.space_sdk: dict[str, str | None] = {}
        self.fail_with: int | None = None  # answer every request with this status
        self.requests: list[str] = []
        self.slow_files: dict[str, float] = {}  # filename -> seconds to wait before serving it (a slow download)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub.handle(self, "HEAD")

            def do_GET(self):
                hub.handle(self, "GET")

            def do_POST(self):
                hub.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- HTTP -----------------------------------------------------------------------------------------------
    def reply(self, h, status: int, body: bytes | dict = b"", headers: dict | None = None, head: bool = False):
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if isinstance(body, dict):
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if not head:
            h.wfile.write(data)

    def handle(self, h, method: str) -> None:
        path = unquote(urlparse(h.path).path)
        self.requests.append(f"{method} {path}")
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        if self.fail_with is not None:
            return self.reply(h, self.fail_with, {"error": "the fake Hub is failing on purpose"})
        if method == "POST" and path == "/api/repos/create":
            req = json.loads(body)
            repo = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            if req.get("type") == "space":  # Spaces are kept as "spaces/user/name", with their SDK
                repo = f"spaces/{repo}"
                self.space_sdk[repo] = req.get("sdk")
            existed = repo in self.repos
            self.repos.setdefault(repo, {})
            self.shas.setdefault(repo, "0" * 40)
            self.private[repo] = bool(req.get("private")) or req.get("visibility") == "private"
            return self.reply(h, 409 if existed else 200, {"url": f"{self.url}/{repo}", "name": repo})
        if method == "POST" and path == "/api/validate-yaml":
            return self.reply(h, 200, {})
        parts = path.strip("/").split("/")
        api = len(parts) >= 4 and parts[0] == "api" and parts[1] in ("models", "spaces")
        key = (f"{parts[2]}/{parts[3]}" if parts[1] == "models" else f"spaces/{parts[2]}/{parts[3]}") if api else ""
        if method == "POST" and api and len(parts) >= 6 and parts[4] == "preupload":
            files = json.loads(body)["files"]
            return self.reply(
                h, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
            )
        if method == "POST" and api and len(parts) >= 6 and parts[4] == "commit":
            if key not in self.repos:
                return self.reply(h, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.repos[key][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    self.repos[key].pop(item["value"]["path"], None)
            sha = hashlib.sha1(json.dumps(sorted(self.repos[key])).encode() + self.shas[key].encode()).hexdigest()
            self.shas[key] = sha
            return self.reply(h, 200, {"commitUrl": f"{self.url}/{key}/commit/{sha}", "commitOid": sha})
        if method == "GET" and api and len(parts) >= 6 and parts[4] == "tree":
            if key not in self.repos:
                return self.reply(h, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            files = self.repos[key]
            tree = [{"type": "file", "path": f, "size": len(files[f]), "oid": hashlib.sha1(files[f]).hexdigest()}
                    for f in sorted(files)]  # fmt: skip
            return self.reply(h, 200, json.dumps(tree).encode(), {"Content-Type": "application/json"})
        if method == "GET" and api:
            if key not in self.repos:
                return self.reply(h, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            siblings = [{"rfilename": f} for f in sorted(self.repos[key])]
            return self.reply(h, 200, {"id": key.removeprefix("spaces/"), "sha": self.shas[key], "siblings": siblings})
        if method in ("GET", "HEAD") and len(parts) >= 6 and parts[0] == "spaces" and parts[3] == "resolve":
            return self.serve_file(h, method, "/".join(parts[:3]), "/".join(parts[5:]))  # a Space's file
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self.serve_file(h, method, f"{parts[0]}/{parts[1]}", "/".join(parts[4:]))
        return self.reply(h, 404, {"error": f"fake hub: no route for {method} {path}"})

    def serve_file(self, h, method: str, repo: str, filename: str) -> None:
        if repo not in self.repos:
            return self.reply(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, head=method == "HEAD")
        if filename not in self.repos[repo]:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.shas[repo]}
            return self.reply(h, 404, b"", headers, head=method == "HEAD")
        data = self.repos[repo][filename]
        if method == "GET" and filename in self.slow_files:
            time.sleep(self.slow_files[filename])
        headers = {"X-Repo-Commit": self.shas[repo], "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        return self.reply(h, 200, data, headers, head=method == "HEAD")
