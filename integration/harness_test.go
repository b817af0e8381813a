package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ddcBin is the ddc binary built for this test run.
var ddcBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ddc-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ddcBin = filepath.Join(dir, "ddc")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", ddcBin, "../cmd/ddc") // auto: the revision for ddc version, whatever GOFLAGS says
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ddc:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repo is a ddc repo driven through the binary.
type repo struct {
	t    *testing.T
	path string
	ns   string // network namespace the commands run in; "" for this one
}

// command is ddc with args on the repo, in its namespace.
func (r *repo) command(ctx context.Context, args ...string) *exec.Cmd {
	args = append([]string{"--repo", r.path}, args...)
	if r.ns != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", r.ns, ddcBin}, args...)...)
	}
	return exec.CommandContext(ctx, ddcBin, args...)
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	r := &repo{t: t, path: filepath.Join(t.TempDir(), "repo")}
	r.ok(nil, "init")
	return r
}

// run runs ddc with a time bound and returns exit code, stdout, stderr.
func (r *repo) run(stdin io.Reader, args ...string) (int, string, string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		r.t.Fatalf("run ddc %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

func (r *repo) ok(stdin io.Reader, args ...string) string {
	r.t.Helper()
	code, out, errs := r.run(stdin, args...)
	if code != 0 {
		r.t.Fatalf("ddc %v: exit %d: %s", args, code, errs)
	}
	return out
}

func (r *repo) put(path string, args ...string) string {
	r.t.Helper()
	return strings.TrimSpace(r.ok(nil, append([]string{"put", path}, args...)...))
}

// randomFile writes n pseudo-random bytes (seeded) to a new file.
func randomFile(t *testing.T, seed uint64, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), fmt.Sprintf("rand-%d-%d", seed, n))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8(seedBytes(seed)), n); err != nil {
		t.Fatal(err)
	}
	return p
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// sameFile compares two files in bounded memory.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a wait for an event
	}
}
