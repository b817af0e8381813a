//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// runBrowser measures media seeks as a user meets them: a fresh headless
// Chromium plays a muted <video> for a second and seeks; seek→seeked and
// seek→playing again (0.5 s past the target) are timed in the page. The
// video (60 s, 4 Mbit/s, 720p; fragmented MP4 and WebM) comes from, in
// the same run: a static-file server on this machine (the floor), the
// gateway of a ddc node that does not hold it, and, with kubo naming its
// binary, the gateway of a Kubo node that does not hold it. Each gateway
// node starts cold before every seek. A proxy in front of each counts
// the bytes sent to the browser; the nodes say what they fetched.
func runBrowser(dir, kubo string) error {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return fmt.Errorf("the browser suite needs chromium (apt-get install chromium): %w", err)
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("the browser suite needs ffmpeg (apt-get install ffmpeg): %w", err)
	}
	work, bin, err := workWithDDC(dir, "ddc-browserbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	videos := map[string][]string{
		"mp4":  {"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-movflags", "+frag_keyframe+empty_moov+default_base_moof"},
		"webm": {"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"},
	}
	for ext, args := range videos {
		cmd := exec.Command(ffmpeg, append(append([]string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60",
			"-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M", "-g", "60"}, args...), filepath.Join(work, "clip."+ext))...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ffmpeg %s: %v: %s", ext, err, out)
		}
	}
	pages, reports, err := pageServer(work)
	if err != nil {
		return err
	}
	defer pages.Close()

	holder, err := startDaemon(bin, filepath.Join(work, "holder"))
	if err != nil {
		return err
	}
	defer holder.stop()
	var kh *kuboNode
	if kubo != "" {
		if kh, err = startKubo(kubo, filepath.Join(work, "kubo-holder")); err != nil {
			return err
		}
		defer kh.stop()
	}
	positions := []float64{40, 12, 51, 27, 5}
	var rows []result
	failures := 0
	for _, ext := range []string{"mp4", "webm"} {
		file := filepath.Join(work, "clip."+ext)
		fi, err := os.Stat(file)
		if err != nil {
			return err
		}
		id, err := ddcOut(bin, holder.repo, "put", file)
		if err != nil {
			return err
		}
		var kid string
		if kh != nil {
			if kid, err = kh.ipfs("add", "--quiet", "--cid-version", "1", file); err != nil {
				return err
			}
		}
		servers := []server{{name: "static files", start: func() (string, func() (uint64, error), func(), error) {
			return "http://" + pages.addr + "/clip." + ext, func() (uint64, error) { return 0, nil }, func() {}, nil
		}}}
		if kh != nil {
			servers = append(servers, server{name: "Kubo gateway", start: func() (string, func() (uint64, error), func(), error) {
				k, err := startKubo(kubo, filepath.Join(work, "kubo-gw"))
				if err == nil {
					_, err = k.ipfs("swarm", "connect", kh.swarm)
				}
				if err != nil {
					return "", nil, nil, err
				}
				return "http://" + k.gateway + "/ipfs/" + kid, k.fetched, func() { k.stop(); os.RemoveAll(k.path) }, nil
			}})
		}
		servers = append(servers, server{name: "ddc gateway", start: func() (string, func() (uint64, error), func(), error) {
			path := filepath.Join(work, "ddc-gw")
			d, err := startDaemon(bin, path, "--bootstrap", holder.addr)
			if err != nil {
				return "", nil, nil, err
			}
			fetched := func() (uint64, error) {
				out, err := ddcOut(bin, path, "node", "id", "--json")
				var st struct {
					Fetched uint64 `json:"fetched_bytes"`
				}
				if err == nil {
					err = json.Unmarshal([]byte(out), &st)
				}
				return st.Fetched, err
			}
			return "http://" + d.gateway + "/ddc/file/" + id, fetched, func() { d.stop(); os.RemoveAll(path) }, nil
		}})
		for i := range servers {
			s := &servers[i]
			var playing, seeked []time.Duration
			var fetched, sent uint64
			responses := 0
			for _, pos := range positions {
				m, err := s.seek(chromium, work, pages, reports, pos)
				for try := 0; err != nil && try < 2; try++ { // again, from cold: a player's error is rare, and counted here
					fmt.Fprintf(os.Stderr, "%s %s seek to %gs failed, tried again: %v\n", ext, s.name, pos, err)
					failures++
					m, err = s.seek(chromium, work, pages, reports, pos)
				}
				if err != nil {
					return fmt.Errorf("%s, %s, seek to %gs: %w", s.name, ext, pos, err)
				}
				fmt.Fprintf(os.Stderr, "%s %s seek to %2gs: seeked %4.0f ms, playing %4.0f ms; fetched %3.0f%%, sent %3.0f%% in %d responses\n",
					ext, s.name, pos, ms(m.seeked), ms(m.playing), 100*float64(m.fetched)/float64(fi.Size()), 100*float64(m.sent)/float64(fi.Size()), m.responses)
				playing, seeked = append(playing, m.playing), append(seeked, m.seeked)
				fetched, sent, responses = fetched+m.fetched, sent+m.sent, responses+m.responses
			}
			n := float64(len(positions))
			s.playing, s.seeked = med(playing), med(seeked)
			s.fetchedShare, s.sentShare = float64(fetched)/n/float64(fi.Size()), float64(sent)/n/float64(fi.Size())
			s.fetched, s.sent, s.responses = fetched, sent, responses
			rows = append(rows, s.rows(ext, servers[0])...)
		}
	}
	return report(fmt.Sprintf("browser suite: seeks in headless Chromium, 60 s 720p videos at 4 Mbit/s (%d seeks failed once and were run again)", failures), rows)
}

