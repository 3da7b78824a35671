#!/usr/bin/env bash
# Turns a fresh Ubuntu 22.04/24.04 x86_64 EC2 instance into the image every role boots from:
# Node 20 at /usr/bin/node, the AWS CLI v2 at /usr/local/bin/aws (the S3 archive of acceptor logs
# and matchmaker state), the packed artifact (pnpm pack:artifact) at /opt/paxos, a `paxos` system
# user, and no state of this instance left behind. See infra/ami/README.md.
#
#   sudo bash build-ami.sh [--no-seal] [--keep-ssh-keys] paxos-<sha>.tar.gz
#
# Safe to run again (with the same or a newer artifact): each step checks what is there first.
set -euo pipefail

# Node comes from the official nodejs.org linux-x64 tarball, checked against the release's
# SHASUMS256.txt (and against NODE_SHA256 when given). Not NodeSource: that adds a third-party
# apt repository and its signing key to every instance, needs apt-get update while building, and
# installs whatever 20.x is current that day; the tarball gives exactly the version the artifact
# was packed and tested with (read from its VERSION file), and nothing else changes on the image.
readonly NODE_FALLBACK_VERSION=20.20.2
readonly NODE_ROOT=/usr/local/lib/nodejs
readonly APP_DIR=/opt/paxos
readonly PAXOS_USER=paxos
readonly STATE_DIR=/var/lib/paxos
# The AWS CLI: the official v2 installer, this version unless AWS_CLI_VERSION says another, its
# zip checked against its detached signature with the AWS CLI team's key (fetched by its full
# fingerprint, the one AWS's install guide publishes). Not an apt package: Ubuntu 24.04 has none
# (22.04's is v1). The units' archive step (paxos-archive.service) runs `aws s3 cp`.
readonly AWS_CLI_FALLBACK_VERSION=2.15.0
readonly AWS_CLI_KEY_FINGERPRINT=FB5DB77FD5C118B80511ADA8A6310ACC4672475C

