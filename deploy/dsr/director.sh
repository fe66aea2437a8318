#!/bin/sh
# LVS-DR director: the Linux kernel's IPVS balances connections to the VIP and
# forwards each packet to a real server by rewriting only the destination MAC
# address ("-g", gatewaying = direct routing). Real servers answer the client
# directly from the VIP (realserver.sh), so responses never cross this host.
#
# Requirements of DR: the director and the real servers share one L2 segment;
# the real servers listen on the same port as the VIP (no port rewriting); the
# director sees only client→server packets, so it cannot terminate TLS, retry,
# or look at HTTP. For health checks, run keepalived with keepalived.conf
# instead of this script: it adds and removes real servers as checks pass/fail.
#
#   VIP=10.0.0.1 IFACE=eth0 RIPS="10.0.0.10 10.0.0.11 10.0.0.12" ./director.sh
set -eu
VIP=${VIP:?set VIP}
IFACE=${IFACE:-eth0}
RIPS=${RIPS:?set RIPS, the real servers}
PORT=${PORT:-80}

modprobe ip_vs ip_vs_wlc 2>/dev/null || true
ip addr replace "$VIP/32" dev "$IFACE"           # the director answers ARP for the VIP
ipvsadm -A -t "$VIP:$PORT" -s wlc                # weighted least-connection (HAProxy's "balance leastconn")
for rip in $RIPS; do
	ipvsadm -a -t "$VIP:$PORT" -r "$rip:$PORT" -g -w 1
done
# Idle timeouts in seconds for TCP, TCP after FIN, and UDP (the article's
# "timeout client/server 30s" are HAProxy settings; IPVS has only these).
ipvsadm --set 900 120 300
ipvsadm -L -n
