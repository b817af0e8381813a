//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// runPrivate measures what a private bucket costs a get: 'ddc get' as a
// separate process through a fresh daemon, of a file one daemon holds in a
// bucket, with a grant while the bucket is private, against the same get
// while it is public (the holder's access rule then serves anyone). The
// two alternate, each on a fresh getter, so both see the same machine.
func runPrivate(size int64, dir string, runs int) error {
	work, bin, err := workWithDDC(dir, "ddc-privbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dh, err := startDaemon(bin, filepath.Join(work, "holder"))
	if err != nil {
		return err
	}
	defer dh.stop()
	// A second node, so the holder has a DHT peer to publish the
	// bucket's record to.
	witness, err := startDaemon(bin, filepath.Join(work, "witness"), "--bootstrap", dh.addr)
	if err != nil {
		return err
	}
	defer witness.stop()
	holderOut := func(args ...string) (string, error) { return ddcOut(bin, dh.repo, args...) }
	b, err := holderOut("bucket", "create", "--private")
	if err != nil {
		return err
	}
	id, err := cliPut(bin, dh.repo, size, 5, "-b", b)
	if err != nil {
		return err
	}
	token, err := holderOut("bucket", "grant", b, "--bearer", "--ops", "get")
	if err != nil {
		return err
	}
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	var privT, pubT, ratios []time.Duration
	get := func(i int, private bool) (time.Duration, error) {
		access, args := "--public", []string(nil)
		if private {
			access, args = "--private", []string{"-b", b, "--token", token}
		}
		if _, err := holderOut("bucket", "set", b, access); err != nil {
			return 0, err
		}
		return freshCLIGet(bin, filepath.Join(work, fmt.Sprintf("getter-%d-%v", i, private)), dh, id, size, args...)
	}
	for i := range runs + 1 {
		var p, q time.Duration
		if i%2 == 0 {
			if p, err = get(i, true); err == nil {
				q, err = get(i, false)
			}
		} else {
			if q, err = get(i, false); err == nil {
				p, err = get(i, true)
			}
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "pair %d: private get with a grant %.2f GB/s, public get %.2f GB/s (%.2f×)\n", i, gb(p), gb(q), q.Seconds()/p.Seconds())
		if i > 0 { // the first pair warms up
			privT, pubT = append(privT, p), append(pubT, q)
			ratios = append(ratios, time.Duration(float64(time.Second)*q.Seconds()/p.Seconds()))
		}
	}
	r := med(ratios).Seconds()
	return report(fmt.Sprintf("private bucket benchmark: daemons on loopback, %s file, %d pairs (median)", human(size), runs), []result{{
		name:     "ddc get " + human(size) + " from a private bucket with a grant (CLI through a fresh daemon)",
		value:    fmt.Sprintf("%.2f GB/s", gb(med(privT))),
		baseline: fmt.Sprintf("the same get with the bucket public %.2f GB/s", gb(med(pubT))),
		ratio:    fmt.Sprintf("%.2f× (median of %d pairs)", r, len(ratios)), target: "≥ 0.95×", ok: r >= 0.95,
	}})
}
