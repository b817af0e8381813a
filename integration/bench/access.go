//go:build linux

package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runAccess measures what the access rule costs a gateway's reads, with
// daemons at the README's defaults and this process as the HTTP client:
//   - ranges: 64 KiB at random offsets of a file the gateway's node holds
//     (it read it once through its gateway), timed to the last byte: of a
//     public file, and of a private bucket's file with a bearer grant,
//     against the same public ranges on ddc built at before (the code
//     without the rule), the three taking turns at each offset;
//   - download: the whole private file with the grant through the gateway
//     of a fresh node, against the public file the same way, in pairs.
func runAccess(size int64, dir string, runs, reads int, before string) error {
	work, bin, old, err := workWithDDCAt(dir, "ddc-accessbench-", before)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	client := keptAliveClient()

	// The code as it is: a holder with a public file and a private one,
	// and a gateway node that read both.
	holder, err := startDaemon(bin, filepath.Join(work, "holder"))
	if err != nil {
		return err
	}
	defer holder.stop()
	pub, err := cliPut(bin, holder.repo, size, 21)
	if err != nil {
		return err
	}
	b, err := ddcOut(bin, holder.repo, "bucket", "create", "--private")
	if err != nil {
		return err
	}
	priv, err := cliPut(bin, holder.repo, size, 22, "-b", b)
	if err != nil {
		return err
	}
	token, err := ddcOut(bin, holder.repo, "bucket", "grant", b, "--bearer", "--ops", "get")
	if err != nil {
		return err
	}
	gw, err := startDaemon(bin, filepath.Join(work, "gateway"), "--bootstrap", holder.addr)
	if err != nil {
		return err
	}
	defer gw.stop()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // polling: the holder publishes once it has a peer
		if _, err := ddcOut(bin, gw.repo, "bucket", "show", b); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the gateway's node found no record of the bucket within 30 s: %w", err)
		}
	}
	pubURL := "http://" + gw.gateway + "/ddc/file/" + pub
	privURL := "http://" + gw.gateway + "/ddc/buc/" + b + "/file/" + priv + "?token=" + token
	for _, u := range []string{pubURL, privURL} {
		if _, err := streamAll(client, u, size); err != nil {
			return err
		}
	}
	// The code before: the same public file, read once the same way.
	oldHolder, err := startDaemon(old, filepath.Join(work, "old-holder"))
	if err != nil {
		return err
	}
	defer oldHolder.stop()
	if _, err := cliPut(old, oldHolder.repo, size, 21); err != nil {
		return err
	}
	oldGW, err := startDaemon(old, filepath.Join(work, "old-gateway"), "--bootstrap", oldHolder.addr)
	if err != nil {
		return err
	}
	defer oldGW.stop()
	oldURL := "http://" + oldGW.gateway + "/ddc/file/" + pub
	if _, err := streamAll(client, oldURL, size); err != nil {
		return err
	}

	// The gateways' nodes wrote what they fetched with O_DIRECT: read their
	// block files once, so every range comes from the page cache, and the
	// figure is the gateways' and not the disk's.
	for _, d := range []*benchDaemon{gw, oldGW} {
		if err := readBlocks(d.repo); err != nil {
			return err
		}
	}

	// Ranges, in rounds; each round times each kind over the same offsets.
	r := rand.New(rand.NewPCG(3, 4))
	var oldT, pubT, privT, pubRatio, privRatio []time.Duration
	kinds := []*[]time.Duration{&oldT, &pubT, &privT}
	urls := []string{oldURL, pubURL, privURL}
	for round := range runs + 1 {
		offs := make([]int64, reads)
		for i := range offs {
			offs[i] = r.Int64N(size - 65536)
		}
		// The three kinds take turns at every offset, each going first
		// in turn, so the machine's drift falls on all alike.
		var ds [3][]time.Duration
		for i, off := range offs {
			for j := range 3 {
				k := (i + j) % 3
				_, d, err := rangeGet(client, urls[k], off)
				if err != nil {
					return err
				}
				ds[k] = append(ds[k], d)
			}
		}
		var meds [3]time.Duration
		for k := range 3 {
			meds[k] = med(ds[k])
		}
		fmt.Fprintf(os.Stderr, "round %d: public before %.3f ms, public %.3f ms, granted %.3f ms\n", round, ms(meds[0]), ms(meds[1]), ms(meds[2]))
		if round == 0 {
			continue // warms caches and connections
		}
		for k := range 3 {
			*kinds[k] = append(*kinds[k], meds[k])
		}
		pubRatio = append(pubRatio, time.Duration(float64(time.Second)*meds[1].Seconds()/meds[0].Seconds()))
		privRatio = append(privRatio, time.Duration(float64(time.Second)*meds[2].Seconds()/meds[0].Seconds()))
	}
	rp, rg := med(pubRatio).Seconds(), med(privRatio).Seconds()
	rows := []result{
		{name: fmt.Sprintf("a public 64 KiB range the gateway's node holds, to its last byte, median of %d × %d", runs, reads),
			value: fmt.Sprintf("%.3f ms", ms(med(pubT))), baseline: fmt.Sprintf("the same before the access rule %.3f ms", ms(med(oldT))),
			ratio: fmt.Sprintf("%.3f× (median of %d rounds)", rp, runs), target: "≤ 1.05×", ok: rp <= 1.05},
		{name: "a granted 64 KiB range (private bucket, bearer grant), the same way",
			value: fmt.Sprintf("%.3f ms", ms(med(privT))), baseline: fmt.Sprintf("the public range before the access rule %.3f ms", ms(med(oldT))),
			ratio: fmt.Sprintf("%.3f× (median of %d rounds)", rg, runs), target: "≤ 1.05×", ok: rg <= 1.05},
	}

	// Whole downloads through fresh gateway nodes, in pairs.
	var grantedT, publicT, ratios []time.Duration
	stream := func(name, file, query string) (time.Duration, error) {
		d, err := startDaemon(bin, filepath.Join(work, name), "--bootstrap", holder.addr)
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(d.repo)
		defer d.stop()
		return streamAll(client, "http://"+d.gateway+file+query, size)
	}
	for i := range runs + 1 {
		var g, p time.Duration
		granted := func() (err error) {
			g, err = stream(fmt.Sprintf("granted-%d", i), "/ddc/buc/"+b+"/file/"+priv, "?token="+token)
			return err
		}
		public := func() (err error) { p, err = stream(fmt.Sprintf("public-%d", i), "/ddc/file/"+pub, ""); return err }
		first, second := granted, public
		if i%2 == 1 {
			first, second = public, granted
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		gbs := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
		fmt.Fprintf(os.Stderr, "pair %d: granted %.2f GB/s, public %.2f GB/s (%.2f×)\n", i, gbs(g), gbs(p), p.Seconds()/g.Seconds())
		if i == 0 {
			continue
		}
		grantedT, publicT = append(grantedT, g), append(publicT, p)
		ratios = append(ratios, time.Duration(float64(time.Second)*p.Seconds()/g.Seconds()))
	}
	gbs := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	rd := med(ratios).Seconds()
	rows = append(rows, result{name: fmt.Sprintf("the whole %s of a private bucket with a bearer grant, through the gateway of a fresh node", human(size)),
		value: fmt.Sprintf("%.2f GB/s", gbs(med(grantedT))), baseline: fmt.Sprintf("the public file the same way %.2f GB/s", gbs(med(publicT))),
		ratio: fmt.Sprintf("%.2f× (median of %d pairs)", rd, runs), target: "≥ 0.95×", ok: rd >= 0.95})
	return report(fmt.Sprintf("access benchmark (%s files; before: %s)", human(size), before), rows)
}

