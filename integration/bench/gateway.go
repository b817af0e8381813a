//go:build linux

package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// runGateway measures a daemon's HTTP gateway serving a file of size that
// another daemon holds, as a browser or curl would use it, from this
// process:
//   - seek: time to the first body byte of 64 KiB ranges at random
//     offsets, each in a chunk the gateway's node has not fetched, against
//     the same request for a range its node already holds (HTTP and the
//     local store: the floor);
//   - sequential: the whole file through the gateway of a fresh node,
//     against 'ddc get' on another fresh node in the same run;
//   - memory: the peak RSS of a fresh gateway node serving 200 requests
//     at once, each for 8 MiB at a random offset, against its peak RSS
//     before them.
func runGateway(size int64, dir string, runs, reads int) error {
	work, bin, err := workWithDDC(dir, "ddc-gatewaybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	holder, err := startDaemon(bin, filepath.Join(work, "holder"))
	if err != nil {
		return err
	}
	defer holder.stop()
	id, err := cliPut(bin, holder.repo, size, 7)
	if err != nil {
		return err
	}
	fresh := func(name string) (*benchDaemon, error) {
		return startDaemon(bin, filepath.Join(work, name), "--bootstrap", holder.addr)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}

	// Seeks.
	gw, err := fresh("seeks")
	if err != nil {
		return err
	}
	url := "http://" + gw.gateway + "/ddc/file/" + id
	if _, err := ttfb(client, url, 0); err != nil { // the root, and a connection
		gw.stop()
		return err
	}
	chunks := size >> 20
	r := rand.New(rand.NewPCG(7, 8))
	order := r.Perm(int(chunks))[:min(int(chunks)-1, max(reads, 1), 200)]
	var remote, local []time.Duration
	for _, k := range order {
		off := int64(k)<<20 + r.Int64N(1<<20-65536)
		d, err := ttfb(client, url, off)
		if err != nil {
			gw.stop()
			return err
		}
		remote = append(remote, d)
		if d, err = ttfb(client, url, off); err != nil { // now held
			gw.stop()
			return err
		}
		local = append(local, d)
	}
	gw.stop()
	p50, p90 := pct(remote, 50), pct(remote, 90)
	l50 := pct(local, 50)
	rows := []result{{name: fmt.Sprintf("seek: first byte of a random 64 KiB range of a remote %s file, median (%d seeks)", human(size), len(remote)),
		value: fmt.Sprintf("%.1f ms", ms(p50)), baseline: fmt.Sprintf("same range once held %.2f ms", ms(l50)),
		ratio: fmt.Sprintf("%.1f× that", p50.Seconds()/l50.Seconds()), target: "< 10 ms (IPFS gateway ~65 ms)", ok: p50 < 10*time.Millisecond},
		{name: "seek: first byte, p90", value: fmt.Sprintf("%.1f ms", ms(p90)), baseline: fmt.Sprintf("same range once held %.2f ms", ms(pct(local, 90))),
			ratio: fmt.Sprintf("%.1f× that", p90.Seconds()/pct(local, 90).Seconds()), target: "< 25 ms (IPFS gateway ~120 ms)", ok: p90 < 25*time.Millisecond}}

	// Local reads: the holder's gateway, against a static-file server of
	// the same bytes from the page cache, and against 'ddc cat'.
	localRows, err := localReads(bin, work, holder, id, size, runs, reads, client)
	if err != nil {
		return err
	}
	rows = append(rows, localRows...)

	// Sequential, each run on fresh nodes.
	var viaGateway, viaGet []time.Duration
	for i := range runs {
		gw, err := fresh(fmt.Sprintf("stream-%d", i))
		if err != nil {
			return err
		}
		d, err := streamAll(client, "http://"+gw.gateway+"/ddc/file/"+id, size)
		gw.stop()
		if err != nil {
			return err
		}
		viaGateway = append(viaGateway, d)
		g, err := freshCLIGet(bin, filepath.Join(work, fmt.Sprintf("get-%d", i)), holder, id, size)
		if err != nil {
			return err
		}
		viaGet = append(viaGet, g)
	}
	gr, cr := float64(size)/med(viaGateway).Seconds()/1e9, float64(size)/med(viaGet).Seconds()/1e9
	rows = append(rows, ratioRow(fmt.Sprintf("sequential: the whole %s through the gateway of a fresh node", human(size)), gr, "ddc get on a fresh node", cr, 0.9))

	// Memory under 200 requests at once.
	gw, err = fresh("concurrent")
	if err != nil {
		return err
	}
	url = "http://" + gw.gateway + "/ddc/file/" + id
	idle, err := peakRSS(gw.pid) // started and joined, nothing served
	if err != nil {
		gw.stop()
		return err
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		off := rand.New(rand.NewPCG(uint64(i), 9)).Int64N(size - 8<<20)
		wg.Go(func() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+8<<20-1))
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || resp.StatusCode != http.StatusPartialContent || n != 8<<20 {
				errs <- fmt.Errorf("range at %d: %s, %d bytes, %v", off, resp.Status, n, err)
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	rss, err := peakRSS(gw.pid)
	gw.stop()
	if err != nil {
		return err
	}
	rows = append(rows, result{name: fmt.Sprintf("peak RSS of the gateway's node, 200 requests at once of 8 MiB each (%d failed, %.1f s)", failed, took.Seconds()),
		value: fmt.Sprintf("%d MiB", rss>>20), baseline: fmt.Sprintf("the same node before them %d MiB", idle>>20),
		ratio: fmt.Sprintf("+%d MiB", (rss-idle)>>20), target: "≤ idle + 64 MiB + the read-ahead (64 MiB), no failures", ok: rss-idle <= 128<<20 && failed == 0})
	return report(fmt.Sprintf("gateway suite (%s file)", human(size)), rows)
}

// ttfb times a request for 64 KiB at off up to its first body byte, then
// reads the rest.
func ttfb(c *http.Client, url string, off int64) (time.Duration, error) {
	first, _, err := rangeGet(c, url, off)
	return first, err
}

// rangeGet requests the 64 KiB at off and times it to its first body
// byte and to its last.
func rangeGet(c *http.Client, url string, off int64) (first, all time.Duration, err error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+65535))
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		return 0, 0, fmt.Errorf("range at %d: %s: %w", off, resp.Status, err)
	}
	first = time.Since(t0)
	n, err := io.Copy(io.Discard, resp.Body)
	all = time.Since(t0)
	if err != nil || n != 65535 || resp.StatusCode != http.StatusPartialContent {
		return 0, 0, fmt.Errorf("range at %d of %s: %s, %d bytes, %v", off, url, resp.Status, n+1, err)
	}
	return first, all, nil
}

