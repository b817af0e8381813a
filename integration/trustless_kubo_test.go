package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// kuboBin is Kubo's ipfs binary for the tests that run it: $DDC_KUBO, or
// /tmp/kubo/ipfs, which .ci/run builds (Kubo v0.42.0 from the module
// proxy) when it is absent. Run by hand without it, those tests skip.
func kuboBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DDC_KUBO")
	if bin == "" {
		bin = "/tmp/kubo/ipfs"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no Kubo binary at %s (set DDC_KUBO): %v", bin, err)
	}
	return bin
}

// providerRouter is a delegated routing server (the /routing/v1 HTTP
// API) that names one provider for every CID: a trustless gateway at
// addr, under peer ID id.
func providerRouter(t *testing.T, id peer.ID, addr string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/routing/v1/providers/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"Providers": []map[string]any{{
			"Schema": "peer", "ID": id.String(), "Addrs": []string{addr}, "Protocols": []string{"transport-ipfs-gateway-http"},
		}}})
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestTrustlessKubo: Kubo, told by a delegated router that the node's
// gateway (behind HTTPS, as Kubo's HTTP retrieval wants) provides
// everything, fetches a UnixFS directory with ipfs get and a ddc file
// with ipfs dag export over HTTP, checking each block, and both read
// back whole.
func TestTrustlessKubo(t *testing.T) {
	bin := kuboBin(t)
	d := newTrustlessDAGs(t)
	data := make([]byte, 3<<20+321)
	io.ReadFull(content(32, int64(len(data))), data)
	file := putTagged(t, d.n, data)

	gw, err := url.Parse(strings.TrimSuffix(d.base, "/ipfs/"))
	if err != nil {
		t.Fatal(err)
	}
	var blocksServed atomic.Int64 // block responses the proxy passed on
	proxy := httputil.NewSingleHostReverseProxy(gw)
	tls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/ipfs/") {
			blocksServed.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	tls.EnableHTTP2 = true
	tls.StartTLS()
	t.Cleanup(tls.Close)
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	port := tls.URL[strings.LastIndex(tls.URL, ":")+1:]
	router := providerRouter(t, id, "/ip4/127.0.0.1/tcp/"+port+"/tls/http")

	repo := t.TempDir()
	ipfs := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+repo)
		return cmd
	}
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := ipfs(ctx, args...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("ipfs %s: %v: %s", strings.Join(args, " "), err, msg)
		}
		return out
	}
	run("init", "--profile", "test")
	for _, kv := range [][2]string{
		{"Routing.Type", `"delegated"`},
		{"Routing.DelegatedRouters", fmt.Sprintf("[%q]", router)},
		{"HTTPRetrieval.Enabled", "true"},
		{"HTTPRetrieval.TLSInsecureSkipVerify", "true"}, // httptest's certificate
		{"Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
		{"Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
		{"Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`},
		{"Bootstrap", `[]`},
		{"Provide.Enabled", "false"}, // delegated routing cannot announce
	} {
		run("config", "--json", kv[0], kv[1])
	}
	dctx, stop := context.WithCancel(context.Background())
	daemon := ipfs(dctx, "daemon")
	daemon.Cancel = func() error { return daemon.Process.Signal(os.Interrupt) }
	daemon.WaitDelay = 10 * time.Second
	stdout, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	daemon.Stderr = &stderr
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); daemon.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Daemon is ready") {
				ready <- true
				break
			}
		}
		io.Copy(io.Discard, stdout)
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("Kubo's daemon ended before it was ready: %s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Kubo's daemon not ready within 60 s: %s", stderr.String())
	}

	// The UnixFS directory, with ipfs get.
	out := filepath.Join(t.TempDir(), "dir")
	run("get", "-o", out, d.dir.String())
	if b, err := os.ReadFile(filepath.Join(out, "sub", "big.bin")); err != nil || !bytes.Equal(b, d.data) {
		t.Fatalf("ipfs get: sub/big.bin read back %d bytes: %v", len(b), err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "hello.txt")); err != nil || string(b) != "hello, trustless world\n" {
		t.Fatalf("ipfs get: hello.txt is %q: %v", b, err)
	}

	if n := blocksServed.Load(); n < int64(len(d.fx.dfs(t, d.dir, false, nil))) {
		t.Fatalf("Kubo made %d block requests of the gateway, fewer than the directory's blocks", n)
	}

	// The ddc file, as the CAR Kubo exports of what it fetched.
	m := memPieces{}
	if _, err := car.Import(bytes.NewReader(run("dag", "export", file.String())), m.PutPiece); err != nil {
		t.Fatal(err)
	}
	f, err := pieces.Open(context.Background(), m, file)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := io.ReadAll(f); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("Kubo's copy of the ddc file reads back %d of %d bytes: %v", len(back), len(data), err)
	}
}
