package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIBeyondLoopback: a node whose API listens on a LAN address (in a
// network namespace of its own) answers 401 to a request without the
// repo's API secret and serves one with it, as a Bearer token or as
// basic auth; the CLI on the repo works with no flag; and without a
// secret in the repo the node refuses to start on that address. Skipped
// where namespaces cannot be made (not root, no ip command).
func TestAPIBeyondLoopback(t *testing.T) {
	bed := lanBed(t, 1)
	h := bed.Hosts[0]
	api := h.IP + ":5040"
	r := &repo{t: t, path: filepath.Join(t.TempDir(), "repo"), ns: h.NS}
	d := startDaemonCmd(t, r, r.command(context.Background(), "node", "run", "--api", api))
	if d.state.API != api {
		t.Fatalf("the API listens on %s, want %s", d.state.API, api)
	}
	secret, err := os.ReadFile(filepath.Join(r.path, "api.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(r.path, "api.secret")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.secret is %v, want owner-only", fi.Mode().Perm())
	}
	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", h.NS, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	url := "http://" + api + "/api/v1/id"
	for what, args := range map[string][]string{
		"no secret":    {url},
		"wrong bearer": {"-H", "Authorization: Bearer not-the-secret", url},
		"wrong basic":  {"-u", "ddc:not-the-secret", url},
		"metrics":      {"http://" + api + "/debug/metrics/prometheus"},
	} {
		if code := curl(args...); code != "401" {
			t.Fatalf("%s: %s, want 401", what, code)
		}
	}
	s := strings.TrimSpace(string(secret))
	if code := curl("-H", "Authorization: Bearer "+s, url); code != "200" {
		t.Fatalf("with the secret as a Bearer token: %s, want 200", code)
	}
	if code := curl("-u", "anyone:"+s, "http://"+api+"/debug/metrics/prometheus"); code != "200" {
		t.Fatalf("with the secret in basic auth: %s, want 200", code)
	}
	c := d.put(randomFile(t, 950, 1<<20)) // the CLI, through the node, with no flag
	if out := d.ok(nil, "stat", c); !strings.Contains(out, c) {
		t.Fatalf("stat through the API: %q", out)
	}
	d.stop(t)

	// No secret: the node refuses to start beyond loopback, and says why.
	os.Remove(filepath.Join(r.path, "api.secret"))
	os.Mkdir(filepath.Join(r.path, "api.secret"), 0o700) // unreadable as a secret, and not made anew
	code, _, errs := r.run(nil, "node", "run", "--api", api)
	if code == 0 || !strings.Contains(errs, "API secret") || !strings.Contains(errs, api) {
		t.Fatalf("node run beyond loopback with no secret: exit %d, %q; want a refusal naming the address and the secret", code, errs)
	}
}
