#!/usr/bin/env bash
# `make image`: the operator image as an OCI image layout, assembled with umoci from a
# statically linked release build. No registry, no container engine, no base image:
# the image holds the binary, the CA bundle and the nonroot user, like distroless/static.
#
# Then it checks what it built: the binary is static and runs (`--version`, `crds`), the
# image config says user 65532, entrypoint and cmd, the image has no shell, and (as root)
# the binary runs as 65532 chrooted into the unpacked image, where nothing else exists.
#
# Output: $IMAGE_DIR (default target/image): kongress-oci/ (layout, tag = crate version)
# and kongress-oci.tar (the same layout as a tar, for `podman load`, `docker load` or
# `skopeo copy oci-archive:...`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
IMAGE_DIR=${IMAGE_DIR:-$TARGET_DIR/image}
TRIPLE=x86_64-unknown-linux-gnu
UID_GID=65532:65532

say() { echo "[image] $*"; }
fail() { echo "[image] FAIL: $*" >&2; exit 1; }

command -v umoci >/dev/null || fail "umoci not found (Debian: apt-get install umoci)"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
[[ -n $VERSION ]] || fail "no version in Cargo.toml"

# 1. A static binary. --target keeps RUSTFLAGS off build scripts and proc macros, which
# must stay dynamic to load into the compiler.
t0=$SECONDS
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked \
  --manifest-path "$ROOT/Cargo.toml" --bin kongress --target "$TRIPLE"
BIN=$TARGET_DIR/$TRIPLE/release/kongress
say "static release build: $((SECONDS - t0)) s"

if readelf --program-headers "$BIN" | grep -q INTERP; then
  fail "$BIN asks for a dynamic loader: it is not statically linked"
fi
if readelf --dynamic "$BIN" | grep -q NEEDED; then
  fail "$BIN needs shared libraries: $(readelf --dynamic "$BIN" | grep NEEDED)"
fi
"$BIN" --version | grep -qx "kongress $VERSION" || fail "kongress --version did not print 'kongress $VERSION'"
"$BIN" crds | cmp -s - "$ROOT/crds/kongproxies.kongress.dev.yaml" \
  || fail "kongress crds differs from crds/kongproxies.kongress.dev.yaml"

# 2. The image: one layer with the root filesystem below. umoci 0.4.7 (Debian 12) writes
# `umoci insert` layers without the tar end-of-archive blocks (umoci issue #436, fixed
# after 0.4.7): GNU tar and image scanners refuse them. unpack → fill → repack writes a
# complete layer.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LAYOUT=$IMAGE_DIR/kongress-oci
rm -rf "$LAYOUT" "$IMAGE_DIR/kongress-oci.tar"
mkdir -p "$IMAGE_DIR"
t0=$SECONDS
rootless=()
((EUID == 0)) || rootless=(--rootless)
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:$VERSION"
umoci unpack "${rootless[@]}" --image "$LAYOUT:$VERSION" "$WORK/build" >/dev/null
ROOTFS=$WORK/build/rootfs
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc/ssl/certs" "$ROOTFS/tmp"
# Symbols are a third of the binary and only help a debugger; panics still name their place.
strip -o "$ROOTFS/usr/local/bin/kongress" "$BIN"
chmod 0755 "$ROOTFS/usr/local/bin/kongress"
# TLS to an OTLP collector or registry outside the cluster needs public roots.
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$ROOTFS/tmp"
# Names for uid/gid 65532, as distroless has them (tools that print users look them up).
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOTFS/etc/group"
# Fixed modification times: the layer's digest depends on the files' contents only.
CREATED=$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
find "$ROOTFS" -exec touch --no-dereference --date="$CREATED" {} +
umoci repack --image "$LAYOUT:$VERSION" \
  --history.created "$CREATED" --history.created_by "hack/image.sh: kongress $VERSION, CA bundle, nonroot user" \
  "$WORK/build"
umoci config --image "$LAYOUT:$VERSION" \
  --created "$CREATED" --history.created "$CREATED" \
  --os linux --architecture amd64 \
  --config.user "$UID_GID" \
  --config.entrypoint /usr/local/bin/kongress \
  --config.cmd run \
  --config.workingdir / \
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --config.label "org.opencontainers.image.title=kongress" \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --config.label "org.opencontainers.image.revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
umoci gc --layout "$LAYOUT"
tar -C "$LAYOUT" -cf "$IMAGE_DIR/kongress-oci.tar" .
say "assembled $LAYOUT:$VERSION in $((SECONDS - t0)) s"

# 3. Check the image as a runtime would read it: index → manifest → config and layers.
python3 - "$LAYOUT" "$VERSION" "$UID_GID" <<'PY'
import json, sys, tarfile, pathlib
layout, tag, user = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def blob(digest):
    algorithm, hex_ = digest.split(":")
    return layout / "blobs" / algorithm / hex_
import hashlib
for path in (layout / "blobs" / "sha256").iterdir():
    assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, f"blob {path.name} does not match its digest"
index = json.loads((layout / "index.json").read_text())
tagged = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
assert len(tagged) == 1, f"tag {tag} not in index.json: {index}"
manifest = json.loads(blob(tagged[0]["digest"]).read_text())
config = json.loads(blob(manifest["config"]["digest"]).read_text())
c = config["config"]
problems = []
if c.get("User") != user: problems.append(f"User is {c.get('User')!r}, want {user!r}")
if c.get("Entrypoint") != ["/usr/local/bin/kongress"]: problems.append(f"Entrypoint is {c.get('Entrypoint')}")
if c.get("Cmd") != ["run"]: problems.append(f"Cmd is {c.get('Cmd')}")
if config.get("os") != "linux" or config.get("architecture") != "amd64": problems.append("platform is not linux/amd64")
files = {}
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as tar:
        for member in tar.getmembers():
            files[member.name.lstrip("./").rstrip("/")] = member
