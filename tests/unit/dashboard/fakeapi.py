"""A fake API server for the dashboard's unit tests: who the user is, what RBAC allows,
the Pipelines there are, and the patches and creates it received."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class FakeApi:
    def __init__(self, user: str = "alice", allowed: set[tuple[str, str]] | None = None) -> None:
        self.user = user
        self.allowed = allowed if allowed is not None else set()
        """(verb, namespace) pairs allowed; namespace "" is cluster-wide."""
        self.pipelines: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.reviews = 0
        self.created: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}
        """bearer token -> user name (TokenReview)"""
        self.grants: dict[str, set[tuple[str, str]]] = {}
        """user -> (verb, namespace) allowed (SubjectAccessReview, for another user)"""
        self.seen_tokens: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews", self.selfsubjectreview
        )
        app.router.add_post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", self.selfaccessreview
        )
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self.tokenreview)
        app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", self.accessreview)
        base = "/apis/shipway.dev/v1alpha1/namespaces/{ns}/pipelines/{name}"
        app.router.add_get(base, self.get_pipeline)
        app.router.add_patch(base, self.patch_pipeline)
        app.router.add_post(
            "/apis/shipway.dev/v1alpha1/namespaces/{ns}/pipelines", self.create_pipeline
        )
        app.router.add_get("/api/v1/namespaces/{ns}/secrets/{name}", self.no_secret)
        return app

    async def selfsubjectreview(self, request: web.Request) -> web.Response:
        return web.json_response({"status": {"userInfo": {"username": self.user, "groups": []}}})

    async def selfaccessreview(self, request: web.Request) -> web.Response:
        self.reviews += 1
        attrs = (await request.json())["spec"]["resourceAttributes"]
        key = (attrs["verb"], attrs.get("namespace", ""))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        allowed = (
            self.grants.get(self.tokens[token], set()) if token in self.tokens else self.allowed
        )
        return web.json_response({"status": {"allowed": key in allowed}})

    async def tokenreview(self, request: web.Request) -> web.Response:
        token = (await request.json())["spec"]["token"]
        user = self.tokens.get(token)
        if user is None:
            return web.json_response({"status": {"authenticated": False, "error": "bad token"}})
        return web.json_response(
            {"status": {"authenticated": True, "user": {"username": user, "groups": ["dev"]}}}
        )

    async def accessreview(self, request: web.Request) -> web.Response:
        spec = (await request.json())["spec"]
        attrs = spec["resourceAttributes"]
        key = (attrs["verb"], attrs.get("namespace", ""))
        return web.json_response(
            {"status": {"allowed": key in self.grants.get(spec["user"], set())}}
        )

    async def get_pipeline(self, request: web.Request) -> web.Response:
        self.seen_tokens.append(request.headers.get("Authorization", ""))
        found = self.pipelines.get((request.match_info["ns"], request.match_info["name"]))
        if found is None:
            return web.json_response({"message": "not found"}, status=404)
        return web.json_response(found)

    async def patch_pipeline(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        if ("patch", ns) not in self.allowed:
            return web.json_response({"message": "forbidden by RBAC"}, status=403)
        self.patches.append((ns, name, await request.json()))
        return web.json_response(self.pipelines[(ns, name)])

    async def create_pipeline(self, request: web.Request) -> web.Response:
        ns = request.match_info["ns"]
        if ("create", ns) not in self.allowed:
            return web.json_response({"message": "forbidden by RBAC"}, status=403)
        body = await request.json()
        key = (ns, body["metadata"]["name"])
        if key in self.pipelines:
            return web.json_response({"message": "already exists"}, status=409)
        body["metadata"] |= {"namespace": ns, "uid": f"uid-{key[1]}"}
        self.pipelines[key] = body
        self.created.append(body)
        return web.json_response(body, status=201)

    async def no_secret(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "not found"}, status=404)
