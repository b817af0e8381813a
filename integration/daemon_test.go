package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// loopbackFlags keep a daemon on loopback, on free ports, away from mDNS,
// and a DHT server, as nodes on one machine must be to find each other.
var loopbackFlags = []string{
	"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
	"--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--no-mdns",
}

// daemon is a `ddc node run` process.
type daemon struct {
	*repo
	cmd    *exec.Cmd
	exited chan struct{}
	state  nodeState
	logs   *syncBuffer
}

type nodeState struct {
	PID     int      `json:"pid"`
	PeerID  string   `json:"peer_id"`
	API     string   `json:"api"`
	Gateway string   `json:"gateway"`
	Addrs   []string `json:"addrs"`
}

// startDaemon runs a node on loopback on r (created by the node when
// r.path does not exist) and waits until it has written its state.
func startDaemon(t *testing.T, r *repo, args ...string) *daemon {
	t.Helper()
	return startDaemonCmd(t, r, exec.Command(ddcBin, append(append([]string{"--repo", r.path, "node", "run"}, loopbackFlags...), args...)...))
}

// startDaemonCmd runs the node command cmd on r and waits until it has
// written its state.
func startDaemonCmd(t *testing.T, r *repo, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{repo: r, cmd: cmd, exited: make(chan struct{}), logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(t) })
	waitFor(t, "node.json of "+r.path, 30*time.Second, func() bool {
		select {
		case <-d.exited:
			t.Fatalf("node on %s exited: %s", r.path, d.logs)
		default:
		}
		b, err := os.ReadFile(filepath.Join(r.path, "node.json"))
		return err == nil && json.Unmarshal(b, &d.state) == nil && d.state.PID == cmd.Process.Pid
	})
	return d
}

// tcpAddr is the daemon's TCP address with its peer ID.
func (d *daemon) tcpAddr() string {
	for _, a := range d.state.Addrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	return d.state.Addrs[0]
}

// stop sends SIGINT and waits for a clean exit; it kills a node that
// does not stop within the bound.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("node on %s exited %d after SIGINT: %s", d.path, code, d.logs)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("node on %s did not stop within 30 s of SIGINT", d.path)
	}
}

// kill ends the node at once, as a crash would.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.exited
}

// providers lists the peer IDs `ddc providers` prints for c.
func (d *daemon) providers(c string) []string {
	out := d.ok(nil, "providers", c, "--timeout", "5s")
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	return ids
}

func contains(ids []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, id := range ids {
			found = found || id == w
		}
		if !found {
			return false
		}
	}
	return true
}

func newDaemonRepo(t *testing.T) *repo {
	return &repo{t: t, path: filepath.Join(t.TempDir(), "repo")}
}

// TestThreeDaemons: a file put on node 1 is fetched by CID on node 3, which
// then holds and announces it; a restarted node keeps its identity and
// still serves and announces what it held.
func TestThreeDaemons(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	n3 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())

	src := randomFile(t, 31, 24<<20+12345)
	id := n1.put(src, "-t", "name=three")
	out := filepath.Join(t.TempDir(), "got")
	n3.ok(nil, "get", "--pin", id, "-o", out)
	if !sameFile(t, src, out) {
		t.Fatal("node 3 got different bytes")
	}
	if ls := n3.ok(nil, "ls"); !strings.Contains(ls, id) || !strings.Contains(ls, "name=three") {
		t.Fatalf("node 3 does not list the fetched file as pinned: %q", ls)
	}
	var got []string
	waitFor(t, "providers to list nodes 1 and 3", 30*time.Second, func() bool {
		got = n2.providers(id)
		return contains(got, n1.state.PeerID, n3.state.PeerID)
	})

	// Restart node 1 with node 3 gone: node 2 can only get the file from
	// node 1, which must still serve it and announce it.
	n3.stop(t)
	peerID := n1.state.PeerID
	n1.stop(t)
	if _, err := os.Stat(filepath.Join(n1.path, "node.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node.json left after a clean stop: %v", err)
	}
	n1 = startDaemon(t, n1.repo)
	if n1.state.PeerID != peerID {
		t.Fatalf("peer ID %s after restart, %s before", n1.state.PeerID, peerID)
	}
	n2.ok(nil, "connect", n1.tcpAddr())
	n2.ok(nil, "get", id, "-o", out+"2")
	if !sameFile(t, src, out+"2") {
		t.Fatal("node 2 got different bytes from the restarted node")
	}
	waitFor(t, "the restarted node to announce again", 30*time.Second, func() bool {
		return contains(n2.providers(id), n1.state.PeerID)
	})
}

// TestDaemonNoHolder: a CID nobody holds fails with exit 3 naming it, in
// bounded time.
func TestDaemonNoHolder(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	other := newRepo(t)
	id := other.put(randomFile(t, 32, 5<<20)) // in a repo no node serves
	start := time.Now()
	code, _, errs := n2.run(nil, "get", id, "-o", filepath.Join(t.TempDir(), "x"))
	if code != 3 || !strings.Contains(errs, id) {
		t.Fatalf("get of an unheld CID: exit %d, %q", code, errs)
	}
	t.Logf("not found after %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errs))
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
