package integration

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nodeStatus is what 'ddc node status --json' prints of a running node.
type nodeStatus struct {
	Online bool `json:"online"`
	Peers  int  `json:"peers"`
	DHT    []struct {
		Name  string `json:"name"`
		Mode  string `json:"mode"`
		Peers int    `json:"peers"`
	} `json:"dht"`
	Announced       uint64 `json:"announced"`
	AnnouncePending int    `json:"announce_pending"`
	// NamesRepublished counts name records put in the DHT again.
	NamesRepublished uint64 `json:"names_republished"`
}

func (d *daemon) status() nodeStatus {
	var st nodeStatus
	out := d.ok(nil, "node", "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		d.t.Fatalf("node status --json: %v: %q", err, out)
	}
	return st
}

// TestDefaultsFindThroughDHT: three daemons with the README's defaults (no
// --dht-mode). Node 3, connected to node 1 alone, fetches a file only node
// 2 holds, found through the DHT, with the first byte soon after the
// command starts; providers lists node 2, then node 3; nothing is left
// waiting to be announced.
func TestDefaultsFindThroughDHT(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	n3 := startDaemon(t, newDaemonRepo(t))

	src := randomFile(t, 41, 12<<20+7)
	id := n2.put(src)
	waitFor(t, "node 2 to announce the file", 30*time.Second, func() bool {
		st := n2.status()
		return st.Announced > 0 && st.AnnouncePending == 0
	})
	for _, d := range []*daemon{n1, n2} {
		st := d.status()
		if len(st.DHT) != 2 || st.DHT[0].Name != "lan" || st.DHT[0].Mode != "server" || st.DHT[0].Peers == 0 {
			t.Fatalf("%s: DHT status %+v, want a LAN DHT server with peers", d.path, st.DHT)
		}
	}
	if got := n1.providers(id); !contains(got, n2.state.PeerID) {
		t.Fatalf("providers on node 1: %v, want node 2 %s", got, n2.state.PeerID)
	}

	// Node 3 knows node 1 alone (no bootstrap peers, no mDNS): whatever it
	// learns of node 2 comes through the DHT, from its routing-table
	// refresh or from the provider lookup.
	n3.ok(nil, "connect", n1.tcpAddr())
	t.Logf("node 3's peers when the get starts: %s", strings.TrimSpace(n3.ok(nil, "peers")))
	cmd := exec.Command(ddcBin, "--repo", n3.path, "cat", id)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1)
	if _, err := io.ReadFull(stdout, first); err != nil {
		t.Fatalf("cat on node 3: no first byte: %v (node 3 log: %s)", err, n3.logs)
	}
	firstByte := time.Since(start)
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cat on node 3: %v", err)
	}
	want, _ := os.ReadFile(src)
	if got := append(first, rest...); string(got) != string(want) {
		t.Fatalf("node 3 read %d bytes, want the %d put on node 2", len(got), len(want))
	}
	t.Logf("first byte on node 3 after %s", firstByte.Round(time.Millisecond))
	// A functional bound, not a benchmark: it catches a lookup that waits
	// out a bootstrap or find timeout (30 s) instead of starting at once.
	if firstByte > 2*time.Second {
		t.Errorf("first byte after %s, want within 2 s", firstByte)
	}

	// Fetched pieces are kept and announced: node 1 then lists node 3 too.
	// cat does not pin, get does.
	out := filepath.Join(t.TempDir(), "got")
	_, _, summary := n3.run(nil, "get", id, "-o", out)
	if !sameFile(t, src, out) {
		t.Fatal("get on node 3 wrote other bytes")
	}
	if !strings.Contains(summary, "got 12.0 MiB") {
		t.Errorf("get left no summary line on stderr: %q", summary)
	}
	waitFor(t, "providers on node 1 to list nodes 2 and 3", 30*time.Second, func() bool {
		return contains(n1.providers(id), n2.state.PeerID, n3.state.PeerID)
	})
	waitFor(t, "node 3's announcements to drain", 30*time.Second, func() bool {
		st := n3.status()
		return st.Announced > 0 && st.AnnouncePending == 0
	})
}

