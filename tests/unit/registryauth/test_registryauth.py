"""The registry's token service: credentials, the policy, the signed token, the endpoint."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.registryauth.credentials import (
    ADMIN_USER,
    ANONYMOUS,
    Identity,
    authenticate,
    docker_config,
    namespace_password,
)
from shipway.registryauth.policy import Policy, Scope, grant, grant_all, parse_scope
from shipway.registryauth.server import load_settings, make_server
from shipway.registryauth.service import Settings, answer
from shipway.registryauth.tokens import Claims, Signer, new_key_pem, verify

KEY = b"k" * 32
PEM = new_key_pem()
SIGNER = Signer(PEM)
SETTINGS = Settings(
    key=KEY, signer=SIGNER, service="registry.test", issuer="shipway", admin_password="root-pw"
)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- credentials ------------------------------------------------------------------------


def test_a_namespace_password_is_its_own_and_depends_on_the_key() -> None:
    a, b = namespace_password(KEY, "team-a"), namespace_password(KEY, "team-b")
    assert a != b
    assert len(a) == 43
    assert namespace_password(b"x" * 32, "team-a") != a
    assert authenticate(KEY, None, "team-a", a) == Identity(namespace="team-a")
    assert authenticate(KEY, None, "team-b", a) is None  # A's password is not B's
    assert authenticate(KEY, None, "team-a", a[:-1] + "x") is None


def test_short_keys_and_non_namespace_names_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        namespace_password(b"short", "team-a")
    with pytest.raises(ValueError, match="not a namespace"):
        namespace_password(KEY, "Team_A")
    assert authenticate(KEY, None, "../x", "anything") is None


def test_the_admin_needs_its_own_password_and_exists_only_when_set() -> None:
    assert authenticate(KEY, "root-pw", ADMIN_USER, "root-pw") == Identity(admin=True)
    assert authenticate(KEY, "root-pw", ADMIN_USER, "nope") is None
    assert authenticate(KEY, None, ADMIN_USER, "") is None
    # The admin's name can never be a namespace's: namespaces are DNS labels.
    with pytest.raises(ValueError, match="not a namespace"):
        namespace_password(KEY, ADMIN_USER)


def test_docker_config_names_every_host() -> None:
    cfg = json.loads(docker_config(("r.example", "10.0.0.1"), "team-a", "pw"))
    assert set(cfg["auths"]) == {"r.example", "10.0.0.1"}
    assert base64.b64decode(cfg["auths"]["10.0.0.1"]["auth"]) == b"team-a:pw"


# -- policy ---------------------------------------------------------------------------------


def test_parse_scope() -> None:
    assert parse_scope("repository:team-a/app/web:pull,push") == Scope(
        "repository", "team-a/app/web", ("pull", "push")
    )
    assert parse_scope("repository(plugin):x/y:pull") == Scope("repository", "x/y", ("pull",))
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert parse_scope("nonsense") is None
    assert parse_scope("repository:x:") is None


TEAM_A = Identity(namespace="team-a")


@pytest.mark.parametrize(
    ("identity", "scope", "granted"),
    [
        # A namespace's own images and cache: pull and push, nothing more.
        (TEAM_A, "repository:team-a/p-1234/web:pull,push", ("pull", "push")),
        (TEAM_A, "repository:team-a/cache/proj/web:pull,push,delete", ("pull", "push")),
        # Another namespace's image, or its cache: nothing (also for a name sharing a prefix).
        (TEAM_A, "repository:team-b/p-1234/web:pull", None),
        (TEAM_A, "repository:team-b/cache/proj/web:push", None),
        (TEAM_A, "repository:team-ab/x:pull", None),
        (TEAM_A, "repository:team-a:pull", None),
        # The mirror: read-only, for every namespace and for anonymous clients.
        (TEAM_A, "repository:library/busybox:pull,push", ("pull",)),
        (TEAM_A, "repository:docker/dockerfile:push", None),
        (ANONYMOUS, "repository:library/busybox:pull", ("pull",)),
        (ANONYMOUS, "repository:team-a/p-1234/web:pull", None),
        # The catalog: the admin's only.
        (TEAM_A, "registry:catalog:*", None),
        (ANONYMOUS, "registry:catalog:*", None),
        (Identity(admin=True), "registry:catalog:*", ("*",)),
        (Identity(admin=True), "repository:library/busybox:pull,push", ("pull", "push")),
        # Names that are not repository names get nothing.
        (TEAM_A, "repository:team-a/../team-b/x:pull", None),
    ],
)
def test_grant(identity: Identity, scope: str, granted: tuple[str, ...] | None) -> None:
    parsed = parse_scope(scope)
    assert parsed is not None
    result = grant(Policy(), identity, parsed)
    assert (result.actions if result else None) == granted


def test_a_prefix_moves_every_namespace_under_it() -> None:
    policy = Policy(prefix="ci")
    assert grant(policy, TEAM_A, Scope("repository", "ci/team-a/x", ("push",))) is not None
    assert grant(policy, TEAM_A, Scope("repository", "team-a/x", ("push",))) is None


def test_grant_all_reads_a_bounded_number_of_scopes() -> None:
    many = [f"repository:team-a/r{i}:pull" for i in range(100)]
    assert len(grant_all(Policy(), TEAM_A, many)) == 16


# -- tokens -----------------------------------------------------------------------------------


def test_a_token_verifies_against_the_key_set_and_nothing_else() -> None:
    result = answer(
        SETTINGS,
        "GET",
        {"service": ["registry.test"], "scope": ["repository:team-a/x:pull,push"]},
        basic("team-a", namespace_password(KEY, "team-a")),
        clock=lambda: 1_000_000,
    )
    assert result.status == 200
    token = str(result.body["token"])
    claims = verify(token, SIGNER.jwks())
    assert claims["sub"] == "team-a"
    assert claims["aud"] == "registry.test"
    assert claims["iss"] == "shipway"
    assert claims["exp"] == 1_000_300
    assert claims["access"] == [
        {"type": "repository", "name": "team-a/x", "actions": ["pull", "push"]}
    ]
    other = Signer(new_key_pem())
    with pytest.raises(ValueError, match="not a token of this key set"):
        verify(token, other.jwks())
    head, _body, sig = token.split(".")
    forged = (
        base64.urlsafe_b64encode(json.dumps({**claims, "sub": "team-b"}).encode())
        .decode()
        .rstrip("=")
    )
    with pytest.raises(ValueError, match="signature"):
        verify(f"{head}.{forged}.{sig}", SIGNER.jwks())


def test_the_key_set_is_what_distribution_reads() -> None:
    (key,) = SIGNER.jwks()["keys"]
    assert key["kty"] == "EC"
    assert key["crv"] == "P-256"
    assert key["alg"] == "ES256"
    assert key["kid"] == SIGNER.kid
    assert len(base64.urlsafe_b64decode(key["x"] + "=")) == 32


def test_only_p256_keys_sign() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="P-256"):
        Signer(other)


# -- the endpoint's answers -------------------------------------------------------------------


def test_a_wrong_password_is_a_401_not_an_anonymous_token() -> None:
    result = answer(
        SETTINGS, "GET", {"scope": ["repository:library/busybox:pull"]}, basic("team-a", "x")
    )
    assert result.status == 401


def test_anonymous_clients_get_the_mirror_only() -> None:
    result = answer(
        SETTINGS,
        "GET",
        {"scope": ["repository:library/busybox:pull", "repository:team-a/x:pull"]},
        None,
    )
    assert result.status == 200
    claims = verify(str(result.body["token"]), SIGNER.jwks())
    assert [a["name"] for a in claims["access"]] == ["library/busybox"]
    assert claims["sub"] == ""


def test_containerd_posts_an_oauth_form() -> None:
    form = {
        "grant_type": ["password"],
        "username": ["team-b"],
        "password": [namespace_password(KEY, "team-b")],
        "service": ["registry.test"],
        "scope": ["repository:team-b/x:pull repository:team-a/y:pull"],
        "client_id": ["containerd-client"],
    }
    result = answer(SETTINGS, "POST", form, None)
    assert result.status == 200
    assert result.body["access_token"] == result.body["token"]
    claims = verify(str(result.body["access_token"]), SIGNER.jwks())
    assert [a["name"] for a in claims["access"]] == ["team-b/x"]
    assert answer(SETTINGS, "POST", {**form, "grant_type": ["refresh_token"]}, None).status == 400
    wrong = {**form, "password": ["nope"]}
    assert answer(SETTINGS, "POST", wrong, None).status == 401


def test_another_service_and_other_schemes_are_refused() -> None:
    assert answer(SETTINGS, "GET", {"service": ["elsewhere"]}, None).status == 400
    assert answer(SETTINGS, "GET", {}, "Bearer abc").status == 401
    assert answer(SETTINGS, "GET", {}, "Basic !!!").status == 401
    assert answer(SETTINGS, "PUT", {}, None).status == 405


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "signing.pem").write_bytes(PEM)
    (tmp_path / "admin").write_text("root-pw\n")
    settings = load_settings(
        key_file=tmp_path / "key",
        signing_key_file=tmp_path / "signing.pem",
        admin_password_file=tmp_path / "admin",
        service="registry.test",
        issuer="shipway",
    )
    server = make_server(settings, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, auth: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_server_answers_token_requests(endpoint: str) -> None:
    query = urllib.parse.urlencode([("service", "registry.test"), ("scope", "registry:catalog:*")])
    status, body = _get(f"{endpoint}/token?{query}", basic(ADMIN_USER, "root-pw"))
    assert status == 200
    assert verify(str(body["token"]), SIGNER.jwks())["access"][0]["name"] == "catalog"
    status, body = _get(f"{endpoint}/token?{query}", basic("team-a", "wrong"))
    assert status == 401
    assert _get(f"{endpoint}/jwks")[1] == SIGNER.jwks()
    assert _get(f"{endpoint}/healthz")[0] == 200
    form = urllib.parse.urlencode(
        {"grant_type": "password", "username": "team-a", "scope": "registry:catalog:*",
         "password": namespace_password(KEY, "team-a"), "service": "registry.test"}
    ).encode()  # fmt: skip
    with urllib.request.urlopen(f"{endpoint}/token", data=form, timeout=5) as resp:
        claims = verify(json.loads(resp.read())["access_token"], SIGNER.jwks())
    assert claims["sub"] == "team-a"
    assert claims["access"] == []
    too_big = urllib.request.Request(f"{endpoint}/token", data=b"x" * 20000, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(too_big, timeout=5)
    assert refused.value.code == 413


# -- the command line -----------------------------------------------------------------------------


def test_the_command_line_mints_what_the_service_accepts(tmp_path: Path) -> None:
    import io

    from shipway.cli import parser

    def run(*argv: str) -> str:
        args = parser().parse_args(["registry-token", *argv])
        out = io.StringIO()
        assert args.func(args, out) == 0
        return out.getvalue()

    pem = tmp_path / "signing.pem"
    pem.write_text(run("signing-key"))
    key = tmp_path / "key"
    key.write_bytes(KEY)
    password = run("password", "team-a", "--key-file", str(key)).strip()
    assert authenticate(KEY, None, "team-a", password) == Identity(namespace="team-a")
    jwks = json.loads(run("jwks", "--signing-key-file", str(pem)))
    token = Signer(pem.read_bytes()).sign(Claims("i", "a", "s", (), issued_at=0, expires_at=1))
    assert verify(token, jwks)["sub"] == "s"


def test_the_service_keeps_a_key_file_verbatim_even_with_whitespace_bytes_at_its_ends(
    tmp_path: Path,
) -> None:
    """32 random bytes may start or end with a whitespace byte (about 1 key in 20): the
    service and the operator read the same Secret, so both must use every byte of it."""
    key = b"\t" + b"r" * 30 + b"\n"
    (tmp_path / "key").write_bytes(key)
    (tmp_path / "signing.pem").write_bytes(PEM)
    settings = load_settings(
        key_file=tmp_path / "key",
        signing_key_file=tmp_path / "signing.pem",
        admin_password_file=None,
        service="registry.test",
        issuer="shipway",
    )
    assert settings.key == key