// server is one way the video reaches the browser: start starts it cold
// and returns the video's URL, what its node fetched so far, and stop.
type server struct {
	name  string
	start func() (src string, fetched func() (uint64, error), stop func(), err error)

	playing, seeked         time.Duration // medians over the positions
	fetchedShare, sentShare float64       // per seek, of the file
	fetched, sent           uint64        // over the positions
	responses               int
}

// seekRun is what one seek measured.
type seekRun struct {
	playing, seeked time.Duration
	fetched, sent   uint64
	responses       int
}

// seek starts the server cold, plays its video in a fresh Chromium for a
// second and seeks to pos.
func (s *server) seek(chromium, work string, pages *pageSrv, reports <-chan url.Values, pos float64) (seekRun, error) {
	src, fetched, stop, err := s.start()
	if err != nil {
		return seekRun{}, err
	}
	defer stop()
	counter, err := newCountingProxy(src)
	if err != nil {
		return seekRun{}, err
	}
	defer counter.Close()
	before, err := fetched()
	if err != nil {
		return seekRun{}, err
	}
	page := fmt.Sprintf("http://%s/seek.html?src=%s&pos=%g", pages.addr, url.QueryEscape(counter.url), pos)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	profile := filepath.Join(work, "chromium-profile")
	os.RemoveAll(profile)
	browser := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
		"--autoplay-policy=no-user-gesture-required", "--user-data-dir="+profile, page)
	if err := browser.Start(); err != nil {
		return seekRun{}, err
	}
	defer func() { browser.Process.Kill(); browser.Wait() }()
	var rep url.Values
	select {
	case rep = <-reports:
	case <-ctx.Done():
		return seekRun{}, errors.New("no report from the page within 2 minutes")
	}
	if e := rep.Get("error"); e != "" {
		return seekRun{}, fmt.Errorf("the page: %s (the video's URL now answers: %s)", e, probe(src))
	}
	after, err := fetched()
	if err != nil {
		return seekRun{}, err
	}
	parse := func(k string) time.Duration {
		v, _ := strconv.ParseFloat(rep.Get(k), 64)
		return time.Duration(v * float64(time.Millisecond))
	}
	sent, responses := counter.counts()
	return seekRun{playing: parse("playing"), seeked: parse("seeked"), fetched: after - before, sent: sent, responses: responses}, nil
}

