package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// seekPage plays the video at src, seeks to its middle once it knows its
// length, and reports to report what happened: the seek target and the
// time playback reached past it, or the media error.
const seekPage = `<!doctype html>
<html><body>
<video id="v" src="%s" preload="metadata" muted playsinline></video>
<script>
const v = document.getElementById('v');
const report = (o) => { new Image().src = '%s?' + new URLSearchParams(o); };
v.addEventListener('error', () => report({error: (v.error && v.error.message) || 'media error ' + (v.error && v.error.code)}));
v.addEventListener('loadedmetadata', () => {
  const target = v.duration / 2;
  v.addEventListener('seeked', () => {
    v.play().catch((e) => report({error: 'play: ' + e}));
    const check = () => {
      if (v.currentTime > target + 1) report({target: target, reached: v.currentTime, duration: v.duration});
      else setTimeout(check, 100);
    };
    check();
  }, {once: true});
  v.currentTime = target;
});
</script>
</body></html>
`

// TestBrowserSeeksVideo: a video put on one node plays in headless
// Chromium from the gateway of another node, resumes after a seek to its
// middle, and the gateway's node fetched less than the whole file, and
// no more than a read-ahead window per response past what it sent.
func TestBrowserSeeksVideo(t *testing.T) {
	chromium, err1 := exec.LookPath("chromium")
	ffmpeg, err2 := exec.LookPath("ffmpeg")
	if err1 != nil || err2 != nil {
		t.Fatalf("this test needs Debian's chromium and ffmpeg (apt-get install chromium ffmpeg; .ci/run installs them): %v, %v", err1, err2)
	}
	dir := t.TempDir()
	video := filepath.Join(dir, "clip.webm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Two hours of a small test pattern: over 100 MB, encoded in about
	// half a minute. A player buffers a few MB around where it plays, and
	// loopback TCP buffers hold several MB more of what the gateway sent:
	// the file must be large for "only what it needs" to show.
	if out, err := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=5:duration=7200",
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "25", video).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	st, err := os.Stat(video)
	if err != nil {
		t.Fatal(err)
	}

	holder := startDaemon(t, newDaemonRepo(t))
	gw := startDaemon(t, newDaemonRepo(t), "--bootstrap", holder.tcpAddr())
	vc := holder.put(video, "--path", "/videos/clip.webm")

	reports, reportURL := reportServer(t)
	page := filepath.Join(dir, "seek.html")
	os.WriteFile(page, fmt.Appendf(nil, seekPage, "/ddc/file/"+vc, reportURL), 0o644)
	pc := holder.put(page, "--path", "/videos/seek.html")
	before := gw.fetchedBytes(t)

	rep := openInChromium(ctx, t, chromium, dir, gw.gateway()+"/ddc/file/"+pc, reports, "--autoplay-policy=no-user-gesture-required")
	if e := rep.Get("error"); e != "" {
		t.Fatalf("the video failed in the browser: %s", e)
	}
	target, _ := strconv.ParseFloat(rep.Get("target"), 64)
	reached, _ := strconv.ParseFloat(rep.Get("reached"), 64)
	if target < 3000 || reached <= target {
		t.Fatalf("seek to %.1fs, playback at %.1fs: want it past the seek point", target, reached)
	}
	fetched := gw.fetchedBytes(t) - before
	sent, responses := gw.sentBytes(t, "/ddc/file/"+vc)
	t.Logf("seek to %.1fs of %ss, played to %.1fs; the gateway's node fetched %d of %d bytes and sent %d in %d responses", target, rep.Get("duration"), reached, fetched, st.Size(), sent, responses)
	// What the node fetched past what it sent is what each response had in
	// flight when the browser left it: at most a response's read-ahead
	// window (the gateway's, 16 chunks of 1 MiB, and the chunk being sent),
	// which grows only while the browser waits for chunks. What the
	// browser takes is its own affair: the figures are the browser
	// benchmark's.
	const window = (16 + 2) << 20
	if fetched == 0 || fetched >= uint64(st.Size()) || fetched > sent+uint64(responses)*window {
		t.Fatalf("the gateway's node fetched %d bytes of a %d-byte video to play from its middle; its log:\n%s", fetched, st.Size(), gw.logs.String())
	}
}

// reportServer takes what a page reports as the query of a request to
// its URL (an image's, which a page in any origin may load).
func reportServer(t *testing.T) (<-chan url.Values, string) {
	t.Helper()
	reports := make(chan url.Values, 1)
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reports <- r.URL.Query():
		default:
		}
	})}
	go rs.Serve(rl)
	t.Cleanup(func() { rs.Close() })
	return reports, "http://" + rl.Addr().String() + "/report"
}

// chromiumFlags run headless Chromium on this closed machine.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio"}

// openInChromium opens page in a headless Chromium of its own and
// returns the first report the page sends, within 90 s.
func openInChromium(ctx context.Context, t *testing.T, chromium, dir, page string, reports <-chan url.Values, flags ...string) url.Values {
	t.Helper()
	args := append(append(append([]string(nil), chromiumFlags...), flags...), "--user-data-dir="+filepath.Join(dir, "profile"), page)
	browser := exec.CommandContext(ctx, chromium, args...)
	var logs syncBuffer
	browser.Stdout, browser.Stderr = &logs, &logs
	if err := browser.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { browser.Process.Kill(); browser.Wait() }()
	select {
	case rep := <-reports:
		return rep
	case <-time.After(90 * time.Second):
		t.Fatalf("no report from the page within 90s; chromium said:\n%s", logs.String())
	}
	return nil
}
