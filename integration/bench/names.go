//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ddc-project/ddc/internal/netbed"
	"github.com/ddc-project/ddc/node/repo"
)

// runNames measures names on the LAN bed (three namespaces on a bridge,
// daemons with the README's defaults): publishes on A (B its DHT peer);
// then C joins, having seen none of the names (not in its cache, its
// repo, nor its DHT store, since it was away when they were put), and
// resolves each once (the DHT's first valid record from its closest
// peers), then again from its cache. Each is a ddc CLI process beside
// 'ddc stat' of a held CID through the same CLI and API path, and the
// cached resolve also one API request beside a stat API request, all in
// the same run.
func runNames(dir string, runs int) error {
	bed, err := netbed.New(3)
	if err != nil {
		return err
	}
	defer bed.Close()
	work, bin, err := workWithDDC(dir, "ddc-namesbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var ds []*benchDaemon
	startNode := func(i int) error {
		path := filepath.Join(work, fmt.Sprintf("node%d", i))
		d, err := startDaemonCmd(bed.Command(i, bin, "--repo", path, "node", "run", "--log-level", "warn"), path)
		if err != nil {
			return err
		}
		ds = append(ds, d)
		return nil
	}
	defer func() {
		for _, d := range ds {
			d.stop()
		}
	}()
	cli := func(i int, args ...string) *exec.Cmd {
		return bed.Command(i, bin, append([]string{"--repo", ds[i].repo}, args...)...)
	}
	out := func(i int, args ...string) (string, error) {
		b, err := cli(i, args...).Output()
		if err != nil {
			return "", fmt.Errorf("ddc %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	timed := func(i int, args ...string) (time.Duration, error) {
		start := time.Now()
		_, err := out(i, args...)
		return time.Since(start), err
	}
	join := func(i, peers int) error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var st struct {
				Peers int `json:"peers"`
				DHT   []struct {
					Peers int `json:"peers"`
				} `json:"dht"`
			}
			s, err := out(i, "node", "status", "--json")
			if err == nil && json.Unmarshal([]byte(s), &st) == nil && st.Peers >= peers && st.DHT[0].Peers >= peers {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d did not join %d peers within 60 s", i, peers)
			}
			time.Sleep(50 * time.Millisecond) // polling the node's own status for mDNS to connect it
		}
	}
	for i := range 2 {
		if err := startNode(i); err != nil {
			return err
		}
	}
	for i := range 2 {
		if err := join(i, 1); err != nil {
			return err
		}
	}
	bkt, err := out(0, "bucket", "create")
	if err != nil {
		return err
	}
	value, err := cliPutOn(cli(0, "put", "-b", bkt, "-"), 64<<10, 8)
	if err != nil {
		return err
	}
	names := runs * 10
	var publishT, statAT, freshT, statCT, cachedT, apiT, apiStatT []time.Duration
	for i := range names {
		p, err := timed(0, "name", "publish", "-b", bkt, fmt.Sprintf("bench/%d", i), value)
		if err != nil {
			return err
		}
		s, err := timed(0, "stat", value)
		if err != nil {
			return err
		}
		publishT, statAT = append(publishT, p), append(statAT, s)
	}
	if err := startNode(2); err != nil {
		return err
	}
	if err := join(2, 2); err != nil {
		return err
	}
	held, err := cliPutOn(cli(2, "put", "-"), 64<<10, 7)
	if err != nil {
		return err
	}
	st, err := repo.ReadState(ds[2].repo)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: bed.Hosts[2].DialContext}}
	api := func(path string, q url.Values) (time.Duration, error) {
		start := time.Now()
		resp, err := hc.Get("http://" + st.API + "/api/v1" + path + "?" + q.Encode())
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("api %s: %s", path, resp.Status)
		}
		return time.Since(start), err
	}
	for i := range names {
		name := fmt.Sprintf("bench/%d", i)
		f, err := timed(2, "name", "resolve", "-b", bkt, name)
		if err != nil {
			return err
		}
		c, err := timed(2, "name", "resolve", "-b", bkt, name)
		if err != nil {
			return err
		}
		s, err := timed(2, "stat", held)
		if err != nil {
			return err
		}
		a, err := api("/name/resolve", url.Values{"bucket": {bkt}, "name": {name}})
		if err != nil {
			return err
		}
		as, err := api("/stat/"+held, nil)
		if err != nil {
			return err
		}
		freshT, cachedT, statCT = append(freshT, f), append(cachedT, c), append(statCT, s)
		apiT, apiStatT = append(apiT, a), append(apiStatT, as)
	}
	msf := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds()) }
	p50 := func(ds []time.Duration) time.Duration { return pct(ds, 50) }
	rows := []result{
		{name: "name resolve on a node that has not seen it (the DHT's first valid record), CLI process, p50", value: msf(p50(freshT)),
			baseline: "ddc stat of a held CID, CLI " + msf(p50(statCT)), ratio: ratio(p50(freshT), p50(statCT)),
			target: "≤ 100 ms", ok: p50(freshT) <= 100*time.Millisecond},
		{name: "name resolve on a node that has not seen it, p99", value: msf(pct(freshT, 99)), baseline: "stat p99 " + msf(pct(statCT, 99)),
			ratio: ratio(pct(freshT, 99), pct(statCT, 99)), target: "(informative)", ok: true},
		{name: "name resolve, cached, one API request, p50", value: msf(p50(apiT)),
			baseline: "stat of a held CID, API " + msf(p50(apiStatT)), ratio: ratio(p50(apiT), p50(apiStatT)),
			target: "≤ 1 ms", ok: p50(apiT) <= time.Millisecond},
		{name: "name resolve, cached, CLI process, p50", value: msf(p50(cachedT)),
			baseline: "ddc stat of a held CID, CLI " + msf(p50(statCT)), ratio: ratio(p50(cachedT), p50(statCT)),
			target: "(informative: the process's start)", ok: true},
		{name: "name publish (sign, keep, DHT put, push), CLI process, p50", value: msf(p50(publishT)),
			baseline: "ddc stat of a held CID, CLI " + msf(p50(statAT)), ratio: ratio(p50(publishT), p50(statAT)),
			target: "≤ 1 s", ok: p50(publishT) <= time.Second},
		{name: "name publish, slowest", value: msf(maxDur(publishT)), baseline: "", ratio: "",
			target: "≤ 1 s", ok: maxDur(publishT) <= time.Second},
	}
	return report(fmt.Sprintf("ddc names benchmark: three daemons on the LAN bed, defaults, %d names", names), rows)
}

// cliPutOn runs the put command put with size seeded random bytes on
// stdin and returns the CID it prints.
func cliPutOn(put *exec.Cmd, size int64, seed byte) (string, error) {
	f, err := os.CreateTemp("", "ddc-names-input-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := writeSeeded(f.Name(), size, seed); err != nil {
		return "", err
	}
	put.Stdin = f
	out, err := put.Output()
	if err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
