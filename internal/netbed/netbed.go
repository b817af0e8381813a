// Package netbed builds a throwaway LAN for tests and benchmarks: network
// namespaces, one per host, joined by a bridge inside a namespace of its
// own, on private addresses (10.213.0.0/24) that reach nothing else. It
// needs root and iproute2's ip; Available says why not when it cannot.
package netbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
)

// Subnet is the bed's network; host i (from 0) is 10.213.0.(i+1).
const Subnet = "10.213.0.0/24"

var seq atomic.Int64

// Bed is a LAN of hosts.
type Bed struct {
	hub   string
	Hosts []Host
}

// Host is one namespace on the bed.
type Host struct {
	NS string // namespace name, for ip netns exec
	IP string // its address on the bed
}

// Available reports why a bed cannot be built here, or nil.
func Available() error {
	if runtime.GOOS != "linux" {
		return errors.New("netbed needs Linux network namespaces")
	}
	if os.Geteuid() != 0 {
		return errors.New("netbed needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("netbed needs iproute2's ip command")
	}
	return nil
}

// New builds a bed of n hosts. Close removes it.
func New(n int) (b *Bed, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if n < 1 || n > 200 {
		return nil, fmt.Errorf("netbed: %d hosts, want 1 to 200", n)
	}
	prefix := fmt.Sprintf("ddc%d-%d", os.Getpid(), seq.Add(1))
	b = &Bed{hub: prefix + "-hub"}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := ip("netns", "add", b.hub); err != nil {
		return b, err
	}
	for _, args := range [][]string{
		{"-n", b.hub, "link", "set", "lo", "up"},
		{"-n", b.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", b.hub, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			return b, err
		}
	}
	for i := range n {
		h := Host{NS: fmt.Sprintf("%s-%d", prefix, i), IP: fmt.Sprintf("10.213.0.%d", i+1)}
		if err := ip("netns", "add", h.NS); err != nil {
			return b, err
		}
		b.Hosts = append(b.Hosts, h)
		port := fmt.Sprintf("p%d", i)
		for _, args := range [][]string{
			{"link", "add", port, "netns", b.hub, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"-n", b.hub, "link", "set", port, "master", "br0", "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			// mDNS sends to 224.0.0.251: route multicast onto the bed.
			{"-n", h.NS, "route", "add", "224.0.0.0/4", "dev", "eth0"},
		} {
			if err := ip(args...); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}

// Command runs name with args on host i.
func (b *Bed) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", b.Hosts[i].NS, name}, args...)...)
}

// Close removes every namespace of the bed (their links go with them).
func (b *Bed) Close() error {
	var errs []error
	for _, h := range b.Hosts {
		errs = append(errs, ip("netns", "del", h.NS))
	}
	b.Hosts = nil
	errs = append(errs, ip("netns", "del", b.hub))
	return errors.Join(errs...)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