// rows are the figures of s for ext, against the floor's.
func (s *server) rows(ext string, floor server) []result {
	name := fmt.Sprintf("%s: %s, seek → playing again (median of 5 seeks, incl. 0.5 s of playback)", ext, s.name)
	if s.name == floor.name {
		return []result{{name: name, value: fmt.Sprintf("%.0f ms", ms(s.playing)), baseline: "(the floor)", ratio: "—", target: "—", ok: true},
			{name: ext + ": static files, seek → seeked", value: fmt.Sprintf("%.0f ms", ms(s.seeked)), baseline: "(the floor)", ratio: "—", target: "—", ok: true}}
	}
	isDDC := strings.HasPrefix(s.name, "ddc")
	dp, dsk := s.playing-floor.playing, s.seeked-floor.seeked
	out := []result{{name: name, value: fmt.Sprintf("%.0f ms", ms(s.playing)), baseline: fmt.Sprintf("static files %.0f ms", ms(floor.playing)),
		ratio: fmt.Sprintf("%+.0f ms", ms(dp)), target: targetIf(isDDC, "within 50 ms of the floor"), ok: !isDDC || dp <= 50*time.Millisecond}}
	st := "(informative)"
	okSeeked := true
	if isDDC && ext == "webm" {
		st, okSeeked = "within 100 ms of the floor", dsk <= 100*time.Millisecond
	}
	out = append(out, result{name: fmt.Sprintf("%s: %s, seek → seeked", ext, s.name), value: fmt.Sprintf("%.0f ms", ms(s.seeked)),
		baseline: fmt.Sprintf("static files %.0f ms", ms(floor.seeked)), ratio: fmt.Sprintf("%+.0f ms", ms(dsk)), target: st, ok: okSeeked})
	const window = 18 << 20 // a response's read-ahead window (16 chunks) and the chunk being sent
	bytesOK := !isDDC || (s.fetched <= s.sent+uint64(s.responses)*window && (ext != "webm" || s.fetchedShare <= 0.4))
	bt := "(informative)"
	if isDDC {
		bt = "≤ sent + a window per response"
		if ext == "webm" {
			bt += ", ≤ 40% of the file"
		}
	}
	return append(out, result{name: fmt.Sprintf("%s: %s, bytes fetched from holders per seek", ext, s.name), value: fmt.Sprintf("%.0f%% of the file", 100*s.fetchedShare),
		baseline: fmt.Sprintf("sent to the browser %.0f%% in %d responses", 100*s.sentShare, s.responses), ratio: fmt.Sprintf("%.2f× sent", float64(s.fetched)/max(float64(s.sent), 1)), target: bt, ok: bytesOK})
}

func targetIf(on bool, t string) string {
	if on {
		return t
	}
	return "(informative)"
}

// seekPage plays src for a second, seeks to pos, and reports the times
// to seeked and to playing 0.5 s past pos, from the seek.
const seekPage = `<!doctype html>
<html><body><video id="v" muted playsinline preload="auto"></video>
<script>
const q = new URLSearchParams(location.search), v = document.getElementById('v'), pos = +q.get('pos');
const report = (o) => { new Image().src = '/report?' + new URLSearchParams(o); };
v.addEventListener('error', () => report({error: (v.error && v.error.message) || 'media error'}));
v.src = q.get('src');
v.play().catch((e) => report({error: 'play: ' + e}));
const played = () => {
  if (v.currentTime < 1) { setTimeout(played, 5); return; }
  const t0 = performance.now();
  let seeked = 0;
  v.addEventListener('seeked', () => { seeked = performance.now() - t0; }, {once: true});
  v.currentTime = pos;
  const check = () => {
    if (seeked && v.currentTime >= pos + 0.5) report({seeked: seeked, playing: performance.now() - t0});
    else setTimeout(check, 5);
  };
  check();
};
played();
</script></body></html>`

// pageSrv serves the page, the videos (the static floor) and the reports.
type pageSrv struct {
	addr string
	srv  *http.Server
}

func (p *pageSrv) Close() { p.srv.Close() }

