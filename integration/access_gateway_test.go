package integration

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// route is one request a gateway client makes of the secret file.
type route struct {
	name, method, path string
	header             []string
	check              func(t *testing.T, s *secret, a answer) // of a read with the grant
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := pieces.ParseCID(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secretRoutes are every gateway route and format of the secret file.
func secretRoutes(s *secret) []route {
	whole := func(t *testing.T, s *secret, a answer) {
		if !bytes.Equal(a.body, s.content) {
			t.Fatalf("%d bytes that differ from the file's %d", len(a.body), len(s.content))
		}
	}
	block := func(c string) func(t *testing.T, s *secret, a answer) {
		return func(t *testing.T, s *secret, a answer) {
			if err := pieces.Verify(mustCID(t, c), a.body); err != nil {
				t.Fatalf("the block: %v", err)
			}
		}
	}
	carOf := func(blocks int) func(t *testing.T, s *secret, a answer) {
		return func(t *testing.T, s *secret, a answer) {
			n := 0
			roots, err := car.Import(bytes.NewReader(a.body), func(cid.Cid, []byte) error { n++; return nil })
			if err != nil || len(roots) != 1 || roots[0].String() != s.root || n != blocks {
				t.Fatalf("the CAR: roots %v, %d blocks, %v; want %s and %d blocks", roots, n, err, s.root, blocks)
			}
		}
	}
	file := "/ddc/buc/" + s.bucket + "/file/" + s.root
	return []route{
		{name: "/ddc/file", method: "GET", path: "/ddc/file/" + s.root, check: whole},
		{name: "/ddc/buc/file", method: "GET", path: file, check: whole},
		{name: "HEAD /ddc/buc/file", method: "HEAD", path: file},
		{name: "a range", method: "GET", path: file, header: []string{"Range", "bytes=1048576-1114111"},
			check: func(t *testing.T, s *secret, a answer) {
				if a.status != http.StatusPartialContent || !bytes.Equal(a.body, s.content[1048576:1114112]) {
					t.Fatalf("%d, %d bytes: want 206 and the range's bytes", a.status, len(a.body))
				}
			}},
		{name: "the path", method: "GET", path: "/ddc/buc/" + s.bucket + "/path" + s.path, check: whole},
		{name: "the descriptor, raw", method: "GET", path: "/ipfs/" + s.root + "?format=raw", check: block(s.root)},
		{name: "HEAD raw", method: "HEAD", path: "/ipfs/" + s.root + "?format=raw"},
		{name: "a chunk, raw", method: "GET", path: "/ipfs/" + s.chunk + "?format=raw", check: block(s.chunk)},
		{name: "the CAR", method: "GET", path: "/ipfs/" + s.root + "?format=car", check: carOf(4)},
		{name: "entity-bytes", method: "GET", path: "/ipfs/" + s.root + "?format=car&entity-bytes=5000:5099", check: carOf(2)},
		{name: "a path into a directory", method: "GET", path: "/ddc/buc/" + s.bucket + "/file/" + s.dir + "/small.txt", check: whole},
		{name: "a path, no bucket in the route", method: "GET", path: "/ddc/file/" + s.dir + "/small.txt", check: whole},
		{name: "a directory's listing", method: "GET", path: "/ddc/file/" + s.dir + "/", check: func(t *testing.T, s *secret, a answer) {
			if !bytes.Contains(a.body, []byte("small.txt")) {
				t.Fatalf("the listing does not name small.txt: %.200q", a.body)
			}
		}},
		{name: "an /ipfs/ path, raw", method: "GET", path: "/ipfs/" + s.dir + "/small.txt?format=raw"},
		{name: "an /ipfs/ path, CAR", method: "GET", path: "/ipfs/" + s.dir + "/small.txt?format=car", check: func(t *testing.T, s *secret, a answer) {
			n := 0
			roots, err := car.Import(bytes.NewReader(a.body), func(cid.Cid, []byte) error { n++; return nil })
			if err != nil || len(roots) != 1 || roots[0].String() != s.dir || n != 5 {
				t.Fatalf("the CAR: roots %v, %d blocks, %v; want %s and the directory, the root and 3 chunks", roots, n, err, s.dir)
			}
		}},
		{name: "a directory's CAR", method: "GET", path: "/ipfs/" + s.dir + "?format=car"},
	}
}

// ask makes the request of r on gateway g, with token as ?token= or, on
// every other route, as Authorization: Bearer.
func (r route) ask(t *testing.T, g *daemon, i int, token string) answer {
	t.Helper()
	url := g.gateway() + r.path
	header := r.header
	switch {
	case token == "":
	case i%2 == 0:
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "token=" + token
	default:
		header = append(append([]string(nil), header...), "Authorization", "Bearer "+token)
	}
	return request(t, r.method, url, header...)
}

// TestGatewayAccess: every gateway route and format of a private file,
// on three gateways: its owner's, one whose node read it for a grant
// holder (and so holds it), and one whose node never held it. Only a
// valid bearer grant reads, and then never into a public cache; every
// other request (no token, a tampered one, another bucket's, put-only,
// expired, bound to another key or to the gateway's own node) gets the
// one refusal, word for word the same on every gateway, which shows
// nothing of the file, its tags, its path, its bucket or its holders.
// Daemons with the README's defaults.
func TestGatewayAccess(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	reader := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	never := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	s := putSecret(t, owner)
	valid := strings.TrimSpace(owner.ok(nil, "bucket", "grant", s.bucket, "--bearer", "--ops", "get"))
	gateways := []*daemon{owner, reader, never}
	bad := s.badGrants(t, gateways...)
	routes := secretRoutes(s)

	// The reader's node reads the file for a grant holder first: from
	// then on it holds every piece.
	a := request(t, "GET", reader.gateway()+"/ddc/buc/"+s.bucket+"/file/"+s.root+"?token="+valid)
	if a.status != 200 || !bytes.Equal(a.body, s.content) {
		t.Fatalf("the first read with a grant: %d, %d bytes", a.status, len(a.body))
	}
	if reader.fetchedBytes(t) < uint64(len(s.content)) {
		t.Fatal("the reader's node did not fetch the file")
	}

	const refusal = "not found or not permitted\n" // the one refusal
	for gi, g := range gateways {
		for _, b := range bad {
			for i, r := range routes {
				a := r.ask(t, g, i, b.token)
				what := r.name + ", " + b.name + ", on gateway " + []string{"owner", "reader", "never"}[gi]
				if a.status/100 == 2 || a.status == http.StatusNotModified {
					t.Fatalf("%s: %d, %d bytes: a read without a valid grant", what, a.status, len(a.body))
				}
				if a.status != http.StatusForbidden {
					t.Fatalf("%s: %d %q, want 403", what, a.status, a.body)
				}
				if leak := s.leaks(a.body, reader, never); leak != "" {
					t.Fatalf("%s: the refusal shows %s: %q", what, leak, a.body)
				}
				if strings.Contains(a.h.Get("Cache-Control"), "public") {
					t.Fatalf("%s: a refusal cacheable in public: %q", what, a.h.Get("Cache-Control"))
				}
				if want := refusal; string(a.body) != want && (r.method != "HEAD" || len(a.body) != 0) {
					t.Fatalf("%s: refusal %q, want %q whatever the gateway, route or grant", what, a.body, refusal)
				}
			}
		}
		for i, r := range routes {
			a := r.ask(t, g, i, valid)
			what := r.name + ", a valid grant, on " + g.path
			if a.status/100 != 2 {
				t.Fatalf("%s: %d %q", what, a.status, a.body)
			}
			if cc := a.h.Get("Cache-Control"); cc != "private, no-store" || !strings.Contains(strings.Join(a.h.Values("Vary"), ","), "Authorization") {
				t.Fatalf("%s: Cache-Control %q, Vary %q; want private, no-store, varying on Authorization", what, cc, a.h.Values("Vary"))
			}
			if r.check != nil {
				t.Run(r.name, func(t *testing.T) { r.check(t, s, a) })
			}
		}
	}
	// The grant did not open the file to the next request.
	for _, g := range gateways {
		if a := request(t, "GET", g.gateway()+"/ddc/file/"+s.root); a.status != http.StatusForbidden {
			t.Fatalf("after reads with a grant, %s serves the file without one: %d", g.path, a.status)
		}
	}
}