binary = files.get("usr/local/bin/kongress")
if binary is None: problems.append("usr/local/bin/kongress is not in the image")
elif not binary.mode & 0o001: problems.append("usr/local/bin/kongress is not executable by other users (uid 65532)")
elif binary.uid != 0: problems.append("usr/local/bin/kongress is owned by the run-time user (it could rewrite itself)")
shells = [name for name in files if name.rsplit("/", 1)[-1] in ("sh", "bash", "dash", "busybox")]
if shells: problems.append(f"the image has a shell: {shells}")
for needed in ("etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group"):
    if needed not in files: problems.append(f"{needed} is missing")
if problems:
    sys.exit("[image] FAIL: " + "; ".join(problems))
size = sum(layer["size"] for layer in manifest["layers"])
print(f"[image] config ok: User {c['User']}, Entrypoint {c['Entrypoint']}, Cmd {c['Cmd']}, "
      f"{len(files)} entries, no shell; layers {size / 1e6:.1f} MB compressed")
PY

# 4. As root: unpack the image and run its binary chrooted into it as 65532, where the
# image's files are all there is (no libc, no NSS modules, no shell). The bundle gets
# only what a container runtime or the kubelet adds to every container: /dev/null,
# /dev/random, /dev/urandom (the static binary reads randomness there) and
# /etc/resolv.conf. It must resolve a Service name the way a pod does: through DNS, here
# a one-answer DNS server on a loopback address that says 127.0.0.1.
if ((EUID == 0)); then
  BUNDLE=$WORK/check
  umoci unpack --image "$LAYOUT:$VERSION" "$BUNDLE" >/dev/null
  in_image() { chroot --userspec="$UID_GID" "$BUNDLE/rootfs" /usr/local/bin/kongress "$@"; }
  in_image --version | grep -qx "kongress $VERSION" || fail "the image's binary did not run as $UID_GID inside the image"
  in_image crds | cmp -s - "$ROOT/crds/kongproxies.kongress.dev.yaml" || fail "kongress crds inside the image differs"

  mkdir -p "$BUNDLE/rootfs/dev"
  mknod -m 0666 "$BUNDLE/rootfs/dev/null" c 1 3
  mknod -m 0666 "$BUNDLE/rootfs/dev/random" c 1 8
  mknod -m 0666 "$BUNDLE/rootfs/dev/urandom" c 1 9
  DNS_ADDRESS=127.0.83.1
  echo "nameserver $DNS_ADDRESS" >"$BUNDLE/rootfs/etc/resolv.conf"
  # An API server name that only DNS can resolve, on a port nothing listens on.
  cat >"$BUNDLE/rootfs/tmp/kubeconfig" <<'CONFIG'
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://kubernetes.default.svc.cluster.local:1"}}]
users: [{name: u, user: {token: none}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
CONFIG
  python3 - "$DNS_ADDRESS" "$BUNDLE/rootfs" "$UID_GID" <<'PY'
import shutil, socket, struct, subprocess, sys, threading
address, rootfs, user = sys.argv[1:4]
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind((address, 53))
asked = []
def answer():
    while True:
        query, client = server.recvfrom(512)
        end = 12
        while query[end] != 0:
            end += query[end] + 1
        question = query[12:end + 5]
        qtype = struct.unpack(">H", query[end + 1:end + 3])[0]
        name = []
        at = 12
        while query[at] != 0:
            name.append(query[at + 1:at + 1 + query[at]].decode())
            at += query[at] + 1
        asked.append(".".join(name))
        records = b""
        if qtype == 1:  # A: 127.0.0.1, so the connection goes nowhere but loopback
            records = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton("127.0.0.1")
        header = query[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1 if records else 0, 0, 0)
        server.sendto(header + question + records, client)
threading.Thread(target=answer, daemon=True).start()
try:
    run = subprocess.run(
        [shutil.which("chroot"), f"--userspec={user}", rootfs, "/usr/local/bin/kongress", "run", "--namespace", "kongress-system",
         # Any free loopback port: 8080 may be taken by a kongress that runs beside this check.
         "--metrics-address", "127.0.0.1:0"],
        env={"KUBECONFIG": "/tmp/kubeconfig", "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=4)
    log = run.stdout + run.stderr
except subprocess.TimeoutExpired as expired:
    log = (expired.stdout or b"").decode() + (expired.stderr or b"").decode()
if "kubernetes.default.svc.cluster.local" not in asked:
    sys.exit(f"[image] FAIL: the image's binary never asked DNS for the API server; its log:\n{log}")
if "client error (Connect)" not in log:
    sys.exit(f"[image] FAIL: after DNS the binary did not try to connect to 127.0.0.1:1; its log:\n{log}")
print("[image] inside the image, as 65532: resolves names through DNS and dials the answer")
PY
  say "the image's binary runs as $UID_GID inside the image"
else
  say "not root: skipped running the binary chrooted into the image (steps 1-3 checked)"
fi
say "done: $LAYOUT:$VERSION, $IMAGE_DIR/kongress-oci.tar"
