"""codeship-services.yml → spec.services: every documented key mapped, ignored or refused."""

from __future__ import annotations

from typing import Any

import pytest

from shipway.codeship import (
    SERVICE_KEYS,
    Conversion,
    ConversionError,
    Handling,
    Options,
    WarningKind,
    convert,
)
from shipway.codeship.yamlfile import FileError, parse_yaml
from shipway.compiler.pipeline import compile_pipeline
from shipway.compiler.volumes import ANONYMOUS_ROOT

ONE_STEP = [{"service": "app", "command": "true"}]


class FakeFiles:
    """A checkout in memory: path → text; directories are the prefixes of the paths."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read_text(self, path: str) -> str:
        key = path.removeprefix("./")
        if key not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.files[key]

    def has_content(self, path: str) -> bool:
        key = path.removeprefix("./").rstrip("/")
        if key in ("", "."):
            return bool(self.files)
        return any(name == key or name.startswith(f"{key}/") for name in self.files)


UPLOAD: dict[str, Any] = {"upload": {}}
"""The source of ``shipway run --dir``: builds need one."""


def run(
    services: str | dict[str, Any],
    steps: Any = None,
    files: dict[str, str] | None = None,
    **options: Any,
) -> Conversion:
    doc = parse_yaml(services, "codeship-services.yml") if isinstance(services, str) else services
    return convert(
        doc,
        ONE_STEP if steps is None else steps,
        options=Options(name="demo", **options),
        files=FakeFiles(files or {}),
    )


def errors(services: str | dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConversionError) as info:
        run(services, **kwargs)
    return [str(e) for e in info.value.errors]


def spec_services(conversion: Conversion) -> dict[str, Any]:
    services: dict[str, Any] = conversion.manifest["spec"]["services"]
    return services


def warned(conversion: Conversion, kind: WarningKind | None = None) -> list[str]:
    return [f"{w.where}: {w.message}" for w in conversion.warnings if kind in (None, w.kind)]


# -- file layout ----------------------------------------------------------------------------

TOP_LEVEL = """
app:
  image: ruby:3.3
data:
  image: busybox
  volumes:
    - ./tmp/data:/data
"""

NESTED = """
version: '2'
services:
  app:
    image: ruby:3.3
  data:
    image: busybox
    volumes:
      - ./tmp/data:/data
