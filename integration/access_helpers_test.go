package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	noderepo "github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// secret is a private bucket's file on its owner's node, with what must
// never reach a reader without a grant: its bytes, a tag and its path.
type secret struct {
	owner   *daemon
	bucket  string
	id      bucket.ID
	root    string
	chunk   string // a data piece of the file
	content []byte
	tag     string // a tag's value
	path    string // its file-path
	dir     string // a directory of the bucket holding the same bytes as small.txt
}

// secretMarker fills a secret file: any 64 bytes of it hold one whole.
const secretMarker = "PRIVATE-BYTES-7f3a9c;"

// putSecret puts a 2.5 MiB file into a new private bucket of owner, with
// a tag and a path that say they are secret.
func putSecret(t *testing.T, owner *daemon) *secret {
	t.Helper()
	s := &secret{owner: owner, tag: "SECRET-TAG-51d2e0", path: "/secret/small.txt"}
	s.bucket = strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	var err error
	if s.id, err = bucket.ParseID(s.bucket); err != nil {
		t.Fatal(err)
	}
	s.content = bytes.Repeat([]byte(secretMarker), (5<<19)/len(secretMarker))
	f := filepath.Join(t.TempDir(), "small.txt")
	if err := os.WriteFile(f, s.content, 0o644); err != nil {
		t.Fatal(err)
	}
	s.root = owner.put(f, "-b", s.bucket, "--path", s.path, "-t", "note="+s.tag)
	s.dir = strings.TrimSpace(owner.ok(nil, "put", "-r", filepath.Dir(f), "-b", s.bucket))
	for _, c := range carBlocks(t, owner, s.root) {
		if c.Type() == pieces.CodecRaw {
			s.chunk = c.String()
			break
		}
	}
	if s.chunk == "" {
		t.Fatalf("the secret file %s has no data piece", s.root)
	}
	return s
}

// carBlocks are the CIDs of the blocks of root's DAG, from 'ddc export'
// on d (the node's operator reads what it holds).
func carBlocks(t *testing.T, d *daemon, root string) []cid.Cid {
	t.Helper()
	p := filepath.Join(t.TempDir(), "export.car")
	d.ok(nil, "export", root, "-o", p)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []cid.Cid
	if _, err := car.Import(f, func(c cid.Cid, _ []byte) error { out = append(out, c); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// leaks names what of s a response body shows (empty: nothing), among
// its bytes, tag, path, bucket and the peer IDs of holders.
func (s *secret) leaks(body []byte, holders ...*daemon) string {
	for what, b := range map[string]string{"the file's bytes": secretMarker, "its tag": s.tag, "its path": s.path, "the bucket": s.bucket} {
		if bytes.Contains(body, []byte(b)) {
			return what
		}
	}
	for _, h := range append(holders, s.owner) {
		if bytes.Contains(body, []byte(h.state.PeerID)) {
			return "the peer ID of " + h.path
		}
	}
	return ""
}

// tamper changes the last byte of a token's grants (its last signature),
// leaving a bearer token's key as it is: the token still parses.
func tamper(t *testing.T, token string) string {
	t.Helper()
	chain, key, bearer := strings.Cut(strings.TrimPrefix(token, "ddct1"), ".")
	raw, err := base64.RawURLEncoding.DecodeString(chain)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0x01
	out := "ddct1" + base64.RawURLEncoding.EncodeToString(raw)
	if bearer {
		out += "." + key
	}
	if _, err := bucket.ParseToken(out); err != nil {
		t.Fatalf("the tampered token does not parse: %v", err)
	}
	return out
}

// badGrant is a grant that must not read s, and why.
type badGrant struct{ name, token string }

// badGrants are the grants that must not read s through a gateway: none,
// tampered with, for another bucket, for put only, expired, bound to a
// key no one here holds, and bound to the key of each node in boundTo
// (the node's own requests may use those, never a gateway client).
func (s *secret) badGrants(t *testing.T, boundTo ...*daemon) []badGrant {
	t.Helper()
	grant := func(id string, args ...string) string {
		return strings.TrimSpace(s.owner.ok(nil, append([]string{"bucket", "grant", id}, args...)...))
	}
	other := strings.TrimSpace(s.owner.ok(nil, "bucket", "create", "--private"))
	stranger, err := bucket.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	out := []badGrant{
		{"no token", ""},
		{"a tampered token", tamper(t, grant(s.bucket, "--bearer"))},
		{"another bucket's token", grant(other, "--bearer")},
		{"a put-only token", grant(s.bucket, "--bearer", "--ops", "put")},
		{"an expired token", ownerToken(t, s.owner.repo, s.bucket, nil, bucket.OpGet, now.Add(-3*time.Hour), now.Add(-time.Hour))},
		{"a grant bound to another key", grant(s.bucket, "--to", stranger.Public().String())},
	}
	for _, d := range boundTo {
		out = append(out, badGrant{fmt.Sprintf("a grant bound to the key of %s", filepath.Base(filepath.Dir(d.path))), grant(s.bucket, "--to", d.state.PeerID)})
	}
	return out
}

// privateBucket makes a private bucket named name (empty: the default
// one) of n's own account and keeps its record on n; it returns the
// record and the account's key.
func privateBucket(t testing.TB, n *node.Node, name string) (bucket.Record, bucket.PrivateKey) {
	t.Helper()
	key, err := noderepo.AccountOf(n.Repo().Identity)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := bucket.NewRecord(key, "default", true, name)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := noderepo.Buckets(n.Repo().Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Keep(rec); err != nil {
		t.Fatal(err)
	}
	return rec, key
}
