package exchange

import (
	"bufio"
	"bytes"
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DialV1ForTest opens a session as a peer that speaks only 1.0.0 would.
func DialV1ForTest(ctx context.Context, h host.Host, p peer.ID, cluster string) (*Session, error) {
	return dial(ctx, h, p, cluster, 1, ProtocolIDV1(cluster))
}

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
