"""The only code in the daemon that touches Linux: netlink, packet sockets, mroute, nftables."""