"""


@pytest.mark.parametrize("text", [TOP_LEVEL, NESTED], ids=["top-level", "under-services"])
def test_services_at_the_top_level_or_under_services_give_the_same_pipeline(text: str) -> None:
    conversion = run(text)
    assert spec_services(conversion) == {
        "app": {"image": "ruby:3.3"},
        "data": {"image": "busybox", "volumes": ["./tmp/data:/data"]},
    }
    assert conversion.warnings == ()  # version is ignored silently, as Codeship does


def test_top_level_compose_keys_next_to_services_are_ignored_with_a_warning() -> None:
    conversion = run(
        "version: '3'\nservices:\n  app: {image: alpine}\nvolumes:\n  db: {}\nx-common: &c {}\n"
    )
    assert warned(conversion, WarningKind.IGNORED) == [
        "volumes: ignored: Codeship ignores this key (top-level volumes)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("- app\n", "must be a map of services, not a list"),
        ("app: busybox\n", "a service must be a map of keys, not a string"),
        ("web app:\n  image: busybox\n", "service names are letters, digits"),
        ("app:\n  command: ls\n", "a service needs image (or build)"),
    ],
)
def test_malformed_services_files_are_errors(text: str, message: str) -> None:
    assert any(message in e for e in errors(text))


def test_a_key_given_twice_is_refused_with_its_line() -> None:
    with pytest.raises(FileError, match="found the key 'image' twice"):
        parse_yaml("app:\n  image: a\n  image: b\n", "codeship-services.yml")


def test_merge_keys_still_let_an_explicit_key_win() -> None:
    text = (
        "x-base: &base\n  image: busybox\n  working_dir: /src\napp:\n  <<: *base\n  image: alpine\n"
    )
    assert spec_services(run(text))["app"] == {"image": "alpine", "working_dir": "/src"}


# -- the three kinds of key ------------------------------------------------------------------

IGNORED = [key for key, rule in SERVICE_KEYS.items() if rule.handling is Handling.IGNORED]


@pytest.mark.parametrize("key", IGNORED)
def test_every_ignored_key_is_dropped_with_a_warning(key: str) -> None:
    conversion = run({"app": {"image": "busybox", key: "x"}})
    assert spec_services(conversion) == {"app": {"image": "busybox"}}
    assert [(w.where, w.kind) for w in conversion.warnings] == [(f"app.{key}", "ignored")]


def test_codeship_documented_ignored_keys_are_in_the_ignored_table() -> None:
    documented = [
        "cgroup_parent",
        "container_name",
        "cpu_quota",
        "devices",
        "extends",
        "group_add",
        "ipc",
        "isolation",
        "logging",
        "log_driver",
        "log_opt",
        "mac_address",
        "memswap_limit",
        "mem_swappiness",
        "networks",
        "network_mode",
        "oom_score_adj",
        "pid",
        "stop_signal",
        "stop_grace_period",
        "tty",
        "tmpfs",
        "ulimits",
        "volume_driver",
        "privileged",
        "external_links",
        "ports",
        "stdin_open",
        "labels",
    ]
    assert [k for k in documented if k not in IGNORED] == []


@pytest.mark.parametrize(
    ("body", "where", "needles"),
    [
        (
            {"build": {"encrypted_args": "abc=="}},
            "app.build.encrypted_args",
            ["AES key", "--aes-key", "--args-secret SERVICE=SECRET"],
        ),
        (
            {"image": "busybox", "encrypted_env_file": "env.encrypted"},
            "app.encrypted_env_file",
            ["AES key", "--aes-key", "Secret", "envFrom", "--env-secret"],
        ),
        (
            {"image": "busybox", "encrypted_environment": ["abc=="]},
            "app.encrypted_environment",
            ["Secret", "envFrom"],
        ),
        ({"image": "docker:stable-dind"}, "app.image", ["privileged", "add_docker: true"]),
        ({"image": "docker.io/library/docker:1.9-dind"}, "app.image", ["add_docker: true"]),
        ({"dockerfile": "Dockerfile.app"}, "app.dockerfile", ["part of a build"]),
    ],
    ids=[
        "encrypted_args",
        "encrypted_env_file",
        "encrypted_environment",
        "dind",
        "dind-full-name",
        "dockerfile-alone",
    ],
)
def test_keys_shipway_cannot_honour_are_errors_naming_the_alternative(
    body: dict[str, Any], where: str, needles: list[str]
) -> None:
    (message,) = errors({"app": body}, source=UPLOAD)
    assert message.startswith(f"codeship-services.yml: {where}: ")
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    "body",
    [
        {"image": "docker:20.10", "add_docker": True},
        {"image": "docker:stable-dind", "add_docker": True},
        {"image": "docker:20.10", "add_docker": "yes"},
    ],
)
def test_add_docker_asks_for_a_daemon(body: dict[str, Any]) -> None:
    services = spec_services(run({"app": body}))
    assert services == {"app": {"image": body["image"], "add_docker": True}}


@pytest.mark.parametrize(
    "volume",
    [
        "/var/run/docker.sock:/var/run/docker.sock",
        {"type": "bind", "source": "/run/docker.sock", "target": "/var/run/docker.sock"},
    ],
)
def test_a_volume_of_the_hosts_docker_socket_asks_for_a_daemon(volume: Any) -> None:
    """The socket is never mounted (no host paths): the service gets add_docker instead."""
    result = run({"app": {"image": "docker:20.10", "volumes": [volume, "./src:/src"]}})
    assert spec_services(result) == {
        "app": {"image": "docker:20.10", "volumes": ["./src:/src"], "add_docker": True}
    }
    (warning,) = [w for w in warned(result) if "docker.sock" in w]
    assert warning.startswith("app.volumes[0]: ")
    assert "add_docker" in warning


def test_add_docker_false_is_harmless() -> None:
    assert spec_services(run({"app": {"image": "busybox", "add_docker": False}})) == {
        "app": {"image": "busybox"}
    }


@pytest.mark.parametrize("image", ["docker:24-cli", "docker", "mydind-tools:1", "nginx"])
def test_images_that_are_not_a_daemon_are_fine(image: str) -> None:
    """The docker client image runs (it has nothing to talk to, which the step will say)."""
    assert spec_services(run({"app": {"image": image}})) == {"app": {"image": image}}


def test_a_compose_v1_dockerfile_next_to_an_image_is_ignored() -> None:
    """codeship-tool-examples 08 (app1): no build, so nothing is built; jet runs the image."""
    conversion = run({"app": {"image": "08testimage1", "dockerfile": "Dockerfile.app1"}})
    assert spec_services(conversion) == {"app": {"image": "08testimage1"}}
    assert warned(conversion, WarningKind.IGNORED) == [
        "app.dockerfile: ignored: without build nothing is built; the service runs 08testimage1"
    ]


def test_every_problem_is_reported_not_just_the_first() -> None:
    """One pass: the missing source first, the converter's errors, then the compiler's about
    what did convert (a link to nothing, an unbalanced quote), never "unknown service" for a
    service that had errors of its own."""
    found = errors(
        {
            "app": {"build": {"encrypted_args_file": "args.enc"}},
            "db": {"image": "postgres", "encrypted_env_file": "db.enc"},
            "web": {"image": "nginx", "links": ["cache"], "command": "echo 'open"},
        },
        steps=[{"service": "app"}, {"service": "db"}, {"service": "web"}],
    )
    assert [e.split(": ")[1] for e in found] == [
        "a build needs the project's files (app build from the checkout)",
        "app.build.encrypted_args_file",
        "db.encrypted_env_file",
        "web.command",
        "web.links[0]",
    ]


def test_unknown_and_misplaced_keys_are_ignored_with_a_warning_as_codeship_did() -> None:
    conversion = run(
        {
            "app": {
                "image": "busybox",
                "volume_from": ["data"],
                "volumeMounts": [{"name": "x"}],
                "healthcheck": {"test": "true", "intervall": "1s"},
                "build": {"context": ".", "cached": True},
            }
        },
        source=UPLOAD,
    )
    ignored = warned(conversion, WarningKind.IGNORED)
    assert any(
        w.startswith(
            "app.volume_from: ignored: unknown key 'volume_from' here (did you mean volumes_from?)"
        )
        for w in ignored
    )
    assert any(w.startswith("app.volumeMounts: ignored: unknown key") for w in ignored)
    assert any("app.healthcheck.intervall: ignored" in w for w in ignored)
    assert any(
        w.startswith("app.build.cached: ignored: a key of the service, not of its build")
        for w in ignored
    )
    assert "cached" not in spec_services(conversion)["app"]
    assert all("no effect" in w for w in ignored if "unknown key" in w)


# -- build: deprecated forms, --prebuilt ------------------------------------------------------

CHAIN_LINKS = """
demo:
  build:
    image: myapp
    dockerfile_path: Dockerfile
    path: app/
  links:
    - socat
