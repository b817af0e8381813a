package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fetchedBytes is what a daemon has fetched from other nodes so far.
func (d *daemon) fetchedBytes(t *testing.T) uint64 {
	t.Helper()
	var id struct {
		Fetched uint64 `json:"fetched_bytes"`
	}
	if err := json.Unmarshal([]byte(d.ok(nil, "node", "id", "--json")), &id); err != nil {
		t.Fatal(err)
	}
	return id.Fetched
}

// sentBytes sums the body bytes the gateway's access log says it sent for
// path, and counts those responses.
func (d *daemon) sentBytes(t *testing.T, path string) (sent uint64, responses int) {
	t.Helper()
	for line := range strings.Lines(d.logs.String()) {
		if !strings.Contains(line, "msg=gateway ") || !strings.Contains(line, " path="+path+" ") {
			continue
		}
		_, after, _ := strings.Cut(line, " bytes=")
		field, _, _ := strings.Cut(after, " ")
		n, err := strconv.ParseUint(field, 10, 64)
		if err != nil {
			t.Fatalf("an access log line with no byte count: %q", line)
		}
		sent += n
		responses++
	}
	return sent, responses
}

func (d *daemon) gateway() string { return "http://" + d.state.Gateway }

// TestGatewayBuckets: a private bucket's file through the gateway of a
// node that holds none of it: refused without a grant, served with one as
// ?token= or Authorization: Bearer; a path names its newest file.
func TestGatewayBuckets(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	gw := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	older := randomFile(t, 61, 300_000)
	newer := randomFile(t, 62, 200_000)
	owner.put(older, "-b", b, "--path", "/docs/report.txt")
	c := owner.put(newer, "-b", b, "--path", "/docs/report.txt")
	waitFor(t, "the gateway's node to find the bucket", 30*time.Second, func() bool { _, err := gw.bucket(b); return err == nil })
	url := gw.gateway() + "/ddc/buc/" + b + "/file/" + c

	a := request(t, "GET", url)
	if a.status != 403 || string(a.body) != "not found or not permitted\n" {
		t.Fatalf("a private file without a grant: %d %q; want 403", a.status, a.body)
	}
	bearer := strings.TrimSpace(owner.ok(nil, "bucket", "grant", b, "--bearer"))
	want, _ := os.ReadFile(newer)
	for name, a := range map[string]answer{
		"?token=":  request(t, "GET", url+"?token="+bearer),
		"a bearer": request(t, "GET", url, "Authorization", "Bearer "+bearer),
		"a range":  request(t, "GET", url+"?token="+bearer, "Range", "bytes=1000-1999"),
		"the path": request(t, "GET", gw.gateway()+"/ddc/buc/"+b+"/path/docs/report.txt", "Authorization", "Bearer "+bearer),
	} {
		body := want
		if name == "a range" {
			body = want[1000:2000]
		}
		if a.status/100 != 2 || !bytes.Equal(a.body, body) || !strings.HasPrefix(a.h.Get("Cache-Control"), "private") {
			t.Fatalf("%s: %d, %d bytes, Cache-Control %q", name, a.status, len(a.body), a.h.Get("Cache-Control"))
		}
	}
	p := request(t, "HEAD", gw.gateway()+"/ddc/buc/"+b+"/path/docs/report.txt?token="+bearer)
	p.want(t, "the path", 200, "Etag", `"`+c+`"`, "Content-Type", "text/plain; charset=utf-8",
		"Content-Disposition", "inline; filename=report.txt", "Cache-Control", "private, no-store")
	request(t, "GET", gw.gateway()+"/ddc/buc/"+b+"/path/no/such?token="+bearer).want(t, "a path no file has", 404)
	request(t, "GET", url, "Authorization", "Basic x").want(t, "not a bearer", 400)
}

