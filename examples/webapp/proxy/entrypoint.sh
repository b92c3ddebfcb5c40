#!/bin/sh
# nginx resolves app through the container's DNS server, which only /etc/resolv.conf names
# (it is written when the container starts): hand it to nginx, then exec nginx.
set -eu
ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
[ -n "$ns" ] || { echo "proxy: no nameserver in /etc/resolv.conf" >&2; exit 1; }
echo "resolver $ns valid=1s ipv6=off;" >/etc/nginx/resolver.conf
exec "$@"
