"""``buildctl-shipway``: the entrypoint of build pods, a thin wrapper around ``buildctl``.

buildctl's own errors are gRPC and TLS jargon ("connection error: desc = transport: …",
"remote error: tls: certificate required"), and when the builder is down it fails at once or,
mid-build, may wait on the connection. The wrapper

* checks the client certificate files before connecting (missing Secret → one clear line);
* waits for the builder a bounded time (``BUILDKIT_WAIT`` seconds, default 60), polling
  ``buildctl debug workers``, and stops at once when the builder refuses the certificate;
* runs the command under ``timeout`` when ``BUILDKIT_TIMEOUT`` is set;
* on failure adds one ``shipway-build:`` line naming the component at fault: the builder
  (unreachable), its TLS (certificate refused), its cache volume (full), the build itself.

Environment: ``BUILDKIT_HOST`` (buildctl's own: ``tcp://host:1234``), ``BUILDKIT_CERTS`` (the
directory of ``ca.crt``, ``tls.crt``, ``tls.key``; default ``/run/secrets/buildkit``).
Exit codes: the command's own, or 2 (no address), 3 (no certificate), 4 (builder unreachable),
5 (certificate refused), 124 (timeout); the build's own code after a diagnosed failure (cache
full, builder lost).

The script is POSIX sh (busybox's in the client image); the unit tests run it against a fake
``buildctl`` that prints the errors the real one printed on the local cluster.
"""

from __future__ import annotations

CLIENT_SCRIPT = r"""#!/bin/sh
# buildctl-shipway [buildctl command and arguments]: see hack/localkube/buildkit_client.py.
set -u
addr=${BUILDKIT_HOST:-}
certs=${BUILDKIT_CERTS:-/run/secrets/buildkit}
wait_s=${BUILDKIT_WAIT:-60}
log=$(mktemp)
trap 'rm -f "$log" "$log.rc"' EXIT
say() { echo "shipway-build: $*" >&2; }

if [ -z "$addr" ]; then
  say "no builder address: BUILDKIT_HOST is empty (Helm values buildkit.deploy or buildkit.address)"
  exit 2
fi
tls=no
case "$addr" in
  tcp://*)
    tls=yes
    for f in ca.crt tls.crt tls.key; do
      if [ ! -s "$certs/$f" ]; then
        say "the BuildKit client certificate is missing ($certs/$f): the builder at $addr" \
          "accepts only clients with a certificate from its CA; mount the client Secret at $certs"
        exit 3
      fi
    done
    ;;
esac

bk() {
  if [ "$tls" = yes ]; then
    buildctl --addr "$addr" --tlscacert "$certs/ca.crt" --tlscert "$certs/tls.crt" \
      --tlskey "$certs/tls.key" "$@"
  else
    buildctl --addr "$addr" "$@"
  fi
}

# What went wrong, naming the component, from buildctl's output in $log; returns the exit code.
# $1: "connect" (the preflight: nothing built yet) or "build".
diagnose() {
  if grep -qi 'no space left on device' "$log"; then
    say "the builder's cache volume is full (no space left on device): buildkitd at $addr" \
      "keeps its cache under buildkit.cache.maxUsedSpace, which must stay below the volume's" \
      "size; prune it (buildctl prune) or grow the volume"
    return 6
  fi
  # TLS 1.3: a refused client certificate surfaces as "certificate required"/"bad certificate"
  # or, when the server hangs up first, as a broken pipe on the first write.
  if grep -qiE 'x509:|tls: |certificate required|bad certificate|unknown certificate' "$log" ||
    { [ "$1" = connect ] && grep -qi 'broken pipe' "$log"; }; then
    say "the builder at $addr refused this client's TLS certificate, or its own certificate is" \
      "not from the client's CA: the client Secret must be issued by the builder's CA"
    return 5
  fi
  # BuildKit answered with its own error: the builder was there, whatever it could not reach
  # (a registry refusing the push, a base image's host unknown) is named in BuildKit's line.
  if [ "$1" = build ] && grep -q '^error: failed to solve' "$log"; then
    return 1
  fi
  if grep -qiE 'connection refused|no such host|server misbehaving|i/o timeout|deadline exceeded|network is unreachable|no route to host|connection reset|server preface: EOF|broken pipe|transport is closing|Unavailable' "$log"; then
    if [ "$1" = connect ]; then
      say "the builder (buildkitd at $addr) is unreachable"
    else
      say "lost the builder (buildkitd at $addr) during the build"
    fi
    return 4
  fi
  return 1
}

# A bounded wait for the builder (its pod may be starting); a refused certificate is final.
deadline=$(( $(date +%s) + wait_s ))
until bk --timeout 5 debug workers >"$log" 2>&1; do
  code=0
  diagnose connect 2>/dev/null || code=$?
  if [ "$code" -ne 4 ] || [ "$(date +%s)" -ge "$deadline" ]; then
    cat "$log" >&2
    diagnose connect || code=$?
    [ "$code" -eq 4 ] && say "gave up waiting for the builder after ${wait_s}s"
    exit "$code"
  fi
  sleep 2
done
[ "$#" -eq 0 ] && exit 0

# The command itself: its output streamed, and kept for the diagnosis.
if [ "$tls" = yes ]; then
  set -- --tlscacert "$certs/ca.crt" --tlscert "$certs/tls.crt" --tlskey "$certs/tls.key" "$@"
fi
set -- buildctl --addr "$addr" "$@"
if [ -n "${BUILDKIT_TIMEOUT:-}" ]; then set -- timeout "$BUILDKIT_TIMEOUT" "$@"; fi
{ "$@" 2>&1; echo "$?" >"$log.rc"; } | tee "$log"
code=$(cat "$log.rc")
if [ "$code" -eq 0 ]; then exit 0; fi
if [ "$code" -eq 124 ] || [ "$code" -eq 143 ]; then
  say "the build did not finish within BUILDKIT_TIMEOUT=${BUILDKIT_TIMEOUT:-}s"
  exit 124
fi
diagnose build || true
exit "$code"
"""
