#!/bin/sh
# LVS-DR (direct server return) real server: run as root on every backend.
#
# The director forwards each packet unchanged at L3 (destination still the VIP)
# to this host's MAC address, so this host must accept packets for the VIP
# without ever answering ARP for it (or the router would send VIP traffic here
# directly, bypassing the director). Order matters: silence ARP first, then add
# the VIP; the other order leaves a window in which this host answers ARP for it.
#
#   VIP=10.0.0.1 IFACE=eth0 ./realserver.sh          # apply now and at boot
#   VIP=10.0.0.1 IFACE=eth0 ./realserver.sh remove
set -eu
VIP=${VIP:?set VIP, e.g. VIP=10.0.0.1}
IFACE=${IFACE:-eth0}
CONF=${CONF:-/etc/sysctl.d/90-lvs-dr.conf}

if [ "${1:-}" = remove ]; then
	ip addr del "$VIP/32" dev lo 2>/dev/null || true
	rm -f "$CONF"
	sysctl -w net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.all.arp_announce=0 \
		"net.ipv4.conf.$IFACE.arp_ignore=0" "net.ipv4.conf.$IFACE.arp_announce=0" >/dev/null
	exit 0
fi

# 1. ARP: reply only for addresses configured on the interface the request came
#    in on (arp_ignore=1: the VIP lives on lo, so eth0 never answers for it), and
#    never use the VIP as the source of our own ARP requests (arp_announce=2).
#    The kernel uses the larger of conf/all and conf/<iface>, so "all" covers every
#    interface, including ones added later. Written to sysctl.d so a reboot keeps it.
cat >"$CONF" <<CONF
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
net.ipv4.conf.$IFACE.arp_ignore = 1
net.ipv4.conf.$IFACE.arp_announce = 2
CONF
sysctl -q -p "$CONF"

# 2. The VIP on loopback, /32 so no route for the VIP's subnet points at lo.
ip addr replace "$VIP/32" dev lo label lo:vip

sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce \
	"net.ipv4.conf.$IFACE.arp_ignore" "net.ipv4.conf.$IFACE.arp_announce"
ip -4 addr show dev lo label lo:vip
