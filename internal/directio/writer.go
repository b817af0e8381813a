package directio

import (
	"os"
	"sync"
)

const (
	// StageSize is how many bytes a Writer gathers before one write.
	StageSize = 4 << 20
	// Stages is how many stage buffers a Writer cycles: one filling and up
	// to Stages-1 being written, so the device works while the next bytes
	// arrive.
	Stages = 3
)

// Writer writes a file in order past the page cache: bytes are gathered
// in an aligned stage, and each full stage is written to an O_DIRECT
// handle while the next one fills. That spares the copy into the page
// cache and the kernel flusher's work, about a core-second per GiB on a
// small VM. Flush writes the partial last stage padded to the alignment;
// the caller cuts the file back to End where the padding must not stay.
// A Writer is used by one goroutine.
type Writer struct {
	d     *os.File // the O_DIRECT handle
	stage []byte   // the filling stage, aligned, StageSize long
	base  int64    // file offset of stage[0], aligned
	n     int      // bytes in stage
	spare chan []byte
	wg    sync.WaitGroup // writes in flight
	mu    sync.Mutex
	err   error // the first failed write in flight
}

// NewWriter writes d, an O_DIRECT handle (see OpenDirect), from offset at
// on. Bytes of the aligned block at falls in, before at, are preloaded
// from keep, which must hold them: a flush rewrites that block whole.
func NewWriter(d *os.File, at int64, keep *os.File) (*Writer, error) {
	w := &Writer{d: d, stage: Buffer(StageSize), base: at &^ (Alignment - 1), spare: make(chan []byte, Stages-1)}
	for range Stages - 1 {
		w.spare <- Buffer(StageSize)
	}
	if w.n = int(at - w.base); w.n > 0 {
		if _, err := keep.ReadAt(w.stage[:w.n], w.base); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// End is the file offset after the last byte written.
func (w *Writer) End() int64 { return w.base + int64(w.n) }

// Write gathers p, starting the write of each stage it fills. It reports
// the first failure of a write in flight.
func (w *Writer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		c := copy(w.stage[w.n:], p)
		p, w.n = p[c:], w.n+c
		if w.n == len(w.stage) {
			w.writeStage()
		}
	}
	return total, w.Err()
}

// writeStage starts writing the full stage and takes a spare one to fill,
// waiting for one when every spare is being written.
func (w *Writer) writeStage() {
	full, base := w.stage, w.base
	w.stage, w.n = <-w.spare, 0
	w.base += int64(len(full))
	w.wg.Go(func() {
		if _, err := w.d.WriteAt(full, base); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
		w.spare <- full
	})
}

// Err is the first write that failed, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Flush waits for the writes in flight and writes the partial stage,
// zero-padded to the alignment; it stays the stage being filled, so the
// next flush or full stage rewrites it. The bytes reach the file, not yet
// the disk: the caller syncs.
func (w *Writer) Flush() error {
	w.wg.Wait()
	if err := w.Err(); err != nil {
		return err
	}
	if w.n == 0 {
		return nil
	}
	padded := Pad(w.n)
	clear(w.stage[w.n:padded])
	_, err := w.d.WriteAt(w.stage[:padded], w.base)
	return err
}

// Close waits for the writes in flight and closes the O_DIRECT handle,
// without writing the partial stage (Flush does).
func (w *Writer) Close() error {
	w.wg.Wait()
	return w.d.Close()
}
