//go:build linux

package unixgram

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Suffix ends the name of every socket file in a directory.
const Suffix = ".sock"

// DefaultPort is the port of the addresses Listen allocates.
const DefaultPort = 6881

// maxPath is the longest socket path Linux accepts (sun_path holds 108 bytes, and Go
// wants room for the terminating NUL).
const maxPath = 107

// lockName is the lock file that serialises the reclaiming of stale sockets. It is no
// address, so List and the readers ignore it.
const lockName = ".lock"

// Name returns the file name of the socket at address a: a.String() and Suffix, for
// example "127.0.0.1:6881.sock" or "[fd00::1]:6881.sock". An IPv4-mapped IPv6 address
// has the name of the IPv4 address it maps.
func Name(a netip.AddrPort) string {
	a = unmap(a)
	return string(a.AppendTo(nil)) + Suffix
}

// Path returns the path of the socket at address a in directory dir.
func Path(dir string, a netip.AddrPort) string {
	return filepath.Join(dir, Name(a))
}

// ParseName returns the address whose socket file is called name (a base name, not a
// path). It accepts exactly the names Name returns for usable addresses, so that each
// address has one file and each file one address.
func ParseName(name string) (netip.AddrPort, error) {
	s, ok := strings.CutSuffix(name, Suffix)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("unixgram: %q is not a socket name (no %s suffix)", name, Suffix)
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("unixgram: %q is not a socket name: %w", name, err)
	}
	if err := usable(a); err != nil {
		return netip.AddrPort{}, fmt.Errorf("unixgram: %q is not a socket name: %w", name, err)
	}
	if Name(a) != name {
		return netip.AddrPort{}, fmt.Errorf("unixgram: %q is not a socket name (the canonical name of its address is %q)", name, Name(a))
	}
	return a, nil
}

// List returns the addresses of the sockets in dir, in order: the nodes that one may
// bootstrap from. Stale files of processes that died are listed too (sending to them
// fails with transport.ErrUnreachable).
func List(dir string) ([]netip.AddrPort, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unixgram: %w", err)
	}
	var addrs []netip.AddrPort
	for _, e := range entries {
		if e.Type()&fs.ModeSocket == 0 {
			continue
		}
		if a, err := ParseName(e.Name()); err == nil {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.AddrPort.Compare)
	return addrs, nil
}

// usable returns why a cannot be a socket's address, or nil: it must have a specified IP
// without a zone (compact node info carries none) and a non-zero port.
func usable(a netip.AddrPort) error {
	ip := a.Addr()
	switch {
	case !ip.IsValid():
		return errors.New("no IP address")
	case ip.IsUnspecified():
		return fmt.Errorf("unspecified IP address %v", ip)
	case ip.Zone() != "":
		return fmt.Errorf("IP address %v has a zone", ip)
	case ip.Is4In6():
		return fmt.Errorf("IPv4-mapped IP address %v", ip)
	case a.Port() == 0:
		return errors.New("port 0")
	}
	return nil
}

func unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}

// reclaim removes the file at path if it is a stale socket, one nobody is bound to, and
// reports whether the path is now free to bind. It holds the directory's lock file while
// it checks and removes, so that two processes cannot both find the same stale file and
// the second remove the socket the first has just bound there. (Only reclaim removes
// files that are not its caller's own, and Close removes its socket's file before it
// closes the socket, so a live socket's file is never removed.)
func reclaim(dir, path string) (bool, error) {
	lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return false, err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)

	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // gone meanwhile
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return false, fmt.Errorf("%s exists and is not a socket", path)
	}
	// Connecting a datagram socket sends nothing; it only checks that someone is bound.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	switch {
	case err == nil:
		c.Close()
		return false, nil // alive
	case errors.Is(err, syscall.ENOENT):
		return true, nil
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return true, nil
	}
	return false, nil // a socket of another kind, or one we may not use: not ours to take
}
