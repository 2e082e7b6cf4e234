#!/usr/bin/env python3
"""Writes a large but realistic keepalived.conf: N virtual servers x M real servers with
TCP_CHECK, plus K VRRP instances on eth0. Used to time `vigil -t` against `keepalived -t`, and
reloads (reload.sh, which also passes the delay_loop and an extra virtual server)."""
import sys

def virtual_server(address, real_prefix, reals, delay_loop):
    out = [f"virtual_server {address} 80 {{", f"    delay_loop {delay_loop}", "    lb_algo wlc",
           "    lb_kind DR", "    persistence_timeout 300", "    protocol TCP"]
    for r in range(reals):
        out += [f"    real_server {real_prefix}.{r + 1} 80 {{", "        weight 1",
                "        TCP_CHECK {", "            connect_timeout 3", "            retry 2",
                "            delay_before_retry 2", "        }", "    }"]
    return out + ["}"]

def main(path, services=500, reals=8, instances=50, delay_loop=6, extra=0):
    out = ["global_defs {", "    router_id bench", "}"]
    for i in range(instances):
        out += [f"vrrp_instance VI_{i} {{", "    state BACKUP", "    interface eth0",
                f"    virtual_router_id {i + 1}", f"    priority {100 + i % 100}", "    advert_int 1",
                "    authentication {", "        auth_type PASS", "        auth_pass bench", "    }",
                "    virtual_ipaddress {", f"        10.{100 + i // 250}.{i % 250}.1/24", "    }", "}"]
    for s in range(services):
        out += virtual_server(f"10.{s // 250}.{s % 250}.10", f"172.{16 + s // 250}.{s % 250}", reals, delay_loop)
    # EXTRA more virtual servers, 10.9.N.10:80 with real servers 172.30.N.1..M (reload.sh adds one).
    for e in range(extra):
        out += virtual_server(f"10.9.{e}.10", f"172.30.{e}", reals, delay_loop)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")

if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
