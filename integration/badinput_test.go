package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/pieces"
)

// TestDaemonBadInput sends garbage to a running node's API and exchange
// endpoints; the node answers each with a clear error or drops the stream,
// and goes on serving.
func TestDaemonBadInput(t *testing.T) {
	n := startDaemon(t, newDaemonRepo(t))
	id := n.put(randomFile(t, 33, 3<<20+7))
	base := "http://" + n.state.API + "/api/v1"

	// Raw bytes to the API port: the server answers 400 and closes, by
	// itself, well before the client's deadline.
	for i := range 3 {
		conn, err := net.DialTimeout("tcp", n.state.API, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 4096)
		rand.Read(junk)
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write(junk)
		got, err := io.ReadAll(conn)
		conn.Close()
		if timedOut(err) {
			t.Fatalf("junk %d to the API: the server kept the connection open (%d bytes back)", i, len(got))
		}
		if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
			t.Fatalf("junk %d to the API: answered %.40q, want 400 or nothing", i, got)
		}
	}

	// Malformed requests get a JSON error with the right code.
	for _, tc := range []struct {
		method, path string
		status       int
		code, says   string
	}{
		{"GET", "/cat/not-a-cid", 400, "usage", "not-a-cid"},
		{"GET", "/cat/" + id + "?offset=x", 400, "usage", "byte count"},
		{"GET", "/cat/" + id + "?offset=999999999", 400, "usage", "past the end"},
		{"GET", "/stat/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", 400, "usage", "invalid CID"},
		{"POST", "/put?chunk=7", 400, "usage", "chunk size"},
		{"POST", "/put?hash=md5", 400, "usage", "md5"},
		{"POST", "/put?tag=novalue", 400, "usage", "KEY=VALUE"},
		{"POST", "/connect?addr=/ip4/127.0.0.1/tcp/1", 400, "usage", "/p2p/"},
		{"GET", "/providers/zzz?timeout=1s", 400, "usage", "zzz"},
		{"GET", "/no/such/route", 400, "usage", "no route"},
		{"DELETE", "/id", 400, "usage", "no route DELETE"},
		{"GET", "/bucket/nope", 400, "usage", "nope"},
		{"POST", "/bucket/ddcbzz/publish", 400, "usage", "ddcbzz"},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader("body"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var e struct{ Code, Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || e.Code != tc.code || !strings.Contains(e.Error, tc.says) {
			t.Errorf("%s %s: %d %+v, want %d %s mentioning %q", tc.method, tc.path, resp.StatusCode, e, tc.status, tc.code, tc.says)
		}
	}
	// Oversized headers.
	req, _ := http.NewRequest("GET", base+"/id", nil)
	req.Header.Set("X-Junk", strings.Repeat("j", 1<<20))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("1 MiB header: %s", resp.Status)
		}
		resp.Body.Close()
	}

	// The exchange protocol: random bytes, an oversized frame, a truncated
	// frame, each on its own stream from a real libp2p peer.
	h, ai, ctx := dialDaemon(t, n)
	proto := exchange.ProtocolID("default")
	random := make([]byte, 8192)
	rand.Read(random)
	oversized := binary.AppendUvarint(nil, 1<<30)
	truncated := append(binary.AppendUvarint(nil, 100), 0x85, 0x01)
	// Each stream is ended by the node, before the client's deadline,
	// with no piece bytes: nothing at all for a frame that cannot be read,
	// at most a short status for random bytes that happen to parse.
	for name, junk := range map[string][]byte{"random bytes": random, "oversized frame": oversized, "truncated frame": truncated} {
		s, err := h.NewStream(ctx, ai.ID, proto)
		if err != nil {
			t.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(10 * time.Second))
		s.Write(junk)
		s.CloseWrite()
		got, err := io.ReadAll(bufio.NewReader(s))
		s.Close()
		if timedOut(err) {
			t.Fatalf("%s on an exchange stream: the node kept the stream open", name)
		}
		if max := map[bool]int{true: 16, false: 0}[name == "random bytes"]; len(got) > max {
			t.Fatalf("%s on an exchange stream: %d bytes back (%x), want at most %d", name, len(got), got[:min(len(got), 32)], max)
		}
	}

	// Still serving: over the exchange, through the API and the CLI.
	root, _ := pieces.ParseCID(id)
	sess, err := exchange.Dial(ctx, h, ai.ID, "default", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Get(ctx, root); err != nil {
		t.Fatalf("exchange after bad input: %v", err)
	}
	if out := n.ok(nil, "node", "id"); !strings.Contains(out, n.state.PeerID) {
		t.Fatalf("node id after bad input: %q", out)
	}
	n.ok(nil, "cat", id, "--length", "10")

	// Bad arguments to the network commands are usage errors.
	for _, args := range [][]string{{"connect", "garbage"}, {"providers", "garbage"}} {
		if code, _, errs := n.run(nil, args...); code != 2 {
			t.Errorf("ddc %v: exit %d: %s", args, code, errs)
		}
	}
}

// timedOut reports whether err is a deadline passing.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialDaemon connects a libp2p host of the test's own to d, for speaking
// d's protocols directly; the context bounds the test's use of it.
func dialDaemon(t *testing.T, d *daemon) (host.Host, *peer.AddrInfo, context.Context) {
	t.Helper()
	h := p2ptest.NewHost(t)
	ai, err := peer.AddrInfoFromString(d.tcpAddr())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := h.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	return h, ai, ctx
}
