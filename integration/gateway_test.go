package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/gateway"
	noderepo "github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// gatewayOptions are the config's defaults but for a short retrieval
// timeout, so that the test of a CID no one holds ends soon.
func gatewayOptions() gateway.Options {
	o := gateway.OptionsFrom(noderepo.DefaultConfig().Gateway)
	o.RetrievalTimeout = 3 * time.Second
	return o
}

// serveGateway serves n's gateway on a loopback test server.
func serveGateway(t *testing.T, n *node.Node, o gateway.Options) (*gateway.Server, string) {
	t.Helper()
	gw := gateway.New(n, o)
	ts := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { ts.Close(); gw.Close() })
	return gw, ts.URL
}

func putTagged(t testing.TB, n *node.Node, data []byte, tags ...string) cid.Cid {
	t.Helper()
	opt := pieces.DefaultBuildOptions()
	for _, kv := range tags {
		tag, err := pieces.ParseTag(kv)
		if err != nil {
			t.Fatal(err)
		}
		opt.Tags = append(opt.Tags, tag)
	}
	res, err := n.Put(context.Background(), bytes.NewReader(data), opt)
	if err != nil {
		t.Fatal(err)
	}
	return res.Root
}

type answer struct {
	status int
	h      http.Header
	body   []byte
}

func request(t *testing.T, method, url string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1] // Go sends the field, not a header
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

func (a answer) want(t *testing.T, what string, status int, headers ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d (body %.200q)", what, a.status, status, a.body)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if got := a.h.Get(headers[i]); got != headers[i+1] {
			t.Fatalf("%s: %s: %q, want %q", what, headers[i], got, headers[i+1])
		}
	}
}

// TestGatewayHTTP: every HTTP case of the /ddc/ routes, from a gateway
// whose node holds nothing, serving files another node holds.
func TestGatewayHTTP(t *testing.T) {
	holder := startNode(t, nil)
	gwNode := startNode(t, nil, holder)
	_, base := serveGateway(t, gwNode, gatewayOptions())

	video := make([]byte, 3<<20+12345)
	io.ReadFull(content(51, int64(len(video))), video)
	vc := putTagged(t, holder, video, "content-type=video/mp4", "file-path=/films/clip one.mp4")
	url := base + "/ddc/file/" + vc.String()
	etag := `"` + vc.String() + `"`
	size := len(video)

	full := request(t, "GET", url)
	full.want(t, "GET", 200, "Etag", etag, "Cache-Control", "public, max-age=29030400, immutable",
		"Accept-Ranges", "bytes", "Content-Type", "video/mp4", "X-Content-Type-Options", "nosniff",
		"Content-Length", fmt.Sprint(size), "Content-Disposition", `inline; filename="clip one.mp4"`)
	if !bytes.Equal(full.body, video) {
		t.Fatalf("GET gave %d bytes that differ from the %d put", len(full.body), size)
	}
	head := request(t, "HEAD", url)
	head.want(t, "HEAD", 200, "Content-Length", fmt.Sprint(size), "Etag", etag)
	if len(head.body) != 0 {
		t.Fatal("HEAD had a body")
	}

	for _, tc := range []struct {
		rng      string
		from, to int // inclusive
	}{
		{"bytes=0-0", 0, 0}, {"bytes=1000-70000", 1000, 70000}, {"bytes=2000000-", 2000000, size - 1},
		{"bytes=-500", size - 500, size - 1}, {fmt.Sprintf("bytes=%d-%d", size-10, size+100), size - 10, size - 1},
		{"bytes=1048570-1048590", 1048570, 1048590}, // across a chunk boundary
	} {
		a := request(t, "GET", url, "Range", tc.rng)
		a.want(t, tc.rng, 206, "Content-Range", fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, size), "Etag", etag)
		if !bytes.Equal(a.body, video[tc.from:tc.to+1]) {
			t.Fatalf("%s: %d bytes that differ", tc.rng, len(a.body))
		}
	}

	multi := request(t, "GET", url, "Range", "bytes=10-19,3000000-3000009")
	multi.want(t, "two ranges", 206)
	mt, params, err := mime.ParseMediaType(multi.h.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("two ranges: Content-Type %q", multi.h.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(multi.body), params["boundary"])
	for _, want := range [][2]int{{10, 19}, {3000000, 3000009}} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if p.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", want[0], want[1], size) || !bytes.Equal(b, video[want[0]:want[1]+1]) {
			t.Fatalf("part %v: %q, %d bytes", want, p.Header.Get("Content-Range"), len(b))
		}
	}

	request(t, "GET", url, "Range", fmt.Sprintf("bytes=%d-", size)).want(t, "unsatisfiable", 416, "Content-Range", fmt.Sprintf("bytes */%d", size))
	request(t, "GET", url, "If-None-Match", etag).want(t, "If-None-Match", 304, "Etag", etag)
	request(t, "GET", url, "If-None-Match", `"other", `+etag).want(t, "If-None-Match in a list", 304)
	request(t, "GET", url, "Range", "bytes=5-9", "If-Range", etag).want(t, "If-Range matching", 206)
	if a := request(t, "GET", url, "Range", "bytes=5-9", "If-Range", `"stale"`); a.status != 200 || len(a.body) != size {
		t.Fatalf("If-Range not matching: %d, %d bytes; want the whole file", a.status, len(a.body))
	}
	request(t, "HEAD", url+"?download=1").want(t, "download", 200, "Content-Disposition", `attachment; filename="clip one.mp4"`)
	request(t, "HEAD", url+"?filename=x.webm").want(t, "filename", 200, "Content-Disposition", `inline; filename=x.webm`)

	// Content types: sniffed from the first bytes, else from the name.
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 4000)...)
	request(t, "HEAD", base+"/ddc/file/"+putTagged(t, holder, png).String()).want(t, "sniffed", 200, "Content-Type", "image/png", "Content-Disposition", "")
	css := putTagged(t, holder, []byte("body { color: red }\n"))
	request(t, "HEAD", base+"/ddc/file/"+css.String()+"?filename=a.css").want(t, "by extension", 200, "Content-Type", "text/css; charset=utf-8")
	request(t, "HEAD", base+"/ddc/file/"+css.String()).want(t, "plain text", 200, "Content-Type", "text/plain; charset=utf-8")

	// Errors: a short text saying what was wrong.
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/ddc/file/bafy-nope", 400, "invalid CID"},
		{"GET", "/ddc/file/" + pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("x")).String(), 400, "not a file descriptor"},
		{"GET", "/ddc/buc/nope/file/" + vc.String(), 400, "bucket"},
		{"POST", "/ddc/file/" + vc.String(), 405, "read-only"},
		{"GET", "/api/v1/id", 404, "no such route"},
		{"GET", "/ddc/file/" + pieces.SHA2_256.Sum(pieces.CodecDagCBOR, []byte("held by no one")).String(), 504, "held by"},
	} {
		a := request(t, tc.method, base+tc.path)
		tc.says = strings.Replace(tc.says, "held by", pieces.SHA2_256.Sum(pieces.CodecDagCBOR, []byte("held by no one")).String(), 1)
		if a.status != tc.status || !strings.Contains(string(a.body), tc.says) || a.h.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("%s %s: %d %q; want %d saying %q", tc.method, tc.path, a.status, a.body, tc.status, tc.says)
		}
	}
}

