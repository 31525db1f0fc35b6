//go:build linux

// Package unixgram is a transport.Transport over Unix datagram sockets: the example of a
// complete custom transport for wdht. A dht.Node runs on it unchanged, and nodes in
// different processes of one host reach each other through a shared directory.
//
// # Addresses
//
// The transport seam speaks netip.AddrPort, which is what compact node info carries
// between nodes; a Unix socket is a path. The mapping between the two is a pure function
// both ways, with one directory (the namespace) shared by every transport that should
// reach the others:
//
//	address 127.0.0.2:6881          <->  file <dir>/127.0.0.2:6881.sock
//	address [fd00::7]:6881          <->  file <dir>/[fd00::7]:6881.sock
//
// Path computes the file of an address and ParseName the address of a file name. Each
// address has exactly one file name (the canonical form AddrPort.String gives) and each
// such name exactly one address. So:
//
//   - Send needs no table and no coordination: it writes to the path of the address, and
//     a node learned from another node's find_node answer is reachable at once, from any
//     process that uses the same directory.
//   - Receive learns the sender's address from the path the kernel reports for the
//     sending socket (every transport binds its socket before sending).
//   - The file system allocates addresses: bind fails when the file exists, atomically,
//     so processes never need to agree on who takes which address. Listen with the zero
//     AddrPort takes the first free address 127.0.0.1:6881, 127.0.0.2:6881, ... (one IP
//     per node, as DHT nodes expect: they rate-limit per IP, and BEP 42 exempts 127/8
//     from tying node IDs to IPs); an address with port 0 takes the first free port from
//     6881 on that IP.
//   - A stale file left by a process that died is detected (connecting to it is refused)
//     and reclaimed by the next Listen that wants its address, under a lock file in the
//     directory so that two processes never reclaim and rebind the same address at once.
//
// The addresses are loopback addresses because that is what a Unix socket is: reachable
// on this host only. Any valid, specified address may be used; the directory is the only
// thing that gives them meaning, as a memory.Network does for its addresses. Paths are
// limited to 107 bytes by the kernel, so the directory should stay under 55 bytes (the
// longest IPv6 name is 52 bytes); Listen refuses a path that does not fit.
//
// # Semantics
//
// Messages are datagrams: delivered whole or not at all, up to transport.MaxMessageSize
// bytes (a Unix datagram on Linux can be as large as the sender's socket buffer, which
// Listen raises). Send never blocks on a receiver: it writes with MSG_DONTWAIT, and when
// the receiver's socket queue is full (Linux holds only net.unix.max_dgram_qlen
// datagrams, 10 by default) it retries for Config.SendWait and then drops the message, as
// UDP drops a datagram that finds a full receive buffer. Send to an address with no
// socket fails at once with transport.ErrUnreachable: the kernel says ENOENT (no file) or
// ECONNREFUSED (a file nobody is bound to).
//
// Each transport runs one reader goroutine that drains its socket into a queue of
// Config.QueueLen packets, so that the tiny kernel queue rarely fills; Receive takes from
// that queue and so honours its context with a plain select. Close removes the socket
// file, closes the socket and waits for the reader.
//
// The package is Linux-only: it relies on Linux's errors and sizes for Unix datagram
// sockets (macOS, for one, caps them at 2 KiB unless net.local.dgram.maxdgram is raised).
package unixgram
