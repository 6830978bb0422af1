"""The shell scripts the preparation pods run (busybox ``sh``; git in the checkout image).

They live with the operator, not in an image, so the image is just git, ssh and a shell, and
a script and the code reading its report change together. Each script writes its report to
``$SHIPWAY_REPORT`` (the container's termination message, ``/dev/termination-log``): one
``key=value`` line per fact, free text base64-encoded, at most 4096 bytes in all, which the
operator reads from the pod's status (:func:`shipway.engine.termination.parse_report`).
Credentials are read from the mounted Secret's files and never echoed.
"""

from __future__ import annotations

REPORT_HELPERS = r"""
report=${SHIPWAY_REPORT:-/dev/termination-log}
b64() { head -c "${2:-1200}" | base64 | tr -d '\n'; }
fail() {  # fail REASON FILE-WITH-MESSAGE
  { echo "reason=$1"; printf 'message='; tail -c 1500 "$2" | b64 1500; echo; } >"$report"
  exit 1
}
: >"$report"
# A script that stops on anything else still says so.
trap 'rc=$?; [ "$rc" = 0 ] || [ -s "$report" ] || echo "reason=ScriptFailed" >"$report"' EXIT
"""

CHECKOUT = (
    r"""set -u
"""
    + REPORT_HELPERS
    + r"""
ws=${SHIPWAY_WORKSPACE:-/workspace}
secret=${SHIPWAY_GIT_SECRET:-/etc/shipway/git-secret}
export HOME=${SHIPWAY_HOME:-/tmp/shipway-home} GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
out=$HOME/out
git config --global --add safe.directory '*'
git config --global init.defaultBranch main
git config --global advice.detachedHead false
git config --global transfer.unpackLimit 1  # one pack file: the size limit sees the whole fetch
if [ -f "$secret/ssh-privatekey" ]; then
  cp "$secret/ssh-privatekey" "$HOME/.ssh/key" && chmod 600 "$HOME/.ssh/key"
  if [ -f "$secret/known_hosts" ]; then
    hosts="-o UserKnownHostsFile=$secret/known_hosts -o StrictHostKeyChecking=yes"
  else
    hosts="-o UserKnownHostsFile=$HOME/.ssh/known_hosts -o StrictHostKeyChecking=accept-new"
  fi
  export GIT_SSH_COMMAND="ssh -i $HOME/.ssh/key -o IdentitiesOnly=yes -o BatchMode=yes $hosts"
fi
if [ -f "$secret/username" ] || [ -f "$secret/password" ]; then
  # Only for the repository's own scheme://host: a submodule elsewhere gets no credentials.
  origin=$(printf '%s' "$GIT_URL" | sed -n 's#^\(https\{0,1\}://[^/]*\).*#\1#p')
  helper=$HOME/credentials
  cat >"$helper" <<EOF
#!/bin/sh
[ "\$1" = get ] || exit 0
[ -f "$secret/username" ] && printf 'username=%s\n' "\$(cat "$secret/username")"
[ -f "$secret/password" ] && printf 'password=%s\n' "\$(cat "$secret/password")"
exit 0
EOF
  chmod 700 "$helper"
  [ -n "$origin" ] && git config --global "credential.$origin.helper" "$helper"
fi
# A file at the size limit: the kernel stopped a write there (SIGXFSZ, from ulimit -f).
too_large() {
  [ -n "${SHIPWAY_MAX_SIZE:-}" ] || return 1
  limit=$(( (SHIPWAY_MAX_SIZE + 511) / 512 * 512 - 1 ))
  [ -n "$(find "$ws" -type f -size +"$limit"c 2>/dev/null | head -n 1)" ]
}
# Every git command's output goes to the log and is kept for the report; its status is kept too.
run() {
  { "$@" 2>&1; echo $? >"$out.rc"; } | tee "$out"
  rc=$(cat "$out.rc")
  if [ "$rc" != 0 ] && too_large; then
    echo "the repository is larger than the checkout's size limit ($SHIPWAY_MAX_SIZE bytes)" >"$out"
    cat "$out" >&2
    fail SourceTooLarge "$out"
  fi
  return "$rc"
}
if [ -n "${SHIPWAY_MAX_SIZE:-}" ]; then ulimit -f $(( (SHIPWAY_MAX_SIZE + 511) / 512 )); fi
cd "$ws" || { echo "no workspace at $ws" >"$out"; fail CheckoutFailed "$out"; }
echo "checking out ${GIT_REVISION:-the default branch} of $GIT_URL"
run git init -q . || fail CheckoutFailed "$out"
git remote remove origin >/dev/null 2>&1
git remote add origin "$GIT_URL"
rev=${GIT_REVISION:-}
if [ -z "$rev" ]; then
  run git ls-remote --symref origin HEAD || fail CheckoutFailed "$out"
  rev=$(sed -n 's#^ref: refs/heads/\([^[:space:]]*\)[[:space:]]*HEAD$#\1#p' "$out")
  [ -n "$rev" ] || { echo "the remote names no default branch (HEAD)" >"$out"; fail RevisionNotFound "$out"; }
fi
depth=
[ "${GIT_DEPTH:-1}" -gt 0 ] && depth="--depth=${GIT_DEPTH:-1}"
if ! run git fetch --no-tags $depth origin "$rev"; then
  reason=CheckoutFailed
  grep -q "couldn't find remote ref\|not our ref\|unadvertised object" "$out" && reason=RevisionNotFound
  if printf '%s' "$rev" | grep -qE '^([0-9a-f]{40}|[0-9a-f]{64})$' && [ "$reason" = RevisionNotFound ]; then
    # A server that does not serve commits by id: fetch its branches, then look for it.
    run git fetch --no-tags origin '+refs/heads/*:refs/remotes/origin/*' || fail CheckoutFailed "$out"
    git cat-file -e "$rev^{commit}" 2>"$out" || fail RevisionNotFound "$out"
    printf '%s\t\t%s\n' "$rev" "$GIT_URL" >.git/FETCH_HEAD
  else
    fail "$reason" "$out"
  fi
fi
kind=$(head -n 1 .git/FETCH_HEAD | cut -f 3 | cut -d ' ' -f 1)
branch= tag=
case "$kind" in
  branch) branch=$rev ;;
  tag) tag=$rev ;;
esac
if [ -n "$branch" ]; then
  run git checkout -q --force -B "$branch" FETCH_HEAD || fail CheckoutFailed "$out"
else
  run git checkout -q --force --detach FETCH_HEAD || fail CheckoutFailed "$out"
fi
if [ "${GIT_SUBMODULES:-0}" = 1 ]; then
  run git submodule update --init --recursive $depth || fail SubmoduleFailed "$out"
fi
commit=$(git rev-parse HEAD)
{
  echo "commit=$commit"
  printf 'branch='; printf '%s' "$branch" | b64; echo
  printf 'tag='; printf '%s' "$tag" | b64; echo
  printf 'message='; git log -1 --format=%B | b64 1500; echo
  printf 'committerName='; git log -1 --format=%cn | b64 200; echo
  printf 'committerEmail='; git log -1 --format=%ce | b64 200; echo
} >"$report"
echo "checked out $commit${branch:+ (branch $branch)}${tag:+ (tag $tag)}"
"""
)

UPLOAD_MARKER = ".shipway-upload-complete"
"""The last member of an upload's tar stream: its absence means the stream was cut short."""

RECEIVE = (
    r"""set -u
"""
    + REPORT_HELPERS
    + r"""
ws=${SHIPWAY_WORKSPACE:-/workspace}
err=/tmp/shipway-receive.err
marker="$ws/"""
    + UPLOAD_MARKER
    + r""""
cd "$ws" || { echo "no workspace at $ws" >"$err"; fail UploadFailed "$err"; }
rm -f "$marker"
echo "waiting for the upload (shipway run --dir attaches here)"
if ! tar -x -f - -C "$ws" 2>"$err"; then
  cat "$err" >&2
  { echo "the upload stream was cut short or is not a tar archive: "; cat "$err"; } >"$err.msg"
  fail UploadInterrupted "$err.msg"
fi
if [ ! -f "$marker" ]; then
  echo "the upload ended before its last member: it was interrupted" | tee "$err"
  fail UploadInterrupted "$err"
fi
read -r files bytes <"$marker" || true
rm -f "$marker"
{ echo "files=${files:-0}"; echo "bytes=${bytes:-0}"; } >"$report"
echo "received ${files:-0} files, ${bytes:-0} bytes"
"""
)