func pageServer(dir string) (*pageSrv, <-chan url.Values, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	reports := make(chan url.Values, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/seek.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, seekPage)
	})
	mux.HandleFunc("/report", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case reports <- r.URL.Query():
		default:
		}
	})
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	p := &pageSrv{addr: ln.Addr().String(), srv: &http.Server{Handler: mux}}
	go p.srv.Serve(ln)
	return p, reports, nil
}

// countingProxy passes requests to one URL's server and counts the body
// bytes and the responses it passes back.
type countingProxy struct {
	url       string
	srv       *http.Server
	bytes     atomic.Uint64
	responses atomic.Int64
}

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{url: "http://" + ln.Addr().String() + u.RequestURI()}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.FlushInterval = -1                    // pass bytes on as they come, as a player expects
	rp.ErrorLog = log.New(io.Discard, "", 0) // a player cancels requests all the time
	rp.ModifyResponse = func(r *http.Response) error {
		p.responses.Add(1)
		r.Body = &countedBody{r.Body, &p.bytes}
		return nil
	}
	p.srv = &http.Server{Handler: rp}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *countingProxy) counts() (uint64, int) { return p.bytes.Load(), int(p.responses.Load()) }
func (p *countingProxy) Close()                { p.srv.Close() }

type countedBody struct {
	io.ReadCloser
	n *atomic.Uint64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(uint64(n))
	return n, err
}

// kuboNode is a Kubo daemon on loopback.
type kuboNode struct {
	bin, path      string
	cmd            *exec.Cmd
	gateway, swarm string // host:port; a multiaddr with /p2p/
	exited         chan struct{}
}

// startKubo inits a Kubo repo at path (loopback only, no bootstrap, no
// mDNS: the 'test' profile) and runs its daemon.
func startKubo(bin, path string) (*kuboNode, error) {
	k := &kuboNode{bin: bin, path: path, exited: make(chan struct{})}
	if _, err := k.ipfs("init", "--profile", "test", "--empty-repo"); err != nil {
		return nil, err
	}
	k.cmd = exec.Command(bin, "daemon")
	k.cmd.Env = append(os.Environ(), "IPFS_PATH="+path)
	out, err := k.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := k.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		defer close(k.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Gateway server listening on /ip4/"); ok {
				host, port, _ := strings.Cut(strings.TrimSpace(a), "/tcp/")
				select {
				case ready <- host + ":" + port:
				default:
				}
			}
		}
		k.cmd.Wait()
	}()
	select {
	case k.gateway = <-ready:
	case <-k.exited:
		return nil, fmt.Errorf("kubo daemon on %s exited", path)
	case <-time.After(60 * time.Second):
		k.stop()
		return nil, fmt.Errorf("kubo daemon on %s not ready within 60 s", path)
	}
	id, err := k.ipfs("id", "--format", "<addrs>")
	if err != nil {
		k.stop()
		return nil, err
	}
	for _, a := range strings.Fields(id) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			k.swarm = a
			break
		}
	}
	return k, nil
}

// ipfs runs the Kubo command on k's repo and returns its stdout, trimmed.
func (k *kuboNode) ipfs(args ...string) (string, error) {
	cmd := exec.Command(k.bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.path)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("ipfs %v: %s", args, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

// fetched is what bitswap received so far.
func (k *kuboNode) fetched() (uint64, error) {
	out, err := k.ipfs("stats", "bitswap", "--enc", "json")
	var st struct{ DataReceived uint64 }
	if err == nil {
		err = json.Unmarshal([]byte(out), &st)
	}
	return st.DataReceived, err
}

func (k *kuboNode) stop() {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	k.cmd.Process.Signal(os.Interrupt)
	select {
	case <-k.exited:
	case <-time.After(20 * time.Second):
		k.cmd.Process.Kill()
		<-k.exited
	}
}

// probe says how url answers a request for its first KiB.
func probe(url string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Range", "bytes=0-1023")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Sprintf("%s, %s, %q", resp.Status, resp.Header.Get("Content-Type"), b[:min(len(b), 80)])
}
