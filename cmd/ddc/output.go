package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// writeOutput writes a get's output to path as cp does. A regular file (or
// a new one) is written under a temporary name beside it, synced, and
// renamed over path only once write succeeds, so a failed get leaves
// nothing new at path. A symlink is written through: the file it names is
// replaced, the link stays. A device, FIFO or socket is written into in
// place. New files get 0666 less the umask; a replaced file keeps its mode.
// Errors about the output name path, never the temporary name or the
// file a symlink leads to; errors of write (the node's, say) pass as they
// are.
//
// write gets, for a regular file, the absolute path it will have and
// finish, which moves it there (synced, renamed, the rename synced): a
// write that must know the file is at its path before it returns (an
// in-place get) calls finish itself. For a device or FIFO both are zero.
func writeOutput(path string, write func(f *os.File, final string, finish func() error) error) error {
	var ours []string // the names this function opens or makes
	err := writeOutputAt(path, write, &ours)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path != path && slices.Contains(ours, pe.Path) {
		named := *pe
		named.Path = path
		return fmt.Errorf("output: %w", &named)
	}
	return err
}

func writeOutputAt(path string, write func(*os.File, string, func() error) error, ours *[]string) error {
	real, err := resolveOutput(path)
	if err != nil {
		return err
	}
	*ours = append(*ours, real)
	fi, err := os.Stat(real)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		if fi.IsDir() {
			return usageErr(fmt.Errorf("output %s is a directory", path))
		}
		f, err := os.OpenFile(real, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if err := write(f, "", nil); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	tmp, name, err := createBeside(real)
	*ours = append(*ours, name)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		tmp.Close() // again, after the Close below: harmless
		if !done {
			os.Remove(tmp.Name())
		}
	}() // once renamed, a failure leaves the file: the bytes were whole and durable
	if fi != nil { // replacing a file: keep its mode
		if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
			return err
		}
	}
	final, err := filepath.Abs(real)
	if err != nil {
		return err
	}
	finish := func() error {
		if done {
			return nil
		}
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), real); err != nil {
			return err
		}
		done = true
		if d, err := os.Open(filepath.Dir(real)); err == nil { // the rename, durable
			d.Sync()
			d.Close()
		}
		return nil
	}
	if err := write(tmp, final, finish); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	return tmp.Close()
}

// maxLinks bounds the symlinks resolveOutput follows, as the kernel does.
const maxLinks = 40

// resolveOutput follows path's symlinks, the last one possibly dangling
// (cp then creates the file it names), to the path written.
func resolveOutput(path string) (string, error) {
	for range maxLinks {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", &fs.PathError{Op: "open", Path: path, Err: errors.New("too many levels of symbolic links")}
}

// createBeside makes a new file in path's directory with a hidden name
// derived from path's, created with mode 0666 so that the umask applies.
func createBeside(path string) (*os.File, string, error) {
	for {
		var b [6]byte
		rand.Read(b[:])
		name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".ddc-"+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
}
