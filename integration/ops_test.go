package integration

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVersion: ddc version --json names a version and the commit the
// binary was built from.
func TestVersion(t *testing.T) {
	r := newRepo(t)
	var v struct {
		Version, Revision, Go string
	}
	if err := json.Unmarshal([]byte(r.ok(nil, "version", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version == "" || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(v.Revision) || !strings.HasPrefix(v.Go, "go1.") {
		t.Fatalf("version --json: %+v; want a version, a 40-hex revision and Go's version", v)
	}
	if out := r.ok(nil, "version"); !strings.Contains(out, v.Revision) {
		t.Fatalf("version: %q does not name the revision", out)
	}
}

// TestNodeStop: 'ddc node stop' stops the node cleanly and returns once
// it has: the process exited 0 and the repo is free for offline use.
func TestNodeStop(t *testing.T) {
	d := startDaemon(t, newDaemonRepo(t))
	c := d.put(randomFile(t, 900, 1<<20))
	if out := d.ok(nil, "node", "stop"); strings.TrimSpace(out) != "stopped" {
		t.Fatalf("node stop said %q", out)
	}
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("node stop returned but the node runs on")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the node exited %d after node stop: %s", code, d.logs)
	}
	d.ok(nil, "repo", "gc") // offline: the repo is free
	d.ok(nil, "cat", c)
	if code, _, errs := d.run(nil, "node", "stop"); code == 0 || !strings.Contains(errs, "node run") {
		t.Fatalf("node stop with no node: exit %d, %q; want an error saying how to start one", code, errs)
	}
}
