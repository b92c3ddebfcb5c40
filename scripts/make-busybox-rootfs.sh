#!/usr/bin/env bash
# Builds a BusyBox root filesystem in DIR from Debian's static busybox: the binary, one symlink
# per applet, and the few files in /etc a container expects. Used for the example stack's base
# image and by the tests. Usage: make-busybox-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: make-busybox-rootfs.sh DIR}

find_busybox() {
  # busybox-static installs /bin/busybox; where the dynamic busybox package holds that path,
  # the static binary is unpacked from the downloaded package instead.
  if [[ -x /bin/busybox ]] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
    echo /bin/busybox; return
  fi
  local cache=/var/cache/stack-build/busybox-static
  if [[ ! -x $cache/bin/busybox ]]; then
    mkdir -p "$cache"
    (cd "$cache" && apt-get download busybox-static >/dev/null && dpkg-deb -x busybox-static_*.deb .)
  fi
  echo "$cache/bin/busybox"
}

bb=$(find_busybox)
rm -rf "$dir"
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var/www,proc,sys,dev}
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
while read -r applet; do
  [[ $applet == bin/busybox ]] && continue
  ln -sf /bin/busybox "$dir/$applet"
done < <("$bb" --list-full)
cat > "$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$dir/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
www-data:x:33:
staff:x:50:app
app:x:1000:
nogroup:x:65534:
GROUP
echo "hosts: files dns" > "$dir/etc/nsswitch.conf"
mkdir -p "$dir/home/app" && chown 1000:1000 "$dir/home/app"
