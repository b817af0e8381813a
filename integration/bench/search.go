//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ddc-project/ddc/node/api"
)

// runSearch measures a bucket search across ten daemons on loopback, each
// holding 20 files of the bucket: the node's answer through its API (what
// 'ddc search' waits for), and 'ddc search' as a separate process against
// 'ddc id' as one, the floor of any CLI command that asks the daemon.
func runSearch(dir string, runs int) error {
	work, bin, err := workWithDDC(dir, "ddc-searchbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var ds []*benchDaemon
	defer func() {
		for _, d := range ds {
			d.stop()
		}
	}()
	for i := range 10 {
		var args []string
		if i > 0 {
			args = []string{"--bootstrap", ds[0].addr}
		}
		d, err := startDaemon(bin, filepath.Join(work, fmt.Sprintf("n%d", i)), args...)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	ddcOut := func(d *benchDaemon, args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"--repo", d.repo}, args...)...).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("ddc %v: %s", args, ee.Stderr)
		}
		return strings.TrimSpace(string(out)), err
	}
	b, err := ddcOut(ds[0], "bucket", "create", "--name", "bench")
	if err != nil {
		return err
	}
	const perNode = 20
	for i, d := range ds {
		args := []string{"-b", b}
		if i > 0 {
			tok, err := ddcOut(ds[0], "bucket", "grant", b, "--to", peerOf(d), "--ops", "put")
			if err != nil {
				return err
			}
			args = append(args, "--token", tok)
		}
		for j := range perNode {
			if _, err := cliPut(bin, d.repo, 4096, byte(i*perNode+j), append(args, "-t", "kind=talk", "-t", fmt.Sprintf("n=%d", i*perNode+j))...); err != nil {
				return err
			}
		}
	}
	seeker := ds[9]
	cl, err := api.Find(context.Background(), seeker.repo)
	if err != nil {
		return err
	}
	cl = cl.In(b, "")
	sq := api.SearchQuery{Terms: []string{"kind=talk"}, Limit: 100}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		a, err := cl.Search(context.Background(), sq)
		if err == nil && a.Answered == 9 && !a.Partial && len(a.Results) == 100 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the bucket's holders not all found in 2 min: %+v, %v", a, err)
		}
		time.Sleep(200 * time.Millisecond) // waiting for announcements to reach the DHT
	}
	samples := 50 * runs
	var apiT, cliT, idT []time.Duration
	for range samples {
		t0 := time.Now()
		a, err := cl.Search(context.Background(), sq)
		if err != nil || a.Partial || len(a.Results) != 100 {
			return fmt.Errorf("timed search: %d results, partial %v, %v", len(a.Results), a.Partial, err)
		}
		apiT = append(apiT, time.Since(t0))
		t0 = time.Now()
		if _, err := ddcOut(seeker, "search", "-b", b, "kind=talk", "--json"); err != nil {
			return err
		}
		cliT = append(cliT, time.Since(t0))
		t0 = time.Now()
		if _, err := ddcOut(seeker, "node", "id"); err != nil {
			return err
		}
		idT = append(idT, time.Since(t0))
	}
	p90 := func(ds []time.Duration) time.Duration { s := slices.Sorted(slices.Values(ds)); return s[len(s)*9/10] }
	return report(fmt.Sprintf("search benchmark: ten daemons on loopback, %d files of one bucket, %d searches of 100 results", 10*perNode, samples), []result{
		{
			name:     "bucket search across 10 daemons, the node's answer (API, median / p90)",
			value:    fmt.Sprintf("%.1f / %.1f ms", ms(med(apiT)), ms(p90(apiT))),
			baseline: fmt.Sprintf("'ddc node id' process %.1f ms", ms(med(idT))),
			ratio:    fmt.Sprintf("%.2f×", med(apiT).Seconds()/med(idT).Seconds()),
			target:   "< 50 ms median", ok: med(apiT) < 50*time.Millisecond,
		},
		{
			name:     "'ddc search -b' as a process (median)",
			value:    fmt.Sprintf("%.1f ms", ms(med(cliT))),
			baseline: fmt.Sprintf("'ddc node id' process %.1f ms", ms(med(idT))),
			ratio:    fmt.Sprintf("%.2f×", med(cliT).Seconds()/med(idT).Seconds()),
			target:   "(reported)", ok: true,
		},
	})
}

// peerOf is the peer ID in a daemon's address.
func peerOf(d *benchDaemon) string { return d.addr[strings.LastIndex(d.addr, "/")+1:] }
