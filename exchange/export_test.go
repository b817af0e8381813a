package exchange

import "bufio"
import "bytes"

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