socat:
  build:
    image: socat-redis
    context: .
    dockerfile: Dockerfile.socat
    args: {VERSION: "1"}
  links:
    - redis
redis:
  image: redis:2.8.19
"""


def test_builds_are_kept_in_the_new_spelling_with_their_args_and_cache_settings() -> None:
    text = CHAIN_LINKS.replace(
        "redis:\n  image", "  cached: true\n  default_cache_branch: main\nredis:\n  image"
    )
    conversion = run(text, steps=[{"service": "demo", "command": "true"}], source=UPLOAD)
    services = spec_services(conversion)
    assert services["demo"] == {
        "build": {"image": "myapp", "dockerfile": "Dockerfile", "context": "app/"},
        "links": ["socat"],
    }
    assert services["socat"] == {
        "build": {
            "image": "socat-redis",
            "context": ".",
            "dockerfile": "Dockerfile.socat",
            "args": {"VERSION": "1"},
        },
        "cached": True,
        "default_cache_branch": "main",
        "links": ["redis"],
    }
    assert warned(conversion, WarningKind.DEPRECATED) == [
        "demo.build.dockerfile_path: deprecated: use build.dockerfile",
        "demo.build.path: deprecated: use build.context",
    ]
    compiled = compile_pipeline(conversion.manifest["spec"])
    socat = compiled.services["socat"].build
    assert socat is not None
    assert (socat.dockerfile_name, socat.args[0][0], socat.args[0][1].source, socat.cached) == (
        "Dockerfile.socat",
        "VERSION",
        "1",
        True,
    )


def test_prebuilt_runs_the_images_the_builds_name_and_flags_the_deprecated_keys() -> None:
    conversion = run(CHAIN_LINKS, steps=[{"service": "demo", "command": "true"}], prebuilt=True)
    services = spec_services(conversion)
    assert services["demo"] == {"image": "myapp", "links": ["socat"]}
    assert services["socat"] == {"image": "socat-redis", "links": ["redis"]}
    assert warned(conversion, WarningKind.DEPRECATED) == [
        "demo.build.dockerfile_path: deprecated: use build.dockerfile",
        "demo.build.path: deprecated: use build.context",
    ]
    compiled = compile_pipeline(conversion.manifest["spec"])
    # links are transitive: a demo step starts redis and socat next to it
    assert [link.service for link in compiled.services["demo"].links] == ["redis", "socat"]


def test_prebuilt_needs_a_name_for_the_image() -> None:
    (message,) = errors({"app": {"build": {"context": "."}}}, prebuilt=True)
    assert "does not name one: set build.image" in message


def test_compose_v1_dockerfile_next_to_build_belongs_to_the_build() -> None:
    conversion = run(
        {"app": {"build": "./08.deployment-container", "dockerfile": "D.build"}}, source=UPLOAD
    )
    assert spec_services(conversion)["app"]["build"] == {
        "context": "./08.deployment-container",
        "dockerfile": "D.build",
    }


# -- environment ---------------------------------------------------------------------------


def test_environment_values_keep_the_text_that_was_written() -> None:
    text = """
