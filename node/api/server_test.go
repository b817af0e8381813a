package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// serve starts a lone node with its API on a free loopback port; the
// node closes when the test ends, after the API.
func serve(t *testing.T) (*Server, *node.Node) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(path, p2ptest.NodeConfig()); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(r, node.Options{FindTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	s, err := Listen(n, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, n
}

func putBytes(t *testing.T, n *node.Node, data []byte) cid.Cid {
	t.Helper()
	res, err := n.Put(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	return res.Root
}

// TestBrowserRequestsRefused: what a web page can make a browser send to
// the API on loopback (a form post, an <img> tag, a DNS-rebound name) is
// refused with 403 and changes nothing; what programs send passes.
func TestBrowserRequestsRefused(t *testing.T) {
	s, n := serve(t)
	held := putBytes(t, n, []byte("held by the node"))
	if err := n.Repo().Store.Unpin(held); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Addr())
	base := "http://" + s.Addr() + "/api/v1"
	own := "http://127.0.0.1:" + port
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
	}{
		{"program put", "POST", "/put", "from a program", nil, 200},
		{"program cat", "GET", "/cat/" + held.String(), "", nil, 200},
		{"own origin put", "POST", "/put", "own page", map[string]string{"Origin": own, "Sec-Fetch-Site": "same-origin"}, 200},
		{"localhost host", "GET", "/id", "", map[string]string{"Host": "localhost:" + port}, 200},
		{"address bar", "GET", "/id", "", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"foreign origin put", "POST", "/put", "evil", map[string]string{"Origin": "http://evil.example", "Content-Type": "application/octet-stream"}, 403},
		{"null origin put", "POST", "/put", "evil", map[string]string{"Origin": "null"}, 403},
		{"origin on another port", "POST", "/put", "evil", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"https origin", "POST", "/put", "evil", map[string]string{"Origin": "https://127.0.0.1:" + port}, 403},
		{"form post without origin", "POST", "/put", "evil", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, 403},
		{"urlencoded post", "POST", "/put", "evil", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"img tag cat", "GET", "/cat/" + held.String(), "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}, 403},
		{"same-site cat", "GET", "/cat/" + held.String(), "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"rebound ls", "GET", "/ls", "", map[string]string{"Host": "evil.example"}, 403},
		{"rebound id with port", "GET", "/id", "", map[string]string{"Host": "evil.example:" + port}, 403},
		{"loopback host on another port", "GET", "/id", "", map[string]string{"Host": "127.0.0.1:1"}, 403},
		{"pin through GET", "GET", "/cat/" + held.String() + "?pin=true", "", nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, base+tc.path, body)
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, msg, tc.status)
			}
			if tc.status == 403 && !strings.Contains(string(msg), CodeForbid) {
				t.Fatalf("403 without the forbidden code: %s", msg)
			}
		})
	}
	// Nothing the refused requests sent was stored or pinned: the two
	// allowed puts are the only pinned files.
	files, err := New(s.Addr()).Ls(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("%d pinned files, want the 2 allowed puts: %+v", len(files), files)
	}
	if has, err := n.Repo().Store.Has(putOffline(t, "evil")); err != nil || has {
		t.Errorf("a refused put was stored (%v)", err)
	}
	// Pinning through POST works.
	cat, err := New(s.Addr()).Cat(context.Background(), held, 0, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, cat)
	cat.Close()
	files, _ = New(s.Addr()).Ls(context.Background())
	if len(files) != 3 {
		t.Errorf("after a pinning cat through POST: %d pinned files, want 3", len(files))
	}
}

// putOffline is the CID a put of s with the default options makes.
func putOffline(t *testing.T, s string) cid.Cid {
	t.Helper()
	res, err := pieces.Build(context.Background(), strings.NewReader(s), discard{}, pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	return res.Root
}

// TestCloseDrains: Close lets a cat in progress finish whole, and one that
// outlives the drain is cut, with Close returning only once its handler
// has, so the node can close its store after.
func TestCloseDrains(t *testing.T) {
	s, n := serve(t)
	s.drain = 2 * time.Second
	data := bytes.Repeat([]byte("drain me "), 1<<20) // 9 MiB
	k := putBytes(t, n, data)
	cl := New(s.Addr())

	cat, err := cl.Cat(context.Background(), k, 0, -1, false)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1)
	if _, err := io.ReadFull(cat, head); err != nil {
		t.Fatal(err)
	}
	stalled, err := cl.Cat(context.Background(), k, 0, -1, false) // never read
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	rest, err := io.ReadAll(cat)
	if err != nil {
		t.Fatalf("a cat running when Close began: %v after %d bytes", err, len(rest)+1)
	}
	if !bytes.Equal(append(head, rest...), data) {
		t.Fatal("a cat running when Close began gave other bytes")
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a stalled cat was still within the drain", err)
	default:
	}
	select {
	case <-closed:
	case <-time.After(s.drain + 5*time.Second):
		t.Fatal("Close did not cut the stalled cat after the drain")
	}
	if _, err := io.ReadAll(stalled); err == nil {
		t.Fatal("the stalled cat, cut at Close, read as whole")
	}
	if _, err := cl.ID(context.Background()); err == nil {
		t.Fatal("the API answers after Close")
	}
	if err := n.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("closing the node after the API: %v", err)
	}
}

type discard struct{}

func (discard) PutPiece(cid.Cid, []byte) error { return nil }
