package main

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGetOutputLikeCp: get -o writes through symlinks, devices and FIFOs
// rather than replacing them, gives new files the umask's mode, keeps the
// mode of a file it replaces, writes into a directory, and names the path
// the user gave when it fails.
func TestGetOutputLikeCp(t *testing.T) {
	c := newCLI(t)
	content := strings.Repeat("output ", 3000)
	id := strings.TrimSpace(c.ok(content, "put", "-"))
	dir := t.TempDir()
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	old := syscall.Umask(0o027)
	c.ok("", "get", id, "-o", filepath.Join(dir, "new"))
	syscall.Umask(old)
	if fi, _ := os.Stat(filepath.Join(dir, "new")); fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640 (umask 027)", fi.Mode().Perm())
	}

	kept := filepath.Join(dir, "kept")
	os.WriteFile(kept, []byte("old"), 0o604)
	os.Chmod(kept, 0o604)
	c.ok("", "get", id, "-o", kept)
	if fi, _ := os.Stat(kept); fi.Mode().Perm() != 0o604 || read(kept) != content {
		t.Errorf("replaced file: mode %v, %d bytes", fi.Mode().Perm(), len(read(kept)))
	}

	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("old"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink("target", link)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("created", dangling)
	for _, l := range []string{link, dangling} {
		c.ok("", "get", id, "-o", l)
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: the symlink was replaced (%v)", l, err)
		}
		if read(l) != content {
			t.Errorf("%s: the file it names holds other bytes", l)
		}
	}

	c.ok("", "get", id, "-o", "/dev/null")
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a device: %v %v", fi.Mode(), err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	c.ok("", "get", id, "-o", fifo)
	select {
	case b := <-got:
		if b != content {
			t.Errorf("the FIFO's reader got %d bytes", len(b))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the FIFO's reader got nothing")
	}
	if fi, _ := os.Lstat(fifo); fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Error("the FIFO was replaced")
	}

	c.ok("", "get", id, "-o", dir)
	if read(filepath.Join(dir, id)) != content {
		t.Error("get into a directory did not write DIR/CID")
	}

	bad := filepath.Join(dir, "no-such-dir", "out")
	code, _, errs := c.run("", "get", id, "-o", bad)
	if code != exitIO || !strings.Contains(errs, bad) || strings.Contains(errs, ".ddc-") {
		t.Errorf("get into a missing directory: exit %d, %q", code, errs)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".ddc-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestOutputErrorsKeepOtherPaths: an error of the writer that names a
// file of its own (a block file of the node, say) keeps that name; only
// errors about the output are renamed to the path given.
func TestOutputErrorsKeepOtherPaths(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	err := writeOutput(out, func(*os.File, string, func() error) error {
		return &fs.PathError{Op: "read", Path: "/repo/store/blocks/00000001.blk", Err: syscall.EIO}
	})
	if err == nil || !strings.Contains(err.Error(), "00000001.blk") || strings.Contains(err.Error(), out) {
		t.Fatalf("the writer's own error: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a failed write left the output behind")
	}
}
