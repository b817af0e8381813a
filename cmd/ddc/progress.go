package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressMin is the size from which put and get show a progress bar.
const progressMin = 64 << 20

// progress is a byte progress bar on stderr when stderr is a terminal and
// the work is large (or of unknown size); otherwise it does nothing.
type progress struct {
	bar  *progressbar.ProgressBar
	what string
	n    uint64 // bytes counted through add
}

func (e *env) newProgress(size int64, what string) *progress {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || (size >= 0 && size < progressMin) {
		return &progress{}
	}
	return &progress{what: what, bar: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

// resize sets the total once it is known (n >= 0).
func (p *progress) resize(n int64) {
	if p.bar != nil && n >= 0 && p.bar.GetMax64() != n {
		p.bar.ChangeMax64(n)
	}
}

// describe sets the note after the bar's title.
func (p *progress) describe(note string) {
	if p.bar != nil && note != "" {
		p.bar.Describe(p.what + " · " + note)
	}
}

func (p *progress) set(n uint64) {
	if p.bar != nil {
		p.bar.Set64(int64(n))
	}
}

// follow updates the bar's description with note every half second until
// the returned stop is called.
func (p *progress) follow(ctx context.Context, note func(context.Context) (string, bool)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s, ok := note(ctx); ok {
					p.describe(s)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// add moves the bar on by n bytes; a bar moved this way is not also set.
func (p *progress) add(n int) {
	p.n += uint64(n)
	p.set(p.n)
}

// countingWriter reports bytes written through it to a progress bar.
type countingWriter struct {
	w io.Writer
	p *progress
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.add(n)
	return n, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// countingReader reports bytes read through it to a progress bar.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(n)
	return n, err
}
