// Package smallfs mounts small throwaway filesystems for tests that need a
// disk to fill up: an ext4 image of a few MiB on a loop device, so that
// O_DIRECT works as on a real disk and writes fail with ENOSPC when it is
// full. It needs root, mkfs.ext4 and loop devices; Available says why not
// when it cannot.
package smallfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Available reports why a filesystem cannot be mounted here, or nil.
func Available() error {
	if runtime.GOOS != "linux" {
		return errors.New("smallfs mounts loop devices, which only Linux has")
	}
	if os.Geteuid() != 0 {
		return errors.New("smallfs needs root to mount a loop device")
	}
	for _, cmd := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("smallfs needs %s (e2fsprogs, mount)", cmd)
		}
	}
	return nil
}

// Mount makes an ext4 filesystem of size bytes, mounts it and returns its
// root. The test's cleanup unmounts it. The test is skipped where
// Available says a filesystem cannot be mounted.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("no small filesystem here: %v", err)
	}
	base := t.TempDir()
	img, dir := filepath.Join(base, "fs.img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-F", "-m", "0", img)
	run(t, "mount", "-o", "loop", img, dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Skipf("no small filesystem here: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Fill writes a file in dir until the filesystem has at most leave bytes
// free, and returns its path: removing it frees the space again.
func Fill(t testing.TB, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		free := Free(t, dir)
		if free <= leave {
			break
		}
		n := min(int64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
	}
	return path
}

// Free returns the bytes an unprivileged writer could still put in dir's
// filesystem.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	free, err := freeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	return free
}
