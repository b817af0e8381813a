package exchange

import (
	"bufio"
	"bytes"
	"time"
)

// EncodeFrameForTest frames v as the wire does.
func EncodeFrameForTest(v any) ([]byte, error) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := writeFrame(w, v); err != nil {
		return nil, err
	}
	err := w.Flush()
	return b.Bytes(), err
}

// ReadRequestForTest reads one request frame as a server does.
func ReadRequestForTest(r *bufio.Reader) (id uint64, c []byte, err error) {
	var req request
	err = readFrame(r, maxRequestFrame, &req)
	return req.ID, req.CID, err
}

// BodyTimeoutForTest is the deadline of a body of size bytes from a holder
// not yet measured.
func BodyTimeoutForTest(size uint64) time.Duration { return bodyTimeout(size, 0) }

// ReadResponseHeaderForTest reads one response header as a session does.
func ReadResponseHeaderForTest(r *bufio.Reader) (id uint64, st Status, size uint64, err error) {
	var h responseHeader
	err = readFrame(r, maxResponseFrame, &h)
	return h.ID, h.Status, h.Size, err
}