app:
  image: python
  environment:
    PYTHON_VERSION: 3.10
    BUILD: 0012
    DEBUG: true
    EMPTY: ""
"""
    assert spec_services(run(text))["app"]["environment"] == {
        "PYTHON_VERSION": "3.10",
        "BUILD": "0012",
        "DEBUG": "true",
        "EMPTY": "",
    }


def test_a_variable_without_value_is_left_out_with_a_warning() -> None:
    conversion = run({"app": {"image": "a", "environment": ["NAME=Codeship", "HOME_TOKEN"]}})
    assert spec_services(conversion)["app"]["environment"] == {"NAME": "Codeship"}
    (warning,) = conversion.warnings
    assert warning.where == "app.environment[1]"
    assert "host's environment" in warning.message


def test_env_file_is_inlined_and_wins_over_environment() -> None:
    conversion = run(
        {"app": {"image": "a", "environment": {"MODE": "dev", "KEEP": "1"}, "env_file": "app.env"}},
        files={"app.env": "# settings\nMODE=test\n\n  URL=http://x?a=b=c\n"},
    )
    assert spec_services(conversion)["app"]["environment"] == {
        "MODE": "test",
        "KEEP": "1",
        "URL": "http://x?a=b=c",
    }
    assert "2 variables of app.env are inlined" in conversion.warnings[0].message


def test_a_missing_env_file_is_an_error() -> None:
    (message,) = errors(
        {"app": {"image": "a", "env_file": ["ok.env", "missing.env"]}}, files={"ok.env": "A=1\n"}
    )
    assert message.startswith("codeship-services.yml: app.env_file[1]: cannot read missing.env")


def test_env_secret_stands_in_for_the_encrypted_file() -> None:
    conversion = run(
        {"app": {"image": "a", "encrypted_env_file": "env.encrypted"}},
        env_secrets={"app": "app-env"},
    )
    assert spec_services(conversion)["app"] == {
        "image": "a",
        "envFrom": [{"secretRef": {"name": "app-env"}}],
    }
    compiled = compile_pipeline(conversion.manifest["spec"])
    assert compiled.services["app"].env_from[0].secretRef is not None


def test_env_secret_for_an_unknown_service_is_an_error() -> None:
    assert any(
        "unknown service 'web'" in e
        for e in errors({"app": {"image": "a"}}, env_secrets={"web": "s"})
    )


# -- volumes, links ---------------------------------------------------------------------------

PARALLEL_OUTPUT = """
data:
  image: busybox
  volumes:
    - /data
app:
  image: example/compute
  volumes_from:
    - data
