package integration

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
	ddcrepo "github.com/ddc-project/ddc/node/repo"
)

// denied runs a get on r that must fail with the documented exit code 6
// (denied, or 2 for a token that does not parse) and an error saying why,
// and leave no file behind.
func (r *repo) denied(t *testing.T, code int, why string, args ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	got, _, errs := r.run(nil, append([]string{"get", "-o", out}, args...)...)
	if got != code || !strings.Contains(errs, why) {
		t.Fatalf("ddc get %v: exit %d, %q; want exit %d saying %q", args, got, errs, code, why)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("ddc get %v failed but wrote %s", args, out)
	}
}

// ownerToken is a grant from the owner key of repo r (its node identity)
// for b, with times the CLI would refuse to make.
func ownerToken(t *testing.T, r *repo, b string, to *bucket.PublicKey, ops bucket.Ops, issued, expires time.Time) string {
	t.Helper()
	key := selfKey(t, r)
	id, err := bucket.ParseID(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := bucket.NewGrant(key, id, to, ops, expires, false, issued)
	if err != nil {
		t.Fatal(err)
	}
	return tok.String()
}

// flip flips the bits of byte i of a token's encoded grants.
func flip(t *testing.T, token string, i int) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "ddct1"))
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(raw)
	}
	raw[i] ^= 0xff
	return "ddct1" + base64.RawURLEncoding.EncodeToString(raw)
}

// selfKey is the node identity of repo r as an account key.
func selfKey(t *testing.T, r *repo) bucket.PrivateKey {
	t.Helper()
	ks, err := ddcrepo.Keys(r.path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Get(ddcrepo.SelfKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func account(t *testing.T, d *daemon) *bucket.PublicKey {
	t.Helper()
	pub := selfKey(t, d.repo).Public()
	return &pub
}

// TestPrivateBucket: a file put into a private bucket is refused to a
// second node without a grant, or with one that is expired, for another
// bucket, for another key, without get, or tampered with; it is served
// with a grant to that node's key, and with a bearer grant through any
// node. Every node runs with the README's defaults.
func TestPrivateBucket(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	n3 := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private", "--name", "family"))
	other := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	src := randomFile(t, 12, 3<<20)
	c := owner.put(src, "-b", b)
	if ls := owner.ok(nil, "ls", "-b", b); !strings.Contains(ls, c) {
		t.Fatalf("ls -b on the owner's node: %q, want %s", ls, c)
	}
	waitFor(t, "node 2 to find the bucket", 30*time.Second, func() bool { _, err := n2.bucket(b); return err == nil })

	// No grant: with and without naming the bucket.
	n2.denied(t, 6, "not found or not permitted (no grant: a file of a private bucket needs -b BUCKET", c)
	n2.denied(t, 6, "not found or not permitted (no grant for bucket "+b, "-b", b, c)

	now := time.Now()
	get := func(ops string, to ...string) string {
		args := []string{"bucket", "grant", b, "--ops", ops}
		if len(to) == 0 {
			args = append(args, "--bearer")
		} else {
			args = append(args, "--to", to[0])
		}
		return strings.TrimSpace(owner.ok(nil, args...))
	}
	good := get("get", n2.state.PeerID)
	cases := []struct {
		name, token, why string
		code             int
	}{
		{"expired", ownerToken(t, owner.repo, b, account(t, n2), bucket.OpGet, now.Add(-3*time.Hour), now.Add(-time.Hour)), "grant expired", 6},
		{"issued in the future", ownerToken(t, owner.repo, b, account(t, n2), bucket.OpGet, now.Add(time.Hour), now.Add(2*time.Hour)), "issued in the future", 6},
		{"another bucket", strings.TrimSpace(owner.ok(nil, "bucket", "grant", other, "--to", n2.state.PeerID)), "grant is for another bucket", 6},
		{"another key", get("get", n3.state.PeerID), "grant is for another key", 6},
		{"no get", get("put,delete", n2.state.PeerID), "operation not granted", 6},
		{"signature flipped", flip(t, good, -1), "signature is not", 6},
		{"issuer flipped", flip(t, good, 40), "invalid grant", 6},
		{"encoding flipped", flip(t, good, 0), "malformed", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { n2.denied(t, tc.code, tc.why, "-b", b, "--token", tc.token, c) })
	}
	if ls := n2.ok(nil, "ls"); strings.Contains(ls, c) {
		t.Fatalf("node 2 lists %s after refusals: %q", c, ls)
	}

	// A grant to node 2's key.
	out := filepath.Join(t.TempDir(), "got")
	n2.ok(strings.NewReader(good), "get", "--pin", "-b", b, "--token", "-", "-o", out, c)
	if !sameFile(t, src, out) {
		t.Fatal("node 2 got other bytes")
	}
	if ls := n2.ok(nil, "ls", "-b", b); !strings.Contains(ls, c) {
		t.Fatalf("node 2's ls -b after its get: %q, want %s", ls, c)
	}
	// A bearer grant through node 3, which asks both holders.
	out3 := filepath.Join(t.TempDir(), "got3")
	n3.ok(nil, "get", "-b", b, "--token", get("get"), "-o", out3, c)
	if !sameFile(t, src, out3) {
		t.Fatal("node 3 got other bytes")
	}
}

// TestDelegation: the owner grants node A a delegable grant; A issues node
// B a narrower one, with which B reads; B cannot issue grants from it; A
// cannot widen the operations or extend the expiry; a chain with one
// broken signature is refused.
func TestDelegation(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	a := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	bn := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	src := randomFile(t, 13, 1<<20)
	c := owner.put(src, "-b", b)
	for _, d := range []*daemon{a, bn} {
		waitFor(t, "the bucket on "+d.path, 30*time.Second, func() bool { _, err := d.bucket(b); return err == nil })
	}

	ta := strings.TrimSpace(owner.ok(nil, "bucket", "grant", b, "--to", a.state.PeerID, "--ops", "get,put", "--expires", "2d", "--can-delegate"))
	tb := strings.TrimSpace(a.ok(nil, "bucket", "grant", b, "--from", ta, "--to", bn.state.PeerID, "--ops", "get"))

	for _, tc := range []struct {
		on   *daemon
		args []string
		why  string
	}{
		{bn, []string{"--from", tb, "--to", owner.state.PeerID}, "may not delegate"},
		{a, []string{"--from", ta, "--to", bn.state.PeerID, "--ops", "get,delete"}, "widens"},
		{a, []string{"--from", ta, "--to", bn.state.PeerID, "--expires", "3d"}, "expires after"},
	} {
		code, _, errs := tc.on.run(nil, append([]string{"bucket", "grant", b}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.why) {
			t.Errorf("bucket grant %v: exit %d, %q; want a refusal saying %q", tc.args, code, errs, tc.why)
		}
	}
	// The first link's signature broken: the chain fails.
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(ta, "ddct1"))
	broken := flip(t, tb, len(raw)-1) // the last byte of A's grant: its signature
	bn.denied(t, 6, "signature is not", "-b", b, "--token", broken, c)

	out := filepath.Join(t.TempDir(), "got")
	bn.ok(nil, "get", "-b", b, "--token", tb, "-o", out, c)
	if !sameFile(t, src, out) {
		t.Fatal("B got other bytes")
	}
}
