// Package frame reads and writes the length-prefixed messages of ddc's
// stream protocols (the exchange and search): a uvarint length, then that
// many bytes.
package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Write writes b as one frame.
func Write(w io.Writer, b []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// Read reads one frame of 1 to max bytes. It returns io.EOF when the
// stream ends cleanly before a frame, and io.ErrUnexpectedEOF when it ends
// inside one.
func Read(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF // a clean end between frames
		}
		return nil, fmt.Errorf("frame length: %w", err)
	}
	if n == 0 || n > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes (max %d)", n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, NoEOF(err))
	}
	return buf, nil
}

// NoEOF turns an EOF inside a frame into ErrUnexpectedEOF: the stream was
// truncated, not ended.
func NoEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
