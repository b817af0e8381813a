package netbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext connects to addr from inside the host's namespace, so a
// process outside the bed (a test, a benchmark) reaches what listens on
// the host's loopback, such as a node's gateway or API. The socket is
// made on a thread moved into the namespace for that moment; once made,
// it stays in it.
func (h Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + h.NS)
	if err != nil {
		return nil, fmt.Errorf("netbed: namespace %s: %w", h.NS, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("netbed: enter %s: %w", h.NS, err)
	}
	defer func() {
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("netbed: cannot return to the test's namespace: %v", err)) // the thread is unusable
		}
	}()
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