"""


def test_volumes_from_a_data_only_service_shares_its_anonymous_volume() -> None:
    conversion = run(PARALLEL_OUTPUT)
    compiled = compile_pipeline(conversion.manifest["spec"])
    (mount,) = compiled.services["app"].mounts
    assert (mount.sub_path, mount.mount_path) == (f"{ANONYMOUS_ROOT}/data/data", "/data")
    assert compiled.services["data"].mounts == compiled.services["app"].mounts


def test_a_volume_with_files_in_the_checkout_warns_that_the_workspace_starts_empty() -> None:
    conversion = run(
        {"app": {"image": "a", "volumes": ["./:/app", "./tmp/out:/out"]}},
        files={"src/main.py": "print()"},
    )
    assert [w.where for w in conversion.warnings] == ["app.volumes[0]"]
    assert "workspace starts empty" in conversion.warnings[0].message


def test_compose_long_volume_syntax_becomes_the_short_form() -> None:
    conversion = run(
        {
            "app": {
                "image": "a",
                "volumes": [
                    {"type": "bind", "source": "./tmp", "target": "/app", "read_only": True},
                    {"type": "volume", "target": "/cache"},
                ],
                "volumes_from": ["service:data"],
            },
            "data": {"image": "busybox", "volumes": ["/artifacts"]},
        }
    )
    assert spec_services(conversion)["app"]["volumes"] == ["./tmp:/app:ro", "/cache"]
    assert spec_services(conversion)["app"]["volumes_from"] == ["data"]


def test_volumes_from_a_container_is_refused() -> None:
    (message,) = errors({"app": {"image": "a", "volumes_from": ["container:cache"]}})
    assert "only services can share volumes" in message


def test_an_absolute_host_path_is_a_directory_of_the_claim_with_a_note() -> None:
    conversion = run({"app": {"image": "a", "volumes": ["/tmp:/log", "/dev/shm:/dev/shm"]}})
    assert spec_services(conversion)["app"]["volumes"] == ["/tmp:/log", "/dev/shm:/dev/shm"]
    notes = warned(conversion, WarningKind.NOTE)
    assert notes[0].startswith(
        "app.volumes[0]: /tmp was a directory of Codeship's build machine, gone with the build: "
        "here it is the directory .shipway/host/tmp of the pipeline's workspace claim"
    )
    assert notes[1].startswith("app.volumes[1]: /dev/shm was")


def test_links_with_aliases_and_the_deprecated_link_key() -> None:
    text = """
lb:
  image: nginx
  links:
    - app:app1
    - app:app2
  link: cache
app:
  image: example/app
cache:
  image: redis
test:
  image: example/ci
  links:
    - lb:lb
"""
    conversion = run(text, steps=[{"service": "test", "command": "ab http://lb/"}])
    assert spec_services(conversion)["lb"]["links"] == ["app:app1", "app:app2", "cache"]
    assert warned(conversion, WarningKind.DEPRECATED) == ["lb.link: deprecated: use links"]
    compiled = compile_pipeline(conversion.manifest["spec"])
    links = {link.service: link.aliases for link in compiled.services["test"].links}
    assert links == {"app": ("app1", "app2"), "cache": (), "lb": ("lb",)}


def test_depends_on_in_the_compose_map_form_and_a_healthcheck() -> None:
    text = """
app:
  image: example/app
  depends_on:
    db: {condition: service_healthy}
db:
  image: postgres:16
  healthcheck:
    test: ["CMD-SHELL", "pg_isready -U postgres"]
    interval: 1s
    timeout: 3s
    retries: 30
    start_period: 5s
"""
    services = spec_services(run(text))
    assert services["app"]["depends_on"] == ["db"]
    assert services["db"]["healthcheck"] == {
        "test": ["CMD-SHELL", "pg_isready -U postgres"],
        "interval": "1s",
        "timeout": "3s",
        "retries": 30,
        "start_period": "5s",
    }


def test_a_healthcheck_that_is_disabled_without_test_is_dropped() -> None:
    services = spec_services(run({"app": {"image": "a", "healthcheck": {"disable": True}}}))
    assert services == {"app": {"image": "a"}}


def test_an_unknown_healthcheck_key_is_ignored_with_a_suggestion() -> None:
    conversion = run({"app": {"image": "a", "healthcheck": {"test": "x", "intervall": "1s"}}})
    assert any(
        "app.healthcheck.intervall: ignored: unknown key 'intervall' here (did you mean "
        "interval?)" in w
        for w in warned(conversion, WarningKind.IGNORED)
    )


def test_shipway_extensions_pass_through() -> None:
    body = {
        "image": "a",
        "resources": {"limits": {"memory": "1Gi", "cpu": 2}},
        "envFrom": [{"configMapRef": {"name": "settings"}}],
    }
    services = spec_services(run({"app": body}))
    assert services["app"] == body
