#ifndef VIGIL_CNETLINK_SHIM_H
#define VIGIL_CNETLINK_SHIM_H

/* libnl-3 (route + generic netlink) for VIP management and IPVS. */
#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/vrf.h>
#include <netlink/route/link/inet6.h>
#include <linux/if_link.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <linux/ip_vs.h>

/* Packet-level headers that Swift's Glibc module does not pull in.
   net/if_arp.h, not linux/if_arp.h: the latter clashes with netpacket/packet.h
   over struct sockaddr_ll. */
#include <netpacket/packet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/icmp6.h>
#include <linux/filter.h>
#include <sys/timerfd.h>


/* Glibc hides these behind _GNU_SOURCE, which Swift's Glibc module is not built with. */
extern int setns(int fd, int nstype);
/* ppoll: poll with a nanosecond timeout. poll(2)'s milliseconds made every VRRP timer fire up
   to 1 ms late (the loop must round up or spin). */
#include <poll.h>
#include <signal.h>
extern int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask);
struct vigil_in6_pktinfo {
    struct in6_addr ipi6_addr;
    unsigned int ipi6_ifindex;
};

#endif