// TestGatewayCurlRanges: curl -r of random ranges of a 1 GiB file, through
// the gateway of a node that holds none of it, gives exactly those bytes;
// then 200 range requests at once all succeed.
func TestGatewayCurlRanges(t *testing.T) {
	const size = 1 << 30
	holder := startDaemon(t, newDaemonRepo(t))
	gw := startDaemon(t, newDaemonRepo(t), "--bootstrap", holder.tcpAddr())
	big := randomFile(t, 63, size)
	c := holder.put(big)
	url := gw.gateway() + "/ddc/file/" + c
	r := rand.New(rand.NewPCG(63, 64))
	dir := t.TempDir()
	for i := range 12 {
		from := r.Int64N(size)
		to := min(from+r.Int64N(3<<20), size-1)
		rng := fmt.Sprintf("%d-%d", from, to)
		switch i {
		case 0:
			from, to, rng = 0, 99, "0-99"
		case 1:
			from, to, rng = size-1000, size-1, "-1000"
		}
		out := filepath.Join(dir, fmt.Sprintf("range-%d", i))
		if msg, err := exec.Command("curl", "-sS", "--fail", "-r", rng, "-o", out, url).CombinedOutput(); err != nil {
			t.Fatalf("curl -r %s: %v: %s", rng, err, msg)
		}
		if msg, err := exec.Command("cmp", "-n", fmt.Sprint(to-from+1), "-i", fmt.Sprintf("%d:0", from), big, out).CombinedOutput(); err != nil {
			t.Fatalf("curl -r %s: the bytes differ from the file's: %s", rng, msg)
		}
		if st, _ := os.Stat(out); st.Size() != to-from+1 {
			t.Fatalf("curl -r %s gave %d bytes", rng, st.Size())
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 200}}
	for i := range 200 {
		from := rand.New(rand.NewPCG(uint64(i), 65)).Int64N(size - 65536)
		wg.Go(func() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, from+65535))
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(resp.Body); err != nil || resp.StatusCode != 206 || buf.Len() != 65536 {
				errs <- fmt.Errorf("range at %d: %d, %d bytes, %v: %.300s", from, resp.StatusCode, buf.Len(), err, buf.Bytes())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCARRoundTrip: ddc export of a file, ddc import on an empty repo,
// ddc get gives the same bytes; a CAR with a block whose bytes do not
// match its CID is refused, naming the CID, and nothing of it is kept.
func TestCARRoundTrip(t *testing.T) {
	src := startDaemon(t, newDaemonRepo(t))
	f := randomFile(t, 66, 5<<20+333)
	c := src.put(f)
	dir := t.TempDir()
	carPath := filepath.Join(dir, "file.car")
	src.ok(nil, "export", c, "-o", carPath)

	empty := newRepo(t)
	if roots := strings.TrimSpace(empty.ok(nil, "import", carPath)); roots != c {
		t.Fatalf("import printed %q, want the root %s", roots, c)
	}
	out := filepath.Join(dir, "out")
	empty.ok(nil, "get", c, "-o", out)
	if !sameFile(t, f, out) {
		t.Fatal("the file got from the imported CAR differs")
	}

	// Through a running node too, whose node then serves the file.
	viaNode := startDaemon(t, newDaemonRepo(t))
	if roots := strings.TrimSpace(viaNode.ok(nil, "import", carPath)); roots != c {
		t.Fatalf("import through a node printed %q", roots)
	}
	if ls := viaNode.ok(nil, "ls"); !strings.Contains(ls, c) {
		t.Fatalf("the imported root is not pinned:\n%s", ls)
	}

	// Flip a byte inside the last block's data: the CAR ends with it.
	b, _ := os.ReadFile(carPath)
	b[len(b)-10] ^= 0xff
	bad := filepath.Join(dir, "bad.car")
	os.WriteFile(bad, b, 0o644)
	other := newRepo(t)
	code, _, errs := other.run(nil, "import", bad)
	if code == 0 || !strings.Contains(errs, "bafk") || !strings.Contains(errs, "does not match") {
		t.Fatalf("a CAR with a bad block: exit %d, %q; want a refusal naming the block's CID", code, errs)
	}
	if ls := strings.TrimSpace(other.ok(nil, "ls")); ls != "" {
		t.Fatalf("a refused import left files:\n%s", ls)
	}
	if st := other.ok(nil, "repo", "stat", "--json"); !strings.Contains(st, `"pieces": 0`) {
		t.Fatalf("a refused import left pieces: %s", st)
	}
}
