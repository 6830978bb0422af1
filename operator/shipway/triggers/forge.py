"""The forge's API calls as data (pure): reading a file at a commit, setting a commit status.

One :class:`Request` per call; ``http`` sends it. Each forge's endpoints and state names as
their API documentation gives them:

* Gitea ``POST /repos/{owner}/{repo}/statuses/{sha}`` (pending, success, error, failure),
  ``GET /repos/{owner}/{repo}/raw/{path}?ref=``, and several files in one call
  (``POST /repos/{owner}/{repo}/file-contents?ref=``, Gitea 1.24 and later); token auth.
* GitHub the same status endpoint and states, ``GET /repos/{owner}/{repo}/contents/{path}``
  with ``Accept: application/vnd.github.raw``; bearer token.
* GitLab ``POST /projects/{id}/statuses/{sha}`` (pending, running, success, failed,
  canceled; the context is ``name``), ``GET /projects/{id}/repository/files/{path}/raw``;
  ``PRIVATE-TOKEN``.
* Bitbucket Cloud ``POST /repositories/{workspace}/{slug}/commit/{sha}/statuses/build``
  (INPROGRESS, SUCCESSFUL, FAILED, STOPPED; the context is ``key``),
  ``GET /repositories/{workspace}/{slug}/src/{sha}/{path}``; bearer token.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlsplit

from shipway.models.repository import RepositorySpec
from shipway.triggers.decide import full_name

State = Literal["pending", "success", "failure", "error"]
DESCRIPTION = 140
"""GitHub refuses a longer description; the others get the same."""


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def api_root(spec: RepositorySpec) -> str:
    if spec.apiURL:
        return spec.apiURL.rstrip("/")
    if spec.provider == "github":
        return "https://api.github.com"
    if spec.provider == "bitbucket":
        return "https://api.bitbucket.org/2.0"
    parts = urlsplit(spec.url) if "://" in spec.url else None
    host = parts.hostname if parts and parts.hostname else spec.url.partition("@")[2].split(":")[0]
    scheme = parts.scheme if parts and parts.scheme in ("http", "https") else "https"
    port = f":{parts.port}" if parts and parts.port and scheme in ("http", "https") else ""
    suffix = "/api/v4" if spec.provider == "gitlab" else "/api/v1"
    return f"{scheme}://{host}{port}{suffix}"


def _token_headers(spec: RepositorySpec, token: str) -> dict[str, str]:
    if spec.provider == "gitea":
        return {"Authorization": f"token {token}"}
    if spec.provider == "gitlab":
        return {"PRIVATE-TOKEN": token}
    if spec.provider == "github":
        return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def raw_file(
    spec: RepositorySpec, commit: str, path: str, *, username: str = "", password: str = ""
) -> Request:
    """GET one file at a commit; the clone credentials authorize it (GitLab: as a token)."""
    root, name = api_root(spec), full_name(spec)
    enc = quote(path, safe="/")
    headers: dict[str, str] = {}
    if spec.provider == "gitlab":
        project = quote(name, safe="")
        url = f"{root}/projects/{project}/repository/files/{quote(path, safe='')}/raw?ref={commit}"
        if password:
            headers["PRIVATE-TOKEN"] = password
    else:
        if spec.provider == "gitea":
            url = f"{root}/repos/{name}/raw/{enc}?ref={commit}"
        elif spec.provider == "github":
            url = f"{root}/repos/{name}/contents/{enc}?ref={commit}"
            headers["Accept"] = "application/vnd.github.raw"
        else:
            url = f"{root}/repositories/{name}/src/{commit}/{enc}"
        if username or password:
            headers.update(basic(username, password))
    return Request("GET", url, headers)


def read_files(
    spec: RepositorySpec, commit: str, paths: list[str], *, username: str = "", password: str = ""
) -> Request | None:
    """One call for several files at a commit, where the forge has one (Gitea's
    ``file-contents``); None elsewhere (each file is then read with :func:`raw_file`)."""
    if spec.provider != "gitea":
        return None
    url = f"{api_root(spec)}/repos/{full_name(spec)}/file-contents?ref={commit}"
    headers = {"Content-Type": "application/json"}
    if username or password:
        headers.update(basic(username, password))
    return Request("POST", url, headers, json.dumps({"files": paths}).encode())


def parse_files(body: bytes, paths: list[str]) -> dict[str, str | None]:
    """The files :func:`read_files` got: text, or None for a path that is not a file at the
    commit. A path the answer leaves undecided (not listed: Gitea pages long answers; too
    large to be inlined; not text) is left out, for the caller to read on its own."""
    try:
        listed = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(listed, list):
        return {}
    found: dict[str, str | None] = {}
    for path, item in zip(paths, listed, strict=False):
        if item is None:
            found[path] = None  # "Files which could not be retrieved are null"
            continue
        if not isinstance(item, dict) or item.get("path") != path:
            continue
        if item.get("type") != "file":
            found[path] = None
            continue
        content = item.get("content")
        if item.get("encoding") != "base64" or not isinstance(content, str):
            continue
        try:
            found[path] = base64.b64decode(content).decode()
        except ValueError:
            continue
    return found


_GITLAB = {"pending": "running", "success": "success", "failure": "failed", "error": "failed"}
_BITBUCKET = {
    "pending": "INPROGRESS",
    "success": "SUCCESSFUL",
    "failure": "FAILED",
    "error": "FAILED",
}


def commit_status(
    spec: RepositorySpec,
    commit: str,
    state: State,
    *,
    description: str,
    context: str,
    target_url: str,
    token: str,
) -> Request:
    """POST the commit's status: one ``context`` per Repository, updated in place."""
    root, name = api_root(spec), full_name(spec)
    text = description if len(description) <= DESCRIPTION else description[: DESCRIPTION - 1] + "…"
    headers = {"Content-Type": "application/json", **_token_headers(spec, token)}
    doc: dict[str, str]
    if spec.provider == "gitlab":
        url = f"{root}/projects/{quote(name, safe='')}/statuses/{commit}"
        doc = {"state": _GITLAB[state], "name": context, "description": text}
        if target_url:
            doc["target_url"] = target_url
    elif spec.provider == "bitbucket":
        url = f"{root}/repositories/{name}/commit/{commit}/statuses/build"
        doc = {
            "state": _BITBUCKET[state],
            "key": context,
            "name": context,
            "description": text,
            "url": target_url or root,
        }
    else:
        url = f"{root}/repos/{name}/statuses/{commit}"
        doc = {"state": state, "context": context, "description": text}
        if target_url:
            doc["target_url"] = target_url
    return Request("POST", url, headers, json.dumps(doc).encode())
