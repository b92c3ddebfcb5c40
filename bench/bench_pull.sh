#!/usr/bin/env bash
# Registry pulls (run as root from the repository, after a build): a 10-layer, 100 MB image
# (10 MB of random bytes per layer, built with umoci on the BusyBox rootfs) on a docker-registry
# on loopback; `stack image pull` (download, verify, unpack, fsync) against `skopeo copy` of it
# into an OCI directory (download and verify only), median of 5 each in the same run; a second
# pull (nothing to transfer); `image pull` then `up -d`; and `up -d` with the image missing (the
# plan's PullImage step), split into the pull and the rest. Everything is under a temp dir and
# a private --root, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=$PWD/build/stack
work=$(mktemp -d /tmp/stack-bench-pull-XXXXXX)
S=("$stack" --root "$work/root" --run-root "$work/run")
reg_pid=
trap '"${S[@]}" -p benchpull down -t 0 >/dev/null 2>&1 || true; "${S[@]}" daemon stop >/dev/null 2>&1 || true
      [[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
host=127.0.0.1:$port

cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: "$host"}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://$host/v2/" >/dev/null && break; sleep 0.05; done

scripts/make-busybox-rootfs.sh "$work/rootfs" >/dev/null
umoci init --layout "$work/oci" && umoci new --image "$work/oci:1"
umoci insert --image "$work/oci:1" "$work/rootfs" / >/dev/null
for i in $(seq 9); do
  mkdir -p "$work/l$i"; head -c 10485760 /dev/urandom >"$work/l$i/data"
  umoci insert --image "$work/oci:1" "$work/l$i" "/data$i" >/dev/null
done
head -c 9437184 /dev/urandom >"$work/l9/more"   # ~100 MB in all
umoci insert --image "$work/oci:1" "$work/l9/more" /more >/dev/null
umoci config --image "$work/oci:1" --config.cmd sleep --config.cmd 3600
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:1" "docker://$host/bench:1"
size=$(du -sm "$work/registry" | cut -f1)
echo "image: $host/bench:1, 11 layers, $size MB in the registry"

"${S[@]}" image ls >/dev/null 2>&1   # the daemon up before timing
stack_ms=(); skopeo_ms=()
for run in 1 2 3 4 5; do
  "${S[@]}" image rm "$host/bench:1" >/dev/null 2>&1 || true
  "${S[@]}" image prune -a >/dev/null 2>&1
  [[ -z $(ls "$work/root/images/layers") ]] || { echo "prune left layers" >&2; exit 1; }
  sync
  t0=$(ms); "${S[@]}" image pull -q "$host/bench:1" >/dev/null; t1=$(ms)
  stack_ms+=($((t1 - t0)))
  rm -rf "$work/copy"; sync
  t0=$(ms); skopeo copy -q --src-tls-verify=false "docker://$host/bench:1" "oci:$work/copy:1"; t1=$(ms)
  skopeo_ms+=($((t1 - t0)))
done
echo "stack image pull (download, verify, unpack): median $(printf '%s\n' "${stack_ms[@]}" | median) ms  [${stack_ms[*]}]"
echo "skopeo copy to an OCI directory:              median $(printf '%s\n' "${skopeo_ms[@]}" | median) ms  [${skopeo_ms[*]}]"
again=()
for run in 1 2 3 4 5; do
  t0=$(ms); "${S[@]}" image pull -q "$host/bench:1" >/dev/null; t1=$(ms); again+=($((t1 - t0)))
done
echo "second pull (nothing transferred):            median $(printf '%s\n' "${again[@]}" | median) ms"

# `stack up` of a service whose image must be pulled: the pull, then the start.
mkdir -p "$work/project"
printf 'name: benchpull\nservices:\n  app:\n    image: %s/bench:1\n' "$host" >"$work/project/stack.yaml"
pull=(); start=()
for run in 1 2 3 4 5; do
  "${S[@]}" image rm "$host/bench:1" >/dev/null 2>&1 || true
  "${S[@]}" image prune -a >/dev/null 2>&1; sync
  [[ -z $(ls "$work/root/images/layers") ]] || { echo "prune left layers" >&2; exit 1; }
  t0=$(ms); "${S[@]}" image pull -q "$host/bench:1" >/dev/null; t1=$(ms)
  (cd "$work/project" && "${S[@]}" up -d >/dev/null 2>&1); t2=$(ms)
  pull+=($((t1 - t0))); start+=($((t2 - t1)))
  "${S[@]}" -p benchpull down -t 0 >/dev/null 2>&1
done
echo "image pull, then up -d:         pull median $(printf '%s\n' "${pull[@]}" | median) ms, up median $(printf '%s\n' "${start[@]}" | median) ms"

# `stack up -d` with the image missing: the plan's PullImage step, then create and start. The
# pull's share is what its "Image REF Pulled N.Ns" line says.
total=(); inplan=()
for run in 1 2 3 4 5; do
  "${S[@]}" image rm "$host/bench:1" >/dev/null 2>&1 || true
  "${S[@]}" image prune -a >/dev/null 2>&1; sync
  t0=$(ms); (cd "$work/project" && "${S[@]}" up -d 2>"$work/up.err" >/dev/null); t1=$(ms)
  total+=($((t1 - t0)))
  inplan+=($(awk '/Image .* Pulled/ {sub("s","",$NF); print int($NF*1000)}' "$work/up.err"))
  "${S[@]}" -p benchpull down -t 0 >/dev/null 2>&1
done
echo "up -d pulling in its plan:      total median $(printf '%s\n' "${total[@]}" | median) ms, of which the pull step $(printf '%s\n' "${inplan[@]}" | median) ms"
