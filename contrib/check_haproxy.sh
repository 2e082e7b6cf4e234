#!/bin/bash
# Track script for vrrp_script chk_haproxy: succeeds while haproxy accepts TCP connections on
# 127.0.0.1:${HAPROXY_CHECK_PORT:-80}.
#
# Install as /etc/keepalived/check_haproxy.sh, owned by root and not writable by group or others,
# in a directory chain (/, /etc, /etc/keepalived) that is likewise root-owned and not group/world
# writable: with enable_script_security, keepalived and Vigil refuse the script otherwise.
# It runs as script_user (nobody), so it needs no privilege: it only opens a TCP connection.
#
# It probes the loopback on purpose: in the namespace lab (contrib/lab) every director has its
# own loopback, so each director's own (fake) haproxy decides its health.
# `timeout` bounds a connect that hangs (e.g. a dropped SYN) well inside vrrp_script's timeout.
# shellcheck disable=SC2016 # expanded by the inner bash
exec timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/${HAPROXY_CHECK_PORT:-80}"' 2>/dev/null