// streamAll times a GET of the whole file, discarding it.
func streamAll(c *http.Client, url string, size int64) (time.Duration, error) {
	return timedHTTPGet(c, url, func(n int64) bool { return n == size })
}

// timedHTTPGet times a GET of url to its last byte, discarding the body; ok
// says whether a body of n bytes is the one wanted (always with a 200).
func timedHTTPGet(c *http.Client, url string, ok func(n int64) bool) (time.Duration, error) {
	t0 := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !ok(n) {
		return 0, fmt.Errorf("GET %s: %s, %d bytes, %v", url, resp.Status, n, err)
	}
	return time.Since(t0), nil
}

// floorRow marks r as a figure beside its floor, with no target of its own.
func floorRow(r result) result {
	r.target, r.ok = "(the floor)", true
	return r
}

// pct is the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// localReads measures what the issue of local reads asks: random 64 KiB
// ranges of a file the node holds, to the first byte over a kept-alive
// connection, against the same ranges of the same bytes from a static
// file server (Go's net/http, the file in the page cache) in this
// process; and the whole file through the gateway against 'ddc cat' to
// /dev/null on the same node.
func localReads(bin, work string, holder *benchDaemon, id string, size int64, runs, reads int, client *http.Client) ([]result, error) {
	src := filepath.Join(work, "static")
	if err := writeSeeded(src, size, 7); err != nil { // the bytes cliPut put
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(work))}
	go srv.Serve(ln)
	defer srv.Close()
	static := "http://" + ln.Addr().String() + "/static"
	gw := "http://" + holder.gateway + "/ddc/file/" + id
	var cats, wholes, statics []time.Duration
	for i := range runs + 1 { // the first warms the page cache
		t0 := time.Now()
		cat := exec.Command(bin, "--repo", holder.repo, "cat", id)
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		cat.Stdout = devnull
		err = cat.Run()
		devnull.Close()
		if err != nil {
			return nil, fmt.Errorf("ddc cat: %w", err)
		}
		c := time.Since(t0)
		w, err := streamAll(client, gw, size)
		if err != nil {
			return nil, err
		}
		f, err := streamAll(client, static, size)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			cats, wholes, statics = append(cats, c), append(wholes, w), append(statics, f)
		}
	}
	r := rand.New(rand.NewPCG(11, 12))
	var local, floor []time.Duration
	for range max(reads, 1) {
		off := r.Int64N(size - 65536)
		d, err := ttfb(client, gw, off)
		if err != nil {
			return nil, err
		}
		f, err := ttfb(client, static, off)
		if err != nil {
			return nil, err
		}
		local, floor = append(local, d), append(floor, f)
	}
	l50, f50 := pct(local, 50), pct(floor, 50)
	gr, cr, sr := float64(size)/med(wholes).Seconds()/1e9, float64(size)/med(cats).Seconds()/1e9, float64(size)/med(statics).Seconds()/1e9
	return []result{
		{name: fmt.Sprintf("local: first byte of a random 64 KiB range of a held %s file, median (%d ranges)", human(size), len(local)),
			value: fmt.Sprintf("%.2f ms", ms(l50)), baseline: fmt.Sprintf("the same ranges from a static file server %.2f ms", ms(f50)),
			ratio: fmt.Sprintf("%.1f× that", l50.Seconds()/f50.Seconds()), target: "≤ 1 ms", ok: l50 <= time.Millisecond},
		ratioRow(fmt.Sprintf("local: the whole %s through the gateway of the node holding it", human(size)), gr, "ddc cat of it to /dev/null", cr, 0.9),
		floorRow(ratioRow(fmt.Sprintf("local: the whole %s through the gateway, against HTTP's floor", human(size)), gr, "a static file server, the file in the page cache,", sr, 0)),
	}, nil
}
