package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBucketPutsAndGrantsOffline: puts into a bucket need its owner's key
// or a put grant; bad tokens, operations, lifetimes and bucket IDs are
// clear errors, and a refused put stores nothing.
func TestBucketPutsAndGrantsOffline(t *testing.T) {
	owner := newCLI(t)
	b := strings.TrimSpace(owner.ok("", "bucket", "create", "--private"))
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte(strings.Repeat("bucket data ", 1000)), 0o644)
	root := strings.TrimSpace(owner.ok("", "put", "-b", b, src))
	if ls := owner.ok("", "ls", "-b", b); !strings.Contains(ls, root) {
		t.Fatalf("ls -b: %q, want %s", ls, root)
	}

	// A second repo that keeps the bucket's record but not its owner's key.
	guest := newCLI(t)
	os.MkdirAll(filepath.Join(guest.repo, "buckets"), 0o700)
	rec, _ := os.ReadFile(filepath.Join(owner.repo, "buckets", b))
	os.WriteFile(filepath.Join(guest.repo, "buckets", b), rec, 0o600)
	guestID := strings.Fields(guest.ok("", "node", "id"))[2]

	getOnly := strings.TrimSpace(owner.ok("", "bucket", "grant", b, "--to", guestID, "--ops", "get"))
	put := strings.TrimSpace(owner.ok("", "bucket", "grant", b, "--to", guestID, "--ops", "put", "--expires", "1h"))
	for _, tc := range []struct {
		args []string
		code int
		why  string
	}{
		{[]string{"put", "-b", b, src}, 6, "no grant to put"},
		{[]string{"put", "-b", b, "--token", getOnly, src}, 6, "operation not granted"},
		{[]string{"put", "-b", b, "--token", "ddct1AAAA", src}, 2, "malformed token"},
		{[]string{"put", "-b", "ddcbnope", src}, 2, "bucket ID"},
		{[]string{"put", "--token", put, src}, 2, "--token needs -b"},
	} {
		code, _, errs := guest.run("", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.why) {
			t.Errorf("ddc %v: exit %d, %q; want exit %d saying %q", tc.args, code, errs, tc.code, tc.why)
		}
	}
	if ls := guest.ok("", "ls"); strings.Contains(ls, root) {
		t.Fatalf("a refused put stored the file: %q", ls)
	}
	if got := strings.TrimSpace(guest.ok(put, "put", "-b", b, "--token", "-", src)); got != root {
		t.Fatalf("put with a put grant: %s, want %s", got, root)
	}

	for _, tc := range []struct {
		args []string
		why  string
	}{
		{[]string{"bucket", "grant", b, "--bearer", "--ops", "get,admin"}, "unknown operation"},
		{[]string{"bucket", "grant", b, "--bearer", "--expires", "500d"}, "out of range"},
		{[]string{"bucket", "grant", b, "--bearer", "--expires", "soon"}, "not a duration"},
		{[]string{"bucket", "grant", b}, "one of --to KEY and --bearer"},
		{[]string{"bucket", "grant", b, "--to", "did:key:z6Mknope"}, "--to"},
		{[]string{"bucket", "grant", "ddcbnope", "--bearer"}, "bucket ID"},
	} {
		code, _, errs := owner.run("", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.why) {
			t.Errorf("ddc %v: exit %d, %q; want a usage error saying %q", tc.args, code, errs, tc.why)
		}
	}
}
