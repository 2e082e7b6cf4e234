#!/bin/sh
# Track script for vrrp_script chk_haproxy: succeed while haproxy is running.
# Install as /etc/keepalived/check_haproxy.sh, owned by root and not writable by others
# (enable_script_security refuses it otherwise). Runs as script_user, so it only reads.
# In the lab a marker file stands in for haproxy: the lab creates /run/vigil-lab/<node>/haproxy-down
# to simulate a failure.
if [ -n "$VIGIL_LAB_STATE" ]; then
    [ ! -e "$VIGIL_LAB_STATE/haproxy-down" ]
    exit $?
fi
exec pidof haproxy >/dev/null
