//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-unixfsnode/data/builder"
	"github.com/ipld/go-ipld-prime"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"

	"github.com/ddc-project/ddc/pieces/car"
)

// runTrustless measures what issue 30 asks of the trustless gateway
// (/ipfs/), on one daemon holding a ddc file and a UnixFS file (Kubo's
// layout: 256 KiB raw leaves) of the same size and bytes:
//
//   - a CAR of the whole file (?format=car) to the last byte, against
//     'ddc export' of the same file to /dev/null on the same node;
//   - 64 KiB entity-bytes CARs at random offsets, to the last byte
//     (the UnixFS file's also as boxo's handler answers them);
//   - the ddc file's figures on ddc built at before (the gateway before
//     boxo served /ipfs/), on the same repo, so a regression shows.
func runTrustless(size int64, dir string, runs, reads int, before string) error {
	work, bin, old, err := workWithDDCAt(dir, "ddc-trustlessbench-", before)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	repo := filepath.Join(work, "repo")
	d, err := startDaemon(bin, repo)
	if err != nil {
		return err
	}
	defer func() { d.stop() }()
	id, err := cliPut(bin, repo, size, 7)
	if err != nil {
		return err
	}
	carPath := filepath.Join(work, "unixfs.car")
	ufs, err := unixfsCAR(carPath, size, 7)
	if err != nil {
		return err
	}
	if _, _, err := ddc(bin, repo, io.Discard, "import", carPath); err != nil {
		return fmt.Errorf("import the UnixFS file: %w", err)
	}
	os.Remove(carPath)
	client := keptAliveClient()
	offs := make([]int64, max(reads, 1))
	r := rand.New(rand.NewPCG(30, 64))
	for i := range offs {
		offs[i] = r.Int64N(size - 65536)
	}

	exportT := median(runs, func() (time.Duration, error) {
		t0 := time.Now()
		_, _, err := ddc(bin, repo, io.Discard, "export", id)
		return time.Since(t0), err
	})
	ufsExportT := median(runs, func() (time.Duration, error) {
		t0 := time.Now()
		_, _, err := ddc(bin, repo, io.Discard, "export", ufs.String())
		return time.Since(t0), err
	})
	gw := "http://" + d.gateway + "/ipfs/"
	ddcCAR := median(runs, func() (time.Duration, error) { return carTime(client, gw+id+"?format=car", size) })
	ufsCAR := median(runs, func() (time.Duration, error) { return carTime(client, gw+ufs.String()+"?format=car", size) })
	ddcRange, err := entityRanges(client, gw+id, offs, "")
	if err != nil {
		return err
	}
	ufsRange, err := entityRanges(client, gw+ufs.String(), offs, "")
	if err != nil {
		return err
	}
	// ?filename= is left to boxo's handler: the UnixFS ranges as boxo
	// answers them, the same blocks.
	boxoRange, err := entityRanges(client, gw+ufs.String(), offs, "&filename=r.car")
	if err != nil {
		return err
	}

	// The same on the code before, on the same repo.
	d.stop()
	if d, err = startDaemon(old, repo); err != nil {
		return err
	}
	gw = "http://" + d.gateway + "/ipfs/"
	oldCAR := median(runs, func() (time.Duration, error) { return carTime(client, gw+id+"?format=car", size) })
	oldRange, err := entityRanges(client, gw+id, offs, "")
	if err != nil {
		return err
	}

	gbs := func(t time.Duration) float64 { return float64(size) / t.Seconds() / 1e9 }
	rangeRow := func(what string, p50, base time.Duration, baseName string) result {
		return result{name: fmt.Sprintf("64 KiB entity-bytes CAR of a held %s, to its last byte, median of %d", what, len(offs)),
			value: fmt.Sprintf("%.3f ms", ms(p50)), baseline: fmt.Sprintf("%s %.3f ms", baseName, ms(base)),
			ratio: fmt.Sprintf("%.2f×", p50.Seconds()/base.Seconds()), target: "≤ 1 ms", ok: p50 <= time.Millisecond}
	}
	rows := []result{
		ratioRow(fmt.Sprintf("/ipfs/<ddc file>?format=car of %s, to its last byte", human(size)), gbs(ddcCAR), "ddc export to /dev/null", gbs(exportT), 0.9),
		ratioRow(fmt.Sprintf("/ipfs/<UnixFS file>?format=car of %s (car.WriteDAG), to its last byte", human(size)), gbs(ufsCAR), "ddc export of the UnixFS file to /dev/null", gbs(ufsExportT), 0.9),
		ratioRow("the UnixFS file's CAR beside the ddc file's export", gbs(ufsCAR), "ddc export of the ddc file", gbs(exportT), 0.9),
		ratioRow("the ddc file's CAR beside the code before", gbs(ddcCAR), "before "+before, gbs(oldCAR), 0.95),
		rangeRow("ddc file", ddcRange, oldRange, "before "+before),
		rangeRow("UnixFS file (ddc's walk)", ufsRange, boxoRange, "boxo's handler"),
		rangeRow("UnixFS file (ddc's walk)", ufsRange, ddcRange, "the ddc file"),
	}
	return report(fmt.Sprintf("trustless gateway benchmark (%s files; before: %s)", human(size), before), rows)
}

// carTime times a GET of url to its last byte; a CAR of a file of size
// bytes is longer than that.
func carTime(c *http.Client, url string, size int64) (time.Duration, error) {
	return timedHTTPGet(c, url, func(n int64) bool { return n >= size })
}

// entityRanges times a 64 KiB entity-bytes CAR at each offset, to its
// last byte, over a kept-alive connection, and returns the median.
// extra is added to each query.
func entityRanges(c *http.Client, url string, offs []int64, extra string) (time.Duration, error) {
	ds := make([]time.Duration, 0, len(offs))
	for i, off := range append([]int64{0}, offs...) { // the first warms the connection
		u := fmt.Sprintf("%s?format=car&dag-scope=entity&entity-bytes=%d:%d%s", url, off, off+65535, extra)
		t0 := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n < 65536 {
			return 0, fmt.Errorf("GET %s: %s, %d bytes, %v", u, resp.Status, n, err)
		}
		if i > 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	return pct(ds, 50), nil
}

// unixfsCAR writes a CAR of a UnixFS file of size seeded random bytes
// (the bytes cliPut puts) as Kubo lays it out, 256 KiB raw leaves: once
// to learn its root, which the CAR's header names, and once to write it.
func unixfsCAR(path string, size int64, seed byte) (cid.Cid, error) {
	input := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{seed}), size) }
	build := func(put func(c cid.Cid, b []byte) error) (cid.Cid, error) {
		ls := cidlink.DefaultLinkSystem()
		ls.StorageWriteOpener = func(ipld.LinkContext) (io.Writer, ipld.BlockWriteCommitter, error) {
			var buf bytes.Buffer
			return &buf, func(l ipld.Link) error { return put(l.(cidlink.Link).Cid, buf.Bytes()) }, nil
		}
		l, _, err := builder.BuildUnixFSFile(input(), "size-262144", &ls)
		if err != nil {
			return cid.Undef, err
		}
		return l.(cidlink.Link).Cid, nil
	}
	root, err := build(func(cid.Cid, []byte) error { return nil })
	if err != nil {
		return cid.Undef, err
	}
	f, err := os.Create(path)
	if err != nil {
		return cid.Undef, err
	}
	defer f.Close()
	w, err := car.NewWriter(f, root)
	if err != nil {
		return cid.Undef, err
	}
	if _, err := build(w.Put); err != nil {
		return cid.Undef, err
	}
	return root, f.Close()
}