// readBlocks reads every block file of the repo at path.
func readBlocks(path string) error {
	files, err := filepath.Glob(filepath.Join(path, "store", "blocks", "*.blk"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("block files of %s: %v (%d)", path, err, len(files))
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ddcOut runs ddc with args on the repo and returns what it printed.
func ddcOut(bin, repo string, args ...string) (string, error) {
	out, err := exec.Command(bin, append([]string{"--repo", repo}, args...)...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("ddc %v: %s", args, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

// workWithDDCAt is workWithDDC, with ddc as it was at the git revision
// before built there too (old); the caller removes work.
func workWithDDCAt(dir, prefix, before string) (work, bin, old string, err error) {
	if work, bin, err = workWithDDC(dir, prefix); err != nil {
		return "", "", "", err
	}
	if old, err = buildAt(work, before); err != nil {
		os.RemoveAll(work)
		return "", "", "", err
	}
	return work, bin, old, nil
}

// keptAliveClient is the benches' HTTP client: connections kept alive
// for 16 requests at once, no compression (the bytes timed are the
// bytes served).
func keptAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
}

// buildAt builds ddc as it was at the git revision rev into work.
func buildAt(work, rev string) (string, error) {
	src := filepath.Join(work, "src-"+rev)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("sh", "-c", fmt.Sprintf("git archive %q | tar -x -C %q", rev, src))
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", rev, err, out)
	}
	bin := filepath.Join(work, "ddc-"+rev)
	build := exec.Command("go", "build", "-o", bin, "./cmd/ddc")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ddc at %s: %v: %s", rev, err, out)
	}
	return bin, nil
}