// TestFreshNodeFirstGet: a get sent the moment a new node's API answers,
// while it is still joining through a bootstrap peer that holds the file,
// starts at once instead of waiting out the bootstrap.
func TestFreshNodeFirstGet(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	src := randomFile(t, 42, 1<<20)
	id := n1.put(src)
	for i := range 3 {
		n := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
		start := time.Now()
		out := filepath.Join(t.TempDir(), "got")
		n.ok(nil, "get", id, "-o", out)
		took := time.Since(start)
		if !sameFile(t, src, out) {
			t.Fatal("fresh node got other bytes")
		}
		t.Logf("fresh node %d: get done %s after its API answered", i, took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("fresh node %d: get took %s: it waited on bootstrap; its log:\n%s", i, took, n.logs)
		}
		n.stop(t)
	}
}

// TestReadsBesideDaemon: node id run over and over while a node starts
// never makes the start fail; repo stat and verify work while it runs;
// after it stops, cat works on a repo no one can write.
func TestReadsBesideDaemon(t *testing.T) {
	r := newDaemonRepo(t)
	src := randomFile(t, 43, 3<<20+5)
	var ids atomic.Int64
	for round := range 3 {
		stop := make(chan struct{})
		loopDone := make(chan struct{})
		go func() {
			defer close(loopDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if out, err := exec.Command(ddcBin, "--repo", r.path, "node", "id").CombinedOutput(); err == nil {
					ids.Add(1)
				} else if !strings.Contains(string(out), "not initialized") && !strings.Contains(string(out), "no repo") {
					t.Errorf("node id while the node starts: %v: %s", err, out)
				}
			}
		}()
		d := startDaemon(t, r) // fails the test if the node exits
		close(stop)
		<-loopDone
		if round == 0 {
			d.put(src)
		}
		var st struct {
			Pieces uint64 `json:"pieces"`
		}
		if err := json.Unmarshal([]byte(d.ok(nil, "repo", "stat", "--json")), &st); err != nil || st.Pieces == 0 {
			t.Fatalf("repo stat while the node runs: %+v, %v", st, err)
		}
		if out := d.ok(nil, "repo", "verify"); !strings.Contains(out, " 0 bad") {
			t.Fatalf("repo verify while the node runs: %q", out)
		}
		d.stop(t)
	}
	if ids.Load() == 0 {
		t.Fatal("node id never succeeded while the node started")
	}
	t.Logf("node id ran %d times while nodes started", ids.Load())

	// A repo this process cannot write: as root (which writes anyway),
	// hand it to nobody and read it as nobody.
	var files []struct{ CID string }
	if err := json.Unmarshal([]byte(r.ok(nil, "ls", "--json")), &files); err != nil || len(files) != 1 {
		t.Fatalf("ls: %v %v", files, err)
	}
	asNobody := os.Getuid() == 0
	bin := ddcBin
	if asNobody {
		dir, err := os.MkdirTemp("", "ddc-ro-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		bin = filepath.Join(dir, "ddc")
		if b, err := os.ReadFile(ddcBin); err != nil || os.WriteFile(bin, b, 0o755) != nil {
			t.Fatal("copy ddc for the nobody user")
		}
	}
	for p := r.path; p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && p != r.path {
			os.Chmod(p, fi.Mode()|0o111) // traversable, as a user's home would be
		}
	}
	filepath.Walk(r.path, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			if asNobody {
				os.Lchown(p, 65534, 65534)
			}
			os.Chmod(p, fi.Mode()&^0o222)
		}
		return err
	})
	t.Cleanup(func() {
		filepath.Walk(r.path, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				os.Chmod(p, fi.Mode()|0o200)
			}
			return err
		})
	})
	cat := exec.Command(bin, "--repo", r.path, "cat", files[0].CID)
	if asNobody {
		cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	got, err := cat.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("cat on a read-only repo: %v: %s", err, msg)
	}
	if want, _ := os.ReadFile(src); string(got) != string(want) {
		t.Fatalf("cat on a read-only repo: %d bytes, want %d", len(got), len(want))
	}
	if asNobody {
		// Prove the repo really was read-only to that user.
		touch := exec.Command(bin, "--repo", r.path, "put", "-")
		touch.Stdin = strings.NewReader("x")
		touch.SysProcAttr = cat.SysProcAttr
		if err := touch.Run(); err == nil {
			t.Fatal("put as nobody succeeded: the repo was writable")
		}
	}
}
