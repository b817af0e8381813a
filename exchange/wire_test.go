package exchange

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the request and response decoders:
// they must fail cleanly or decode something that frames back to a frame
// within the caps.
func FuzzReadFrame(f *testing.F) {
	for _, v := range []any{
		&request{Type: TypeGet, ID: 7, CID: []byte{1, 0x55, 0x12, 0x20}, Offset: 1, Length: 2},
		&responseHeader{ID: 7, Status: StatusBusy},
	} {
		b, err := EncodeFrameForTest(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req request
		if err := readFrame(bufio.NewReader(bytes.NewReader(b)), maxRequestFrame, &req); err == nil {
			if len(req.CID) > maxRequestFrame {
				t.Fatalf("decoded a CID of %d bytes from a capped frame", len(req.CID))
			}
			if _, err := EncodeFrameForTest(&req); err != nil {
				t.Fatalf("decoded request does not encode: %v", err)
			}
		}
		var h responseHeader
		readFrame(bufio.NewReader(bytes.NewReader(b)), maxResponseFrame, &h)
	})
}