// TestGatewayFetchesOnlyWhatIsRead: a range in the middle of a large file
// fetches about the chunk it needs, and a client that leaves after a few
// bytes stops the fetches of its request.
func TestGatewayFetchesOnlyWhatIsRead(t *testing.T) {
	holder := startNode(t, nil)
	gwNode := startNode(t, nil, holder)
	gw, base := serveGateway(t, gwNode, gatewayOptions())
	const size = 64 << 20
	c := holdAll(t, 52, size, holder)
	url := base + "/ddc/file/" + c.String()

	a := request(t, "GET", url, "Range", "bytes=40000000-40065535")
	a.want(t, "a range in the middle", 206)
	want := make([]byte, 65536)
	r := content(52, size)
	io.CopyN(io.Discard, r, 40000000)
	io.ReadFull(r, want)
	if !bytes.Equal(a.body, want) {
		t.Fatal("the range's bytes differ")
	}
	if got := gwNode.Fetched(); got > 3<<20 {
		t.Fatalf("a 64 KiB range fetched %d bytes", got)
	}

	before := gwNode.Fetched()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 100<<10))
	cancel()
	resp.Body.Close()
	waitFor(t, "the gateway to end the request", 10*time.Second, func() bool { return gw.Active() == 0 })
	if got := gwNode.Fetched() - before; got > 16<<20 {
		t.Fatalf("a client that left after 100 KiB cost %d bytes of fetches", got)
	}

	// Past max_requests, 503: a client that does not read holds its slot.
	o := gatewayOptions()
	o.MaxRequests = 1
	_, one := serveGateway(t, gwNode, o)
	resp, err = http.Get(one + "/ddc/file/" + c.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "a second request to be refused while the first is served", 10*time.Second, func() bool {
		a := request(t, "GET", one+"/ddc/file/"+c.String(), "Range", "bytes=0-10")
		return a.status == 503 && a.h.Get("Retry-After") != "" && strings.Contains(string(a.body), "max_requests")
	})
}

// TestGatewayCorrupt: bytes that fail their hash from every holder give
// 502.
func TestGatewayCorrupt(t *testing.T) {
	boot := startNode(t, nil)
	liar := startLiar(t, boot, 53, 4<<20)
	gwNode := startNode(t, nil, boot)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gwNode.Connect(ctx, p2ptest.Info(liar)); err != nil {
		t.Fatal(err)
	}
	_, base := serveGateway(t, gwNode, gatewayOptions())

	var root cid.Cid
	ps := memPieces{}
	pieces.Build(context.Background(), content(53, 4<<20), ps, pieces.DefaultBuildOptions())
	for k := range ps {
		c, _ := cid.Cast([]byte(k))
		if f, err := pieces.Open(context.Background(), ps, c); err == nil && f.Size() == 4<<20 {
			root = c
		}
	}
	a := request(t, "GET", base+"/ddc/file/"+root.String(), "Range", "bytes=2000000-2000100")
	if a.status != 502 || !strings.Contains(string(a.body), "fail their hash") {
		t.Fatalf("corrupt bytes from every holder: %d %q; want 502", a.status, a.body)
	}

}

