package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/gateway"
	noderepo "github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// fuzzGateway is a lone node holding a private file (and a public one),
// with its gateway's handler and the grants the fuzz target picks from.
type fuzzGateway struct {
	h                       http.Handler
	bucket                  string
	privRoot, privChunk     string
	pubRoot                 string
	marker, tag, path       string
	valid, chain, nodeBound string
	tampered, otherBucket   string
}

var (
	fuzzOnce sync.Once
	fuzzGW   *fuzzGateway
)

// fuzzGatewayFor starts the node once for every input of the fuzz run.
func fuzzGatewayFor(f *testing.F) *fuzzGateway {
	fuzzOnce.Do(func() {
		n := startNode(f, nil)
		key, err := noderepo.AccountOf(n.Repo().Identity)
		if err != nil {
			f.Fatal(err)
		}
		bs, _ := noderepo.Buckets(n.Repo().Path)
		rec, _ := bucket.NewRecord(key, "default", true, "")
		other, _ := bucket.NewRecord(key, "default", true, "")
		for _, r := range []bucket.Record{rec, other} {
			if _, err := bs.Keep(r); err != nil {
				f.Fatal(err)
			}
		}
		g := &fuzzGateway{bucket: rec.Bucket.String(), marker: "FUZZ-PRIVATE-9e41;", tag: "FUZZ-TAG-77ab", path: "/fuzz/secret.txt"}
		put := func(data []byte, in *node.In, tags ...string) string {
			opt := pieces.DefaultBuildOptions()
			for _, kv := range tags {
				t, _ := pieces.ParseTag(kv)
				opt.Tags = append(opt.Tags, t)
			}
			res, err := n.PutIn(context.Background(), bytes.NewReader(data), opt, in)
			if err != nil {
				f.Fatal(err)
			}
			return res.Root.String()
		}
		g.privRoot = put(bytes.Repeat([]byte(g.marker), (1<<20+5000)/len(g.marker)), &node.In{Bucket: rec.Bucket}, "file-path="+g.path, "note="+g.tag)
		g.pubRoot = put(bytes.Repeat([]byte("public bytes;"), 100_000), nil, "file-path=/fuzz/public.txt")
		rd, err := n.Open(context.Background(), mustCID(f, g.privRoot))
		if err != nil {
			f.Fatal(err)
		}
		g.privChunk = rd.Root().Links[0].CID.String()
		rd.Close()
		now := time.Now()
		grant := func(b bucket.ID, to *bucket.PublicKey) bucket.Token {
			t, err := bucket.NewGrant(key, b, to, bucket.OpGet, now.Add(time.Hour), false, now)
			if err != nil {
				f.Fatal(err)
			}
			return t
		}
		valid := grant(rec.Bucket, nil)
		self := key.Public()
		g.valid, g.chain, g.nodeBound = valid.String(), valid.Chain(), grant(rec.Bucket, &self).String()
		g.otherBucket = grant(other.Bucket, nil).String()
		broken := valid
		broken.Links = append([]bucket.Link(nil), valid.Links...)
		broken.Links[0].Sig = append([]byte(nil), valid.Links[0].Sig...)
		broken.Links[0].Sig[0] ^= 1
		g.tampered = broken.String()
		gw := gateway.New(n, gatewayOptions())
		f.Cleanup(func() { gw.Close() })
		g.h = gw.Handler()
		fuzzGW = g
	})
	return fuzzGW
}

// FuzzGatewayAccess: random routes, CIDs, formats, ranges, hosts and
// tokens against a node that holds a private file: nothing but the valid
// grant reads any of it, its tag or its path; a 2xx answer about it
// comes only with the valid grant, and never cacheable in public.
func FuzzGatewayAccess(f *testing.F) {
	g := fuzzGatewayFor(f)
	for route := range uint8(6) {
		for tok := range uint8(7) {
			f.Add(route, uint8(route+tok), uint8(tok), "bytes=0-99", tok, []byte("x"), "localhost:8040", tok%2 == 0)
		}
	}
	f.Add(uint8(2), uint8(0), uint8(0), "", uint8(1), []byte("fuzz/secret.txt"), "127.0.0.1", true)
	f.Add(uint8(3), uint8(1), uint8(2), "bytes=-10", uint8(0), []byte{0xff}, "evil.example", false)
	f.Fuzz(func(t *testing.T, route, target, format uint8, rng string, tok uint8, mut []byte, host string, head bool) {
		c := []string{g.privRoot, g.privChunk, g.pubRoot, string(mut), url.PathEscape(string(mut))}[int(target)%5]
		private := c == g.privRoot || c == g.privChunk
		var p string
		switch route % 6 {
		case 0:
			p = "/ddc/file/" + c
		case 1:
			p = "/ddc/buc/" + g.bucket + "/file/" + c
		case 2:
			sub := strings.TrimPrefix(g.path, "/")
			if target%2 == 1 {
				sub = url.PathEscape(string(mut))
			}
			p = "/ddc/buc/" + g.bucket + "/path/" + sub
			private = sub == strings.TrimPrefix(g.path, "/")
		case 3:
			p = "/ipfs/" + c
		case 4:
			p = "/ipfs/" + c + "/" + url.PathEscape(string(mut))
		default:
			p = "/" + url.PathEscape(string(mut))
		}
		q := url.Values{}
		switch format % 5 {
		case 1:
			q.Set("format", "raw")
		case 2:
			q.Set("format", "car")
		case 3:
			q.Set("format", "car")
			q.Set("entity-bytes", rng)
		case 4:
			q.Set("dag-scope", string(mut))
		}
		token := []string{"", g.valid, g.chain, g.nodeBound, g.tampered, g.otherBucket, string(mut)}[int(tok)%7]
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req := httptest.NewRequest(method, "/", nil)
		req.URL.Path, req.URL.RawPath = p, ""
		if token != "" && tok%2 == 0 {
			q.Set("token", token)
		} else if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.URL.RawQuery = q.Encode()
		req.Host = host
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		if format%2 == 1 {
			req.Header.Set("Accept", "application/vnd.ipld.raw")
		}
		w := httptest.NewRecorder()
		g.h.ServeHTTP(w, req)
		body := w.Body.Bytes()
		what := fmt.Sprintf("%s %s?%s (Host %q, Range %q): %d", method, p, req.URL.RawQuery, host, rng, w.Code)
		if token == g.valid {
			if w.Code/100 == 2 && strings.Contains(w.Header().Get("Cache-Control"), "public") && private {
				t.Fatalf("%s: a read with a grant cacheable in public", what)
			}
			return
		}
		for _, secret := range []string{g.marker, g.tag, g.path} {
			if bytes.Contains(body, []byte(secret)) {
				t.Fatalf("%s: without the grant, the body holds %q", what, secret)
			}
		}
		if private && w.Code/100 == 2 {
			t.Fatalf("%s: without the grant, a private file answered %d (%d bytes)", what, w.Code, len(body))
		}
	})
}