usage() {
  cat <<'EOF'
Usage: sudo bash build-ami.sh [options] ARTIFACT

Run on a fresh Ubuntu 22.04/24.04 x86_64 EC2 instance (the builder) to make it the image every
Autoscaling Paxos role boots from:
  1. installs Node 20 at /usr/bin/node from the nodejs.org linux-x64 tarball (SHA256-checked),
     and the AWS CLI v2 at /usr/local/bin/aws from AWS's installer (signature-checked);
  2. creates the paxos system user;
  3. unpacks ARTIFACT (from `pnpm pack:artifact`, copied here with scp) into /opt/paxos;
  4. checks that every role and the directory start (--help) as the paxos user;
  5. seals the instance for imaging: turns off apt's boot-time timers, empties apt caches,
     removes SSH authorized_keys, shell history and ARTIFACT, runs `cloud-init clean`;
  6. prints the aws ec2 create-image command.
Running it again replaces /opt/paxos with ARTIFACT and skips what is already in place.

Options:
  --no-seal         stop after step 4 (to look around, or to run it again later)
  --keep-ssh-keys   do not remove ~/.ssh/authorized_keys (instances from the image then
                    accept this builder's key pair as well as their own)
  -h, --help        this text

Environment:
  NODE_VERSION   Node version to install (default: the one in ARTIFACT's VERSION file if it is
                 20.x, else 20.20.2)
  NODE_MIRROR    where the Node releases are (default: https://nodejs.org/dist)
  NODE_SHA256    expected SHA256 of node-v$NODE_VERSION-linux-x64.tar.gz (also checked
                 against the release's SHASUMS256.txt)
  AWS_CLI_VERSION  AWS CLI v2 version to install (default 2.15.0)
  AWS_CLI_KEYSERVER  where the AWS CLI team's key is fetched by fingerprint
                 (default hkps://keyserver.ubuntu.com)
EOF
}

log() { printf 'build-ami: %s\n' "$*"; }
die() {
  printf 'build-ami: error: %s\n' "$*" >&2
  exit 1
}

seal=1
keep_ssh_keys=0
artifact=''
while (($# > 0)); do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --no-seal) seal=0 ;;
    --keep-ssh-keys) keep_ssh_keys=1 ;;
    -*)
      printf 'build-ami: unknown option %s\n' "$1" >&2
      usage >&2
      exit 2
      ;;
    *)
      [[ -z "$artifact" ]] || die "one ARTIFACT expected, got $artifact and $1"
      artifact=$1
      ;;
  esac
  shift
done

[[ -n "$artifact" ]] || {
  usage >&2
  exit 2
}
[[ $EUID -eq 0 ]] || die "run as root (sudo bash $0 …)"
[[ "$(uname -m)" == x86_64 ]] || die "this is $(uname -m): the artifact's zeromq addon is for x86_64"
[[ -f "$artifact" && -r "$artifact" ]] || die "artifact $artifact is not a readable file"
artifact=$(realpath "$artifact")
tar -tzf "$artifact" ./VERSION >/dev/null 2>&1 ||
  die "$artifact is not a packed artifact (a .tar.gz with ./VERSION): make it with pnpm pack:artifact"
if [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  [[ "${ID:-}" == ubuntu ]] || log "warning: written for Ubuntu, this is ${PRETTY_NAME:-unknown}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- 1. Node ---------------------------------------------------------------------------------
artifact_node=$(tar -xzOf "$artifact" ./VERSION | sed -n 's/^node=v//p')
if [[ -z "${NODE_VERSION:-}" ]]; then
  if [[ "$artifact_node" == 20.* ]]; then NODE_VERSION=$artifact_node; else NODE_VERSION=$NODE_FALLBACK_VERSION; fi
fi
[[ "$NODE_VERSION" =~ ^20\.[0-9]+\.[0-9]+$ ]] || die "NODE_VERSION=$NODE_VERSION: expected 20.x.y"
node_name="node-v${NODE_VERSION}-linux-x64"
node_home="$NODE_ROOT/$node_name"
if [[ -x "$node_home/bin/node" && "$("$node_home/bin/node" --version)" == "v$NODE_VERSION" ]]; then
  log "Node $NODE_VERSION already at $node_home"
else
  mirror=${NODE_MIRROR:-https://nodejs.org/dist}
  log "downloading $node_name.tar.gz from $mirror"
  curl -fsSL --retry 3 -o "$work/SHASUMS256.txt" "$mirror/v$NODE_VERSION/SHASUMS256.txt" ||
    die "cannot download $mirror/v$NODE_VERSION/SHASUMS256.txt"
  curl -fsSL --retry 3 -o "$work/$node_name.tar.gz" "$mirror/v$NODE_VERSION/$node_name.tar.gz" ||
    die "cannot download $mirror/v$NODE_VERSION/$node_name.tar.gz"
  expected=$(awk -v f="$node_name.tar.gz" '$2 == f { print $1 }' "$work/SHASUMS256.txt")
  [[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "SHASUMS256.txt has no line for $node_name.tar.gz"
  if [[ -n "${NODE_SHA256:-}" && "$NODE_SHA256" != "$expected" ]]; then
    die "NODE_SHA256 is $NODE_SHA256 but SHASUMS256.txt says $expected"
  fi
  actual=$(sha256sum "$work/$node_name.tar.gz" | awk '{ print $1 }')
  [[ "$actual" == "$expected" ]] || die "$node_name.tar.gz has SHA256 $actual, expected $expected"
  mkdir -p "$NODE_ROOT"
  rm -rf "$node_home.partial"
  mkdir "$node_home.partial"
  tar -xzf "$work/$node_name.tar.gz" -C "$node_home.partial" --strip-components=1 --no-same-owner
  rm -rf "$node_home"
  mv "$node_home.partial" "$node_home"
  log "Node $NODE_VERSION installed at $node_home (sha256 $actual)"
fi
# /usr/bin/node is what the systemd units run (packages/ec2-launcher user-data).
if [[ -e /usr/bin/node && ! -L /usr/bin/node ]]; then
  die "/usr/bin/node exists and is not ours (an apt nodejs?): remove it (apt-get purge nodejs) and run again"
fi
ln -sfn "$node_home/bin/node" /usr/bin/node
for tool in npm npx; do ln -sfn "$node_home/bin/$tool" "/usr/local/bin/$tool"; done
[[ "$(/usr/bin/node --version)" == "v$NODE_VERSION" ]] || die "/usr/bin/node is not v$NODE_VERSION"

# --- 1b. the AWS CLI --------------------------------------------------------------------------
AWS_CLI_VERSION=${AWS_CLI_VERSION:-$AWS_CLI_FALLBACK_VERSION}
[[ "$AWS_CLI_VERSION" =~ ^2\.[0-9]+\.[0-9]+$ ]] || die "AWS_CLI_VERSION=$AWS_CLI_VERSION: expected 2.x.y"
aws_cli_version() { /usr/local/bin/aws --version 2>/dev/null | sed -n 's|^aws-cli/\([0-9.]*\) .*|\1|p'; }
if [[ -x /usr/local/bin/aws && "$(aws_cli_version)" == "$AWS_CLI_VERSION" ]]; then
  log "AWS CLI $AWS_CLI_VERSION already at /usr/local/bin/aws"
else
  if ! command -v unzip >/dev/null || ! command -v gpg >/dev/null; then
    log "installing unzip and gnupg (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip gnupg >/dev/null ||
      die "cannot install unzip and gnupg with apt-get"
  fi
  zip_url="https://awscli.amazonaws.com/awscli-exe-linux-x86_64-${AWS_CLI_VERSION}.zip"
  log "downloading $zip_url"
  curl -fsSL --retry 3 -o "$work/awscliv2.zip" "$zip_url" || die "cannot download $zip_url"
  curl -fsSL --retry 3 -o "$work/awscliv2.sig" "$zip_url.sig" || die "cannot download $zip_url.sig"
  export GNUPGHOME="$work/gnupg"
  install -d -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --keyserver "${AWS_CLI_KEYSERVER:-hkps://keyserver.ubuntu.com}" \
    --recv-keys "$AWS_CLI_KEY_FINGERPRINT" ||
    die "cannot fetch the AWS CLI team's key $AWS_CLI_KEY_FINGERPRINT (set AWS_CLI_KEYSERVER to a reachable keyserver)"
  # Accept only a good signature by exactly that key (gpg --status-fd: VALIDSIG <fingerprint> …).
  if ! gpg --batch --status-fd 1 --verify "$work/awscliv2.sig" "$work/awscliv2.zip" 2>/dev/null |
    grep -q "^\[GNUPG:\] VALIDSIG $AWS_CLI_KEY_FINGERPRINT "; then
    die "awscli-exe-linux-x86_64-${AWS_CLI_VERSION}.zip: no valid signature by $AWS_CLI_KEY_FINGERPRINT"
  fi
  unset GNUPGHOME
  unzip -q "$work/awscliv2.zip" -d "$work/awscli"
  "$work/awscli/aws/install" --update --install-dir /usr/local/aws-cli --bin-dir /usr/local/bin >/dev/null
  [[ "$(aws_cli_version)" == "$AWS_CLI_VERSION" ]] ||
    die "/usr/local/bin/aws is not AWS CLI $AWS_CLI_VERSION after installing it"
  log "AWS CLI $AWS_CLI_VERSION installed at /usr/local/bin/aws (signature by $AWS_CLI_KEY_FINGERPRINT)"
fi

# --- 2. the paxos user -----------------------------------------------------------------------
if id -u "$PAXOS_USER" >/dev/null 2>&1; then
  log "user $PAXOS_USER exists"
else
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$PAXOS_USER"
  log "created system user $PAXOS_USER"
fi
install -d -o "$PAXOS_USER" -g "$PAXOS_USER" -m 0750 "$STATE_DIR"

# --- 3. the artifact -------------------------------------------------------------------------
# Unpacked beside /opt/paxos and swapped in, so a failed run leaves the previous tree in place.
# Owned by root and read-only to the paxos user: a role process cannot change its own code.
rm -rf "$APP_DIR.new" "$APP_DIR.old"
mkdir -p "$APP_DIR.new"
start_ns=$(date +%s%N)
tar -xzf "$artifact" -C "$APP_DIR.new" --no-same-owner
extract_ms=$((($(date +%s%N) - start_ns) / 1000000))
chown -R root:root "$APP_DIR.new"
chmod -R u+rwX,go+rX,go-w "$APP_DIR.new"
if [[ -e "$APP_DIR" ]]; then mv "$APP_DIR" "$APP_DIR.old"; fi
mv "$APP_DIR.new" "$APP_DIR"
rm -rf "$APP_DIR.old"
log "unpacked $(basename "$artifact") into $APP_DIR in ${extract_ms} ms ($(du -sh "$APP_DIR" | cut -f1))"

# --- 4. smoke check --------------------------------------------------------------------------
# Every entry point loads all of its imports (zeromq's native addon included) before it parses
# --help, so this proves the artifact's node_modules is complete for this Node and this libc.
entries=()
shopt -s nullglob
for main in "$APP_DIR"/apps/*/dist/main.js; do entries+=("${main#"$APP_DIR"/}"); done
shopt -u nullglob
((${#entries[@]} > 0)) || die "$APP_DIR has no apps/*/dist/main.js: is $artifact a packed artifact?"
entries+=(packages/anna-client/dist/server-cli.js)
for entry in "${entries[@]}"; do
  [[ -f "$APP_DIR/$entry" ]] || die "$APP_DIR/$entry is missing"
  if ! out=$(cd / && runuser -u "$PAXOS_USER" -- env -i PATH=/usr/bin:/bin HOME="$STATE_DIR" \
    /usr/bin/node "$APP_DIR/$entry" --help 2>&1); then
    printf '%s\n' "$out" | tail -n 20 >&2
    die "node $APP_DIR/$entry --help failed as user $PAXOS_USER"
  fi
  log "ok: node $APP_DIR/$entry --help"
done
# The archive unit runs `aws` as root, with systemd's default PATH (which has /usr/local/bin).
if ! out=$(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin aws --version 2>&1); then
  printf '%s\n' "$out" >&2
  die "aws --version failed: the S3 archive of acceptor logs and matchmaker state would fail"
fi
log "ok: $out"

if ((seal == 0)); then
  log "not sealed (--no-seal): run again without it before create-image"
  exit 0
fi

# --- 5. seal ---------------------------------------------------------------------------------
# apt's daily timers start shortly after boot and take CPU and the dpkg lock on an instance that
# was launched to serve now; an image is rebuilt (from a current Ubuntu image) to take updates.
for unit in apt-daily.timer apt-daily-upgrade.timer motd-news.timer; do
  if systemctl list-unit-files "$unit" >/dev/null 2>&1; then
    systemctl disable --now "$unit" >/dev/null 2>&1 || log "warning: could not disable $unit"
  fi
done
if command -v apt-get >/dev/null; then
  apt-get clean
  rm -rf /var/lib/apt/lists/*
fi
# This builder's key pair and history must not reach every instance of the image.
if ((keep_ssh_keys == 0)); then
  rm -f /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys
fi
rm -f /root/.bash_history /home/*/.bash_history
# The tarball is in /opt/paxos now; /tmp is emptied at boot anyway.
rm -f "$artifact"
# Instance data (this builder's id, user-data, network config, host keys' first-boot marker)
# goes, so each instance from the image runs cloud-init as a first boot: new SSH host keys, its
# own user-data (the role's systemd unit). --machine-id where this cloud-init has it.
if command -v cloud-init >/dev/null; then
  if cloud-init clean --help 2>/dev/null | grep -q -- '--machine-id'; then
    cloud-init clean --logs --machine-id
  else
    cloud-init clean --logs
    truncate -s 0 /etc/machine-id
  fi
else
  log "warning: no cloud-init here: instances from this image will not run their user-data"
fi
log "sealed"

# --- 6. next step ----------------------------------------------------------------------------
instance_id='<builder-instance-id>'
region='<region>'
if token=$(curl -sf -m 2 -X PUT http://169.254.169.254/latest/api/token \
  -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); then
  instance_id=$(curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" \
    http://169.254.169.254/latest/meta-data/instance-id || echo "$instance_id")
  region=$(curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" \
    http://169.254.169.254/latest/meta-data/placement/region || echo "$region")
fi
commit=$(sed -n 's/^commit=//p' "$APP_DIR/VERSION")
short=${commit:0:7}
cat <<EOF

Done: Node $NODE_VERSION, $APP_DIR at ${short}. Make the image from your machine (it stops this
instance, snapshots it and starts it again; do not log in to it before the image is available):

  aws ec2 create-image --region $region --instance-id $instance_id \\
    --name "paxos-${short}-$(date -u +%Y%m%d-%H%M%S)" --description "Autoscaling Paxos ${short}, Node ${NODE_VERSION}" \\
    --tag-specifications 'ResourceType=image,Tags=[{Key=paxos:commit,Value=${commit}}]'
  aws ec2 wait image-available --region $region --image-ids <ami-id from create-image>
  aws ec2 terminate-instances --region $region --instance-ids $instance_id
  pnpm aws up --ami <ami-id> …
EOF