// TestGatewayTrustless: /ipfs/<cid> as a raw block or a CAR that IPFS
// clients verify, from a gateway whose node holds nothing.
func TestGatewayTrustless(t *testing.T) {
	holder := startNode(t, nil)
	gwNode := startNode(t, nil, holder)
	_, base := serveGateway(t, gwNode, gatewayOptions())
	data := make([]byte, 5<<20+77)
	io.ReadFull(content(54, int64(len(data))), data)
	c := putTagged(t, holder, data, "content-type=application/x-test")
	url := base + "/ipfs/" + c.String()

	raw := request(t, "GET", url+"?format=raw")
	raw.want(t, "format=raw", 200, "Content-Type", "application/vnd.ipld.raw", "Etag", `"`+c.String()+`.raw"`,
		"X-Ipfs-Roots", c.String(), "Cache-Control", "public, max-age=29030400, immutable",
		"Content-Disposition", `attachment; filename="`+c.String()+`.bin"`, "X-Content-Type-Options", "nosniff")
	if err := pieces.Verify(c, raw.body); err != nil {
		t.Fatalf("the raw block does not match its CID: %v", err)
	}
	request(t, "GET", url, "Accept", "application/vnd.ipld.raw").want(t, "Accept raw", 200, "Content-Type", "application/vnd.ipld.raw")
	request(t, "GET", url+"?format=raw", "If-None-Match", `"`+c.String()+`.raw"`).want(t, "raw If-None-Match", 304)
	request(t, "GET", url).want(t, "no format", 400)
	request(t, "GET", url, "Accept", "application/vnd.ipld.car; version=2").want(t, "CARv2 only", 406)
	request(t, "GET", url+"?format=car&entity-bytes=5:2").want(t, "backwards entity-bytes", 400)
	request(t, "GET", url+"/sub/path?format=car").want(t, "a path under a file", 404)

	carOf := func(query string, header ...string) (map[cid.Cid][]byte, answer) {
		t.Helper()
		a := request(t, "GET", url+query, header...)
		a.want(t, query, 200, "Content-Type", car.ContentType, "X-Ipfs-Roots", c.String(),
			"Content-Disposition", `attachment; filename="`+c.String()+`.car"`, "Accept-Ranges", "none")
		got := map[cid.Cid][]byte{}
		roots, err := car.Import(bytes.NewReader(a.body), func(c cid.Cid, b []byte) error { got[c] = b; return nil })
		if err != nil || len(roots) != 1 || !roots[0].Equals(c) {
			t.Fatalf("%s: CAR roots %v, %v", query, roots, err)
		}
		return got, a
	}
	all, a := carOf("?format=car")
	f, err := pieces.Open(context.Background(), memPiecesOf(all), c)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := io.ReadAll(f); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("the CAR's file reads back %d bytes, %v", len(back), err)
	}
	request(t, "GET", url+"?format=car", "If-None-Match", a.h.Get("Etag")).want(t, "CAR If-None-Match", 304)
	if blk, _ := carOf("", "Accept", "application/vnd.ipld.car"); len(blk) != len(all) {
		t.Fatalf("Accept car gave %d blocks, format=car %d", len(blk), len(all))
	}
	if blk, _ := carOf("?format=car&dag-scope=block"); len(blk) != 1 || blk[c] == nil {
		t.Fatalf("dag-scope=block gave %d blocks", len(blk))
	}
	part, a2 := carOf("?format=car&entity-bytes=3000000:3100000")
	if len(part) > 3 || a2.h.Get("Etag") == a.h.Get("Etag") {
		t.Fatalf("entity-bytes of 100 kB gave %d blocks (etag %s)", len(part), a2.h.Get("Etag"))
	}
	pf, _ := pieces.Open(context.Background(), memPiecesOf(part), c)
	buf := make([]byte, 100001)
	if _, err := pf.ReadAt(buf, 3000000); err != nil || !bytes.Equal(buf, data[3000000:3100001]) {
		t.Fatalf("the blocks of entity-bytes do not hold the range: %v", err)
	}
	if tail, _ := carOf("?format=car&entity-bytes=-1000:*"); len(tail) > 3 {
		t.Fatalf("the last 1000 bytes took %d blocks", len(tail))
	}
	request(t, "GET", url+fmt.Sprintf("?format=car&entity-bytes=%d:*", len(data)+5)).want(t, "entity-bytes past the end", 400)
}

func memPiecesOf(m map[cid.Cid][]byte) memPieces {
	ps := memPieces{}
	for c, b := range m {
		ps[c.KeyString()] = b
	}
	return ps
}
