package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// growPipe enlarges w's pipe buffer to 1 MiB (the default system maximum)
// when w is a pipe. ddc writes whole 1 MiB chunks; through the default
// 64 KiB pipe each one takes 16 wake-ups of the reader, which halves the
// throughput of 'ddc cat | consumer'. Failure is harmless and ignored.
func growPipe(w io.Writer) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
